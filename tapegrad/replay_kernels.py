"""Numba kernels: the forward replay sweep, which recomputes every record's value.

A recorded tape is a complete program: ``forward_sweep`` walks records start, start+1, ...,
stop-1 and writes each one's value from the values of its operands, so that a tape
recorded once (``tg.compile``) runs again at new input values with no Python per op. It
is the mirror of ``kernels.reverse_sweep`` and takes the same arrays (``Tape.freeze``):
records of Python-float scalars (opcode + SCALAR) write ``sv[r]`` through one scalar
switch (``value_of``), inline in the sweep's loop; array records write
``av[M[k, VO]:M[k, VO] + M[k, SIZE]]`` through one function per family
(``ops.FAMILY_RANGES``). Matrix products run in plain loops (no BLAS bindings for Numba
to compile, no SciPy); ``forward`` is the sweep with large products done by NumPy.

Preconditions (a ``keep_all`` recording meets them): every array record and every array
source keeps its value (``M[k, VO] >= 0``; a record that does not is skipped, but an
operand that does not is read out of bounds); the caller has written the sources' values
(leaves, constants, links: opcodes below ADD), which the sweep does not touch. Constants
of the recording are read as recorded: where's condition (a source), the int lists of the
gathers, cat/stack and CopySlices. max(dim)/min(dim) rewrite theirs (the new
arg-extremes, which the reverse sweep then reads).

Values are float64 throughout: a float32 tape replays in float64 (no rounding to float32
after each op, which eager float32 arithmetic does).
"""
# kernel sources: 4b0d7d4f381ad891
import math

import numpy as np

from .kernels import (_bcast_strides, _ints, _lane_index, _product_dims, _shape, _size,
                      _values, _walk, jit)
from .layout import BLAS_MIN, SHAPE, VO
from .ops import (MAXD, SCALAR, ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, WHERE,
                  NEG, EXP, LOG, TANH, SIGMOID, SQRT, ABS, RELU, CLAMP, POWC, RPOW, RECIP,
                  SIN, COS, LOG1P, EXPM1, RSQRT, CAST, CLONE, ERF,
                  SUM, SUMDIM, MEAN, MEANDIM,
                  MAXALL, MINALL, AMAX, AMIN, PROD, PRODDIM, VAR, STD, NORM, LOGSUMEXP,
                  SOFTMAX, LOGSOFTMAX, MM, BMM, DOT, MV,
                  SELECT, SLICE, UNSQUEEZE, SQUEEZE, SQUEEZEDIM, VIEW, T, PERMUTE, TRANSPOSE,
                  EXPAND, INDEX, INDEXSELECT, GATHER, MAXDIM, MINDIM, CAT, STACK, COPYSLICES,
                  GT, LT, GE, LE, EQ, NE, CASTNG,
                  BINARY_LAST, UNARY_LAST, REDUCE_LAST, LANE_LAST, MATMUL_LAST, STRIDED_LAST,
                  GATHER_LAST, MULTI_LAST)

# Every opcode the sweep recomputes (sources, opcodes below ADD, are the caller's).
ALL_FORWARD_OPCODES = (
    ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, WHERE,
    NEG, EXP, LOG, TANH, SIGMOID, SQRT, ABS, RELU, CLAMP, POWC, RPOW, RECIP, SIN, COS, LOG1P,
    EXPM1, RSQRT, CAST, CLONE, ERF,
    SUM, SUMDIM, MEAN, MEANDIM,
    MAXALL, MINALL, AMAX, AMIN, PROD, PRODDIM, VAR, STD, NORM, LOGSUMEXP, SOFTMAX, LOGSOFTMAX,
    MM, BMM, DOT, MV,
    SELECT, SLICE, UNSQUEEZE, SQUEEZE, SQUEEZEDIM, VIEW, T, PERMUTE, TRANSPOSE, EXPAND,
    INDEX, INDEXSELECT, GATHER, MAXDIM, MINDIM,
    CAT, STACK,
    COPYSLICES,
    GT, LT, GE, LE, EQ, NE, CASTNG,
)


# ----- per-element values -------------------------------------------------------------
@jit
def value_of(op, x, y, c, c2):
    """The value of one element: binary ops f(x, y) (c2: where's condition), unary ops
    f(x) with constants c, c2 (clamp's min and max), comparisons 1.0/0.0. The formulas of
    the eager scalar path (``tensor._SCALAR_F``); ops that only move values give x."""
    if op == ADD:
        return x + y
    if op == SUB:
        return x - y
    if op == MUL:
        return x * y
    if op == DIV:
        return x / y
    if op == POW:           # a negative base to a fractional power: NaN
        return x ** y
    if op == MAXIMUM:       # NaN propagates, as np.maximum
        return x if (x > y or x != x) else y
    if op == MINIMUM:
        return x if (x < y or x != x) else y
    if op == WHERE:
        return x if c2 != 0.0 else y
    if op == NEG:
        return -x
    if op == EXP:
        return np.exp(x)
    if op == LOG:
        return np.log(x)
    if op == TANH:
        return np.tanh(x)
    if op == SIGMOID:       # the scalar path's formula (arrays use the tanh form)
        return 1.0 / (1.0 + np.exp(-x))
    if op == SQRT:
        return np.sqrt(x)
    if op == ABS:
        return abs(x)
    if op == RELU:          # the scalar path's: 0 for NaN (arrays propagate it)
        return x if x > 0.0 else 0.0
    if op == CLAMP:         # min(max(x, lo), hi), NaN propagates, as np.clip
        z = c if x < c else x
        return c2 if z > c2 else z
    if op == POWC:
        return x ** c
    if op == RPOW:
        return c ** x
    if op == RECIP:
        return 1.0 / x
    if op == SIN:
        return np.sin(x)
    if op == COS:
        return np.cos(x)
    if op == LOG1P:
        return np.log1p(x)
    if op == EXPM1:
        return np.expm1(x)
    if op == ERF:
        return math.erf(x)
    if op == RSQRT:
        return 1.0 / np.sqrt(x)
    if op == GT:
        return 1.0 if x > y else 0.0
    if op == LT:
        return 1.0 if x < y else 0.0
    if op == GE:
        return 1.0 if x >= y else 0.0
    if op == LE:
        return 1.0 if x <= y else 0.0
    if op == EQ:
        return 1.0 if x == y else 0.0
    if op == NE:
        return 1.0 if x != y else 0.0
    if op == CASTNG:        # c: 0 bool, 1 integer (toward zero), 2 float
        if c == 0.0:
            return 1.0 if x != 0.0 else 0.0
        if c == 1.0:
            return np.trunc(x)
        return x
    return x                # to(), clone(), views of a scalar: identity


# ----- elementwise families -----------------------------------------------------------
@jit
def _binary(op, r, R, m, M, sv, av, cbuf, ib):
    """z = f(a, b) with broadcasting (binary family and the comparisons GT..NE)."""
    a = int(R[r, 1])
    b = int(R[r, 2])
    c = R[r, 3]
    z = _values(5 * r, 0.0, m, M, sv, av, cbuf[2:])
    xa = _values(a, c, m, M, sv, av, cbuf)
    xb = _values(b, c, m, M, sv, av, cbuf[1:])
    nw = op == WHERE
    xw = _values(int(c), 0.0, m, M, sv, av, cbuf[3:]) if nw else av[0:0]
    n = z.shape[0]
    if n == 0:
        return
    if _size(a, m, M) == n and _size(b, m, M) == n:
        _binary_same(op, n, z, xa, xb, xw, c)
        return
    shp = ib[0]
    sa = ib[1]
    sb = ib[2]
    idx = ib[3]
    tmp = ib[4]
    nd = _shape(5 * r, m, M, shp)
    _bcast_strides(tmp, _shape(a, m, M, tmp), nd, sa)
    _bcast_strides(tmp, _shape(b, m, M, tmp), nd, sb)
    # drop the output's size-1 dims and merge neighbours both operands walk in step
    nd2 = 0
    for d in range(nd):
        if shp[d] == 1:
            continue
        if nd2 > 0 and sa[nd2 - 1] == sa[d] * shp[d] and sb[nd2 - 1] == sb[d] * shp[d]:
            shp[nd2 - 1] *= shp[d]
            sa[nd2 - 1] = sa[d]
            sb[nd2 - 1] = sb[d]
        else:
            shp[nd2] = shp[d]
            sa[nd2] = sa[d]
            sb[nd2] = sb[d]
            nd2 += 1
    nd = nd2
    for d in range(nd):
        idx[d] = 0
    # now the last dimension's strides are 1 or 0 (broadcast): one row at a time, a
    # stride-0 operand spread over a scratch row, so every row runs the contiguous loops
    inner = shp[nd - 1]
    rowa = av[0:0] if sa[nd - 1] == 1 else np.empty(inner)
    rowb = av[0:0] if sb[nd - 1] == 1 else np.empty(inner)
    oa = 0
    ob = 0
    i = 0
    for _ in range(n // inner):
        if sa[nd - 1] == 1:
            ra = xa[oa:oa + inner]
        else:
            rowa[:] = xa[oa]
            ra = rowa
        if sb[nd - 1] == 1:
            rb = xb[ob:ob + inner]
        else:
            rowb[:] = xb[ob]
            rb = rowb
        rz = z[i:i + inner]
        if op == ADD:           # the hot ones inline (a bias added to every row)
            for j in range(inner):
                rz[j] = ra[j] + rb[j]
        elif op == SUB:
            for j in range(inner):
                rz[j] = ra[j] - rb[j]
        elif op == MUL:
            for j in range(inner):
                rz[j] = ra[j] * rb[j]
        else:
            _binary_same(op, inner, rz, ra, rb, xw[i:i + inner] if nw else xw, c)
        i += inner
        # odometer over the outer dimensions, carrying the operands' offsets along
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            oa += sa[d]
            ob += sb[d]
            if idx[d] < shp[d]:
                break
            oa -= sa[d] * idx[d]
            ob -= sb[d] * idx[d]
            idx[d] = 0
            d -= 1


@jit
def _binary_same(op, n, z, xa, xb, xw, c):
    """The binary forward when no operand is broadcast: dedicated loops for + - * /."""
    if op == ADD:
        for i in range(n):
            z[i] = xa[i] + xb[i]
    elif op == SUB:
        for i in range(n):
            z[i] = xa[i] - xb[i]
    elif op == MUL:
        for i in range(n):
            z[i] = xa[i] * xb[i]
    elif op == DIV:
        for i in range(n):
            z[i] = xa[i] / xb[i]
    else:
        nw = xw.shape[0] > 0
        for i in range(n):
            z[i] = value_of(op, xa[i], xb[i], c, xw[i] if nw else 0.0)


@jit
def _unary(op, r, R, m, M, sv, av, cbuf):
    """y = f(x) elementwise, with constants c and c2 (the b field: clamp's max)."""
    a = int(R[r, 1])
    c = R[r, 3]
    c2 = R[r, 2]
    y = _values(5 * r, 0.0, m, M, sv, av, cbuf[2:])
    x = _values(a, c, m, M, sv, av, cbuf)
    n = y.shape[0]
    # dedicated loops for the hot ops and where arrays differ from the scalar formula
    if op == RELU:            # np.maximum(x, 0): NaN propagates
        for i in range(n):
            xi = x[i]
            y[i] = xi if (xi > 0.0 or xi != xi) else 0.0
    elif op == CLAMP:
        for i in range(n):
            z = c if x[i] < c else x[i]
            y[i] = c2 if z > c2 else z
    elif op == POWC and c == 2.0:
        for i in range(n):
            y[i] = x[i] * x[i]
    elif op == SIGMOID:       # the eager array formula: no overflow for large |x|
        for i in range(n):
            y[i] = 0.5 * (np.tanh(0.5 * x[i]) + 1.0)
    elif op == TANH:
        for i in range(n):
            y[i] = np.tanh(x[i])
    elif op == EXP:
        for i in range(n):
            y[i] = np.exp(x[i])
    elif op == NEG:
        for i in range(n):
            y[i] = -x[i]
    elif op == CAST or op == CLONE:
        for i in range(n):
            y[i] = x[i]
    else:
        for i in range(n):
            y[i] = value_of(op, x[i], 0.0, c, c2)


# ----- reductions, views and gathers --------------------------------------------------
@jit
def _lane(op, r, R, m, M, sv, av, cbuf):
    """Nonlinear reductions and softmaxes: x has n elements in lanes (``_lane_index``), y
    one value per lane (one per element for the softmaxes)."""
    a = int(R[r, 1])
    c = R[r, 3]
    x = _values(a, 0.0, m, M, sv, av, cbuf)
    y = _values(5 * r, 0.0, m, M, sv, av, cbuf[1:])
    n = x.shape[0]
    kidx = _lane_index(m[r], M, n)
    soft = op == SOFTMAX or op == LOGSOFTMAX
    nk = n if soft else y.shape[0]
    acc = np.zeros(nk)
    if op == MAXALL or op == AMAX or op == LOGSUMEXP or soft:
        acc[:] = -np.inf      # the lane max, NaN propagating as np.max
        for i in range(n):
            k = kidx[i]
            if x[i] > acc[k] or x[i] != x[i]:
                if acc[k] == acc[k]:
                    acc[k] = x[i]
        if op == MAXALL or op == AMAX:
            for k in range(nk):
                y[k] = acc[k]
            return
        # logsumexp and the softmaxes: shifted by the lane max (0 where it is not finite)
        s = np.zeros(nk)
        for k in range(nk):
            if not np.isfinite(acc[k]):
                acc[k] = 0.0
        for i in range(n):
            s[kidx[i]] += np.exp(x[i] - acc[kidx[i]])
        if op == LOGSUMEXP:
            for k in range(nk):
                y[k] = acc[k] + np.log(s[k])
        elif op == SOFTMAX:
            for i in range(n):
                k = kidx[i]
                y[i] = np.exp(x[i] - acc[k]) / s[k]
        else:
            for i in range(n):
                k = kidx[i]
                y[i] = (x[i] - acc[k]) - np.log(s[k])
    elif op == MINALL or op == AMIN:
        acc[:] = np.inf
        for i in range(n):
            k = kidx[i]
            if x[i] < acc[k] or x[i] != x[i]:
                if acc[k] == acc[k]:
                    acc[k] = x[i]
        for k in range(nk):
            y[k] = acc[k]
    elif op == PROD or op == PRODDIM:
        acc[:] = 1.0
        for i in range(n):
            acc[kidx[i]] *= x[i]
        for k in range(nk):
            y[k] = acc[k]
    elif op == VAR or op == STD:
        # np.var: mean, then the sum of squared deviations over N - correction (= c)
        cnt = np.zeros(nk)
        for i in range(n):
            acc[kidx[i]] += x[i]
            cnt[kidx[i]] += 1.0
        for k in range(nk):
            acc[k] /= cnt[k]
        ss = np.zeros(nk)
        for i in range(n):
            dev = x[i] - acc[kidx[i]]
            ss[kidx[i]] += dev * dev
        for k in range(nk):
            v = ss[k] / c if c > 0.0 else np.nan
            y[k] = v if op == VAR else np.sqrt(v)
    elif op == NORM:
        # p = c: sqrt(sum x^2) for 2, (sum |x|^p)^(1/p) otherwise
        if c == 2.0:
            for i in range(n):
                acc[kidx[i]] += x[i] * x[i]
            for k in range(nk):
                y[k] = np.sqrt(acc[k])
        else:
            for i in range(n):
                acc[kidx[i]] += abs(x[i]) ** c
            for k in range(nk):
                y[k] = acc[k] ** (1.0 / c)


@jit
def _gather(op, r, R, m, M, sv, av, cbuf):
    """y[i] = x[idx[i]]; max(dim)/min(dim) first find the new arg-extreme of each lane
    (the first one on ties, as np.argmax) and keep it in the int list for backward."""
    a = int(R[r, 1])
    x = _values(a, 0.0, m, M, sv, av, cbuf)
    y = _values(5 * r, 0.0, m, M, sv, av, cbuf[1:])
    idx = _ints(r, m, M, av)
    if op == MAXDIM or op == MINDIM:
        n = x.shape[0]
        kidx = _lane_index(m[r], M, n)
        for k in range(idx.shape[0]):
            idx[k] = -1.0
        for i in range(n):
            k = kidx[i]
            j = int(idx[k])
            if j < 0:
                idx[k] = i
                continue
            best = x[j]
            if best != best:          # a NaN already won the lane
                continue
            if (x[i] > best if op == MAXDIM else x[i] < best) or x[i] != x[i]:
                idx[k] = i
    for i in range(y.shape[0]):
        y[i] = x[int(idx[i])]


@jit
def _multi(r, m, M, sv, av, cbuf):
    """cat/stack: ints = (outer, inner, extent, slot_0, extent_0, slot_1, extent_1, ...);
    part p fills extent_p of the output's extent along the joined dimension."""
    y = _values(5 * r, 0.0, m, M, sv, av, cbuf)
    ints = _ints(r, m, M, av)
    outer = int(ints[0])
    inner = int(ints[1])
    total = int(ints[2])
    off = 0
    for p in range((ints.shape[0] - 3) // 2):
        s = int(ints[3 + 2 * p])
        e = int(ints[4 + 2 * p])
        xp = _values(s, 0.0, m, M, sv, av, cbuf[1:])
        for o in range(outer):
            dst = (o * total + off) * inner
            src = o * e * inner
            for j in range(e * inner):
                y[dst + j] = xp[src + j]
        off += e


@jit
def _copyslices(r, R, m, M, sv, av, cbuf):
    """z = a with z[pos[j]] = b[j] (b: one value per position, or the constant c)."""
    a = int(R[r, 1])
    b = int(R[r, 2])
    c = R[r, 3]
    z = _values(5 * r, 0.0, m, M, sv, av, cbuf[2:])
    xa = _values(a, c, m, M, sv, av, cbuf)
    xb = _values(b, c, m, M, sv, av, cbuf[1:])
    pos = _ints(r, m, M, av)
    for i in range(z.shape[0]):
        z[i] = xa[i]
    npos = pos.shape[0]
    one = xb.shape[0] != npos
    for j in range(npos):
        z[int(pos[j])] = xb[0 if one else j]


# ----- matrix products ----------------------------------------------------------------
@jit
def _matmul(op, r, R, m, M, sv, av, cbuf):
    """mm (n,p)@(p,q), bmm (B,n,p)@(B,p,q), dot (n)@(n), mv (n,p)@(p), batch by batch, in
    plain loops: no BLAS bindings to compile, no SciPy (``forward`` hands large products
    to NumPy instead)."""
    a = int(R[r, 1])
    b = int(R[r, 2])
    ka = m[a // 5]
    kb = m[b // 5]
    xa = _values(a, 0.0, m, M, sv, av, cbuf)
    xb = _values(b, 0.0, m, M, sv, av, cbuf)
    y = _values(5 * r, 0.0, m, M, sv, av, cbuf)
    batch, n, p, q = _product_dims(op, ka, kb, M)
    for t in range(batch):
        xat = xa[t * n * p:(t + 1) * n * p]
        xbt = xb[t * p * q:(t + 1) * p * q]
        yt = y[t * n * q:(t + 1) * n * q]
        for i in range(n):
            ai = xat[i * p:(i + 1) * p]
            if q == 1:                  # a row times a column
                s = 0.0
                for k in range(p):
                    s += ai[k] * xbt[k]
                yt[i] = s
                continue
            yi = yt[i * q:(i + 1) * q]  # row i: sum over k of a[i, k] * row k of b
            for j in range(q):
                yi[j] = 0.0
            for k in range(p):
                aik = ai[k]
                bk = xbt[k * q:(k + 1) * q]
                for j in range(q):
                    yi[j] += aik * bk[j]


# ----- the sweep ----------------------------------------------------------------------
@jit
def forward_sweep(R, sv, m, M, av, start, stop):
    """Recomputes the values of records start, ..., stop - 1 in place (sources skipped)."""
    cbuf = np.zeros(4)
    ib = np.zeros((5, MAXD), np.int64)
    for r in range(start, stop):
        op = int(R[r, 0])
        if op >= SCALAR:
            # a Python-float result, written here: a call that passes arrays pays their
            # reference counts, which would cost several times the op itself
            op -= SCALAR
            c = R[r, 3]
            a = int(R[r, 1])
            if a < 0:
                x = c
            else:
                ka = m[a // 5]    # an operand may be a 0-d array: x.sum().to(...)
                x = sv[a // 5] if ka < 0 else av[M[ka, VO]]
            if op <= BINARY_LAST or (op >= GT and op <= NE):
                b = int(R[r, 2])
                if b < 0:
                    y = c
                else:
                    kb = m[b // 5]
                    y = sv[b // 5] if kb < 0 else av[M[kb, VO]]
                sv[r] = value_of(op, x, y, c, 0.0)
            else:               # unary ops keep a second constant in the b field
                sv[r] = value_of(op, x, 0.0, c, R[r, 2])
            continue
        if op < ADD:
            continue            # sources: leaves, constants, links (the caller's values)
        k = m[r]
        if k < 0 or M[k, VO] < 0:
            continue            # a record whose value is not kept (not a keep_all tape)
        if op <= BINARY_LAST:
            _binary(op, r, R, m, M, sv, av, cbuf, ib)
        elif op <= UNARY_LAST:
            _unary(op, r, R, m, M, sv, av, cbuf)
        elif op <= REDUCE_LAST:   # sum over each lane, times c (1, or 1/count for mean)
            y = _values(5 * r, 0.0, m, M, sv, av, cbuf[1:])
            y[:] = 0.0
            _walk(k, M, _values(int(R[r, 1]), 0.0, m, M, sv, av, cbuf), y, True, 1.0)
            c = R[r, 3]
            if c != 1.0:
                for i in range(y.shape[0]):
                    y[i] *= c
        elif op <= LANE_LAST:
            _lane(op, r, R, m, M, sv, av, cbuf)
        elif op <= MATMUL_LAST:
            _matmul(op, r, R, m, M, sv, av, cbuf)
        elif op <= STRIDED_LAST:  # a view: gather from where each element comes from
            y = _values(5 * r, 0.0, m, M, sv, av, cbuf[1:])
            y[:] = 0.0
            _walk(k, M, _values(int(R[r, 1]), 0.0, m, M, sv, av, cbuf), y, False, 1.0)
        elif op <= GATHER_LAST:
            _gather(op, r, R, m, M, sv, av, cbuf)
        elif op <= MULTI_LAST:
            _multi(r, m, M, sv, av, cbuf)
        elif op == COPYSLICES:
            _copyslices(r, R, m, M, sv, av, cbuf)
        elif op >= GT and op <= NE:
            _binary(op, r, R, m, M, sv, av, cbuf, ib)
        elif op == CASTNG:
            _unary(op, r, R, m, M, sv, av, cbuf)


# ----- from Python: large matrix products through NumPy --------------------------------


def forward(R, sv, m, M, av, start, stop, blas_min=BLAS_MIN):
    """``forward_sweep`` over records start, ..., stop - 1, except that matrix products of
    at least ``blas_min`` multiply-adds are done by NumPy (BLAS) between the segments, as
    backward does (``products.py``): the sweep's plain loops win on small products, BLAS
    on large ones."""
    from .products import forward as product_forward
    lo = start
    ops = R[start:stop, 0]
    for r in (np.nonzero((ops >= MM) & (ops <= MV))[0] + start).tolist():
        op = int(R[r, 0])
        batch, n, p, q = _product_dims(op, m[int(R[r, 1]) // 5], m[int(R[r, 2]) // 5], M)
        if batch * n * p * q < blas_min:
            continue
        forward_sweep(R, sv, m, M, av, lo, r)
        product_forward(op, r, R, m, M, sv, av)
        lo = r + 1
    forward_sweep(R, sv, m, M, av, lo, stop)

