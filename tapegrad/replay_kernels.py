"""Numba kernels: the forward replay sweep, which recomputes every record's value.

A recorded tape is a complete program: ``forward_sweep`` walks records start, start+1, ...,
stop-1 and writes each one's value from the values of its operands, so that a tape
recorded once (``tg.compile``) runs again at new input values with no Python per op. It
reads the tape in the layout the reverse sweep reads (``layout``: rq/rd the records, ms the
static rows, md the dynamic rows) and one table of data addresses, ``ptrs``, laid out by
``replay_program``: ``ptrs[k]`` is where array row k's value lives (the replay's arena,
float64), ``ptrs[md[k, IOBJ]]`` its int list. A scalar record's value is the ``v`` field of
its record (``rd[3r + 2]``), written in place.

Records of Python-float scalars take one inline branch (``value_of``); array records go
through one function per family (``ops.FAMILY``). Matrix products run in plain loops here;
``replay_program`` hands the large ones (``BIG``) to NumPy between sweep segments.

Preconditions (a program built from a ``keep_all`` recording meets them): every source's
value (leaves, constants, links) is in place, which the sweep does not touch; every array
record has its value's place. The int lists of gathers, cat/stack and CopySlices are
constants of the recording; max(dim)/min(dim) rewrite theirs (the new arg-extremes, which
the reverse sweep reads) and where rewrites its condition list from the condition's slot
(``cond[k]``).

Values are float64; a record of a float32 result is rounded to float32 after it is
computed, as the eager float32 operation rounds its result.
"""
import math

import numpy as np
from numba import njit

from .kernels import _bcast_strides, _lane_index, _shape, _size, _stride_walk, jit
from .layout import (AUX_BASE, AUX_ND, AUX_SHAPE, AUX_STR, C2, CONST_A, CONST_B, F32, ILEN,
                     IOBJ, OPMASK, PB, PN, PP, PQ, SCALAR, SHIFT, SIZE)
from .ops import (ABS, ADD, AMAX, AMIN, BMM, CAST, CASTNG, CAT, CLAMP, CLONE, COPYSLICES, COS,
                  DIV, DOT, EQ, ERF, EXP, EXPAND, EXPM1, FAMILY, F_BINARY, F_COMPARE, F_GATHER,
                  F_LANE, F_MATMUL, F_MULTI, F_REDUCE, F_SETITEM, F_SOURCE, F_STRIDED,
                  F_UNARY, GATHER, GE, GT, INDEX, INDEXSELECT, LE, LOG, LOG1P, LOGSOFTMAX,
                  LOGSUMEXP, LT, MAXALL, MAXD, MAXDIM, MAXIMUM, MEAN, MEANDIM, MINALL, MINDIM,
                  MINIMUM, MM, MUL, MV, NE, NEG, NORM, PERMUTE, POW, POWC, PROD, PRODDIM,
                  RECIP, RELU, RPOW, RSQRT, SELECT, SIGMOID, SIN, SLICE, SOFTMAX, SQRT,
                  SQUEEZE, SQUEEZEDIM, STACK, STD, SUB, SUM, SUMDIM, T, TANH, TRANSPOSE,
                  UNSQUEEZE, VAR, VIEW, WHERE)
from .ptr import view_f64, view_i64
from .replay_ptr import _copy

# Every opcode the sweep recomputes (sources, LEAF/CONST/LINK, are the caller's): the test
# of the table holds this list and the table in step.
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
    """The value of one element: binary ops f(x, y), unary ops f(x) with constants c, c2
    (clamp's min and max; CASTNG's kind in c), comparisons 1.0/0.0. The formulas of the
    eager scalar path (``tensor._SCALAR_F``); ops that only move values give x."""
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
    if op == RELU:          # 0 where x <= 0; NaN passes
        return 0.0 if x <= 0.0 else x
    if op == CLAMP:         # min(max(x, lo), hi); NaN passes
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
    if op == CASTNG:        # c: 0 bool, 1 integer (toward zero), 2 the same value (detach)
        if c == 0.0:
            return 1.0 if x != 0.0 else 0.0
        if c == 1.0:
            return np.trunc(x)
        return x
    return x                # to(), clone(), views of a scalar: identity


# ----- reading the tape ---------------------------------------------------------------
@njit(inline="always")
def _val(rq, rd, ms, ptrs, s):
    """The flat values of slot s: a scalar's from its record, an array's from the arena."""
    if rq[3 * s] & SCALAR:
        return rd[3 * s + 2:3 * s + 3]
    k = int(rd[3 * s + 2])
    return view_f64(ptrs[k], ms[k, SIZE])


@njit(inline="always")
def _ints(md, ptrs, k):
    """The int list of array row k (indices, operand slots, a condition)."""
    return view_i64(ptrs[md[k, IOBJ]], md[k, ILEN])


# ----- elementwise families -----------------------------------------------------------
@jit
def _binary(op, r, h, rq, rd, ms, md, ptrs, cond, fx, cbuf, ib):
    """z = f(a, b) with broadcasting (binary family and the comparisons GT..NE); a Python
    number stands in for an operand under CONST_A / CONST_B."""
    a = h >> SHIFT
    c = rd[3 * r + 1]
    cbuf[0] = c
    if h & CONST_A:             # the number first: x = c, y = the tensor in a
        sa, sb = -1, a
        xa = cbuf[0:1]
        xb = _val(rq, rd, ms, ptrs, a)
    elif h & CONST_B:
        sa, sb = a, -1
        xa = _val(rq, rd, ms, ptrs, a)
        xb = cbuf[0:1]
    else:
        sa, sb = a, int(c)
        xa = _val(rq, rd, ms, ptrs, sa)
        xb = _val(rq, rd, ms, ptrs, sb)
    k = int(rd[3 * r + 2])
    z = view_f64(ptrs[k], ms[k, SIZE])
    xw = cbuf[1:1]
    if op == WHERE:             # the condition (the output's shape); its int list too
        xw = _val(rq, rd, ms, ptrs, cond[k])
        flags = _ints(md, ptrs, k)
        for i in range(flags.shape[0]):
            flags[i] = 1 if xw[i] != 0.0 else 0
    n = z.shape[0]
    if n == 0:
        return
    if _size(rq, rd, ms, sa) == n and _size(rq, rd, ms, sb) == n:
        _binary_same(op, n, z, xa, xb, xw)
        return
    if fx[k, 0] != 0:           # a broadcast the recording resolved to rows (fx)
        _binary_rows(op, fx[k, 0], fx[k, 1], fx[k, 2], z, xa, xb, xw)
        return
    shp = ib[0]
    ta = ib[1]
    tb = ib[2]
    idx = ib[3]
    tmp = ib[4]
    nd = _shape(rq, rd, ms, r, shp)
    _bcast_strides(tmp, _shape(rq, rd, ms, sa, tmp), nd, ta)
    _bcast_strides(tmp, _shape(rq, rd, ms, sb, tmp), nd, tb)
    # drop the output's size-1 dims and merge neighbours both operands walk in step
    nd2 = 0
    for d in range(nd):
        if shp[d] == 1:
            continue
        if nd2 > 0 and ta[nd2 - 1] == ta[d] * shp[d] and tb[nd2 - 1] == tb[d] * shp[d]:
            shp[nd2 - 1] *= shp[d]
            ta[nd2 - 1] = ta[d]
            tb[nd2 - 1] = tb[d]
        else:
            shp[nd2] = shp[d]
            ta[nd2] = ta[d]
            tb[nd2] = tb[d]
            nd2 += 1
    nd = nd2
    if nd == 0:                 # one element, operands broadcast from one element
        _binary_same(op, 1, z, xa, xb, xw)
        return
    for d in range(nd):
        idx[d] = 0
    # the last dimension's strides are now 1 or 0 (broadcast): one row at a time, a
    # stride-0 operand spread over a scratch row, so every row runs the contiguous loops
    inner = shp[nd - 1]
    rowa = np.empty(inner)
    rowb = np.empty(inner)
    oa = 0
    ob = 0
    i = 0
    for _ in range(n // inner):
        if ta[nd - 1] == 1:
            ra = xa[oa:oa + inner]
        else:
            rowa[:] = xa[oa]
            ra = rowa
        if tb[nd - 1] == 1:
            rb = xb[ob:ob + inner]
        else:
            rowb[:] = xb[ob]
            rb = rowb
        _binary_same(op, inner, z[i:i + inner], ra, rb, xw[i:i + inner] if op == WHERE
                     else xw)
        i += inner
        # odometer over the outer dimensions, carrying the operands' offsets along
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            oa += ta[d]
            ob += tb[d]
            if idx[d] < shp[d]:
                break
            oa -= ta[d] * idx[d]
            ob -= tb[d] * idx[d]
            idx[d] = 0
            d -= 1


@jit
def _binary_rows(op, kind, outer, inner, z, xa, xb, xw):
    """A broadcast binary op as ``outer`` rows of ``inner`` values (``Program.fx``): kind 1
    a full, b one row; 2 a full, b one value per row; 3 a one row, b full; 4 a one value
    per row, b full; 5 a full, b one value; 6 a one value, b full. One loop nest (a call
    per row would cost more than the row)."""
    ra = inner if kind in (1, 2, 5) else (1 if kind == 4 else 0)   # a's step per row
    rb = inner if kind in (3, 4, 6) else (1 if kind == 2 else 0)
    if kind == 1 or kind == 3:          # both run along the row
        _rows_vv(op, outer, inner, z, xa, ra, xb, rb, xw)
    elif kind == 2 or kind == 5:        # a runs, b one value per row
        _rows_vs(op, outer, inner, z, xa, ra, xb, rb, False, xw)
    else:                               # b runs, a one value per row
        _rows_vs(op, outer, inner, z, xb, rb, xa, ra, True, xw)


@jit
def _rows_vv(op, outer, inner, z, a, ra, b, rb, xw):
    """z[i, j] = f(a[i ra + j], b[i rb + j]); each row taken as a view of its own (LLVM
    then vectorizes the row: with offsets into the whole arrays it cannot tell that they
    do not overlap)."""
    for i in range(outer):
        o, oa, ob = i * inner, i * ra, i * rb
        zr = z[o:o + inner]
        ar = a[oa:oa + inner]
        br = b[ob:ob + inner]
        if op == ADD:
            for j in range(inner):
                zr[j] = ar[j] + br[j]
        elif op == SUB:
            for j in range(inner):
                zr[j] = ar[j] - br[j]
        elif op == MUL:
            for j in range(inner):
                zr[j] = ar[j] * br[j]
        elif op == WHERE:
            wr = xw[o:o + inner]
            for j in range(inner):
                zr[j] = ar[j] if wr[j] != 0.0 else br[j]
        else:
            for j in range(inner):
                zr[j] = value_of(op, ar[j], br[j], 0.0, 0.0)


@jit
def _rows_vs(op, outer, inner, z, x, rx, s, rs, first, xw):
    """z[i, j] = f(x[i rx + j], s[i rs]), or f(s[i rs], x[i rx + j]) when ``first``."""
    for i in range(outer):
        o, ox, v = i * inner, i * rx, s[i * rs]
        zr = z[o:o + inner]
        xr = x[ox:ox + inner]
        if op == ADD:
            for j in range(inner):
                zr[j] = xr[j] + v
        elif op == MUL:
            for j in range(inner):
                zr[j] = xr[j] * v
        elif op == SUB and not first:
            for j in range(inner):
                zr[j] = xr[j] - v
        elif op == SUB:
            for j in range(inner):
                zr[j] = v - xr[j]
        elif op == WHERE:
            wr = xw[o:o + inner]
            for j in range(inner):
                if first:
                    zr[j] = v if wr[j] != 0.0 else xr[j]
                else:
                    zr[j] = xr[j] if wr[j] != 0.0 else v
        elif first:
            for j in range(inner):
                zr[j] = value_of(op, v, xr[j], 0.0, 0.0)
        else:
            for j in range(inner):
                zr[j] = value_of(op, xr[j], v, 0.0, 0.0)


@jit
def _binary_same(op, n, z, xa, xb, xw):
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
    elif op == WHERE:           # a where the condition holds, b elsewhere
        for i in range(n):
            z[i] = xa[i] if xw[i] != 0.0 else xb[i]
    else:
        for i in range(n):
            z[i] = value_of(op, xa[i], xb[i], 0.0, 0.0)


@jit
def _unary(op, r, h, rq, rd, ms, msd, ptrs):
    """y = f(x) elementwise, with constants c (the b field) and c2 (the static row: clamp's
    max). CASTNG (c: 0 bool, 1 integer, 2 detach) too."""
    a = h >> SHIFT
    c = rd[3 * r + 1]
    k = int(rd[3 * r + 2])
    c2 = msd[k, C2]
    x = _val(rq, rd, ms, ptrs, a)
    y = view_f64(ptrs[k], ms[k, SIZE])
    n = y.shape[0]
    # dedicated loops for the hot ops and where arrays differ from the scalar formula
    if op == RELU:              # np.maximum(x, 0): NaN passes
        for i in range(n):
            xi = x[i]
            y[i] = 0.0 if xi <= 0.0 else xi
    elif op == CLAMP:
        for i in range(n):
            zi = c if x[i] < c else x[i]
            y[i] = c2 if zi > c2 else zi
    elif op == POWC and c == 2.0:
        for i in range(n):
            y[i] = x[i] * x[i]
    elif op == SIGMOID:         # the eager array formula: no overflow for large |x|
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
    else:
        for i in range(n):
            y[i] = value_of(op, x[i], 0.0, c, c2)


# ----- reductions, views and gathers --------------------------------------------------
@jit
def _reduce(r, h, rq, rd, ms, ptrs):
    """sum/mean: y[lane] = c * sum of x over the lane (c: 1, or 1/count for mean)."""
    k = int(rd[3 * r + 2])
    x = _val(rq, rd, ms, ptrs, h >> SHIFT)
    y = view_f64(ptrs[k], ms[k, SIZE])
    y[:] = 0.0
    _stride_walk(ms[k, AUX_ND], ms[k, AUX_SHAPE:AUX_SHAPE + MAXD],
                 ms[k, AUX_STR:AUX_STR + MAXD], ms[k, AUX_BASE], x, y, True, 1.0)
    c = rd[3 * r + 1]
    if c != 1.0:
        for i in range(y.shape[0]):
            y[i] *= c


@jit
def _view(r, h, rq, rd, ms, ptrs):
    """A view: y[i] = x[base + sum(idx_i * strides)] over y's shape."""
    k = int(rd[3 * r + 2])
    x = _val(rq, rd, ms, ptrs, h >> SHIFT)
    y = view_f64(ptrs[k], ms[k, SIZE])
    y[:] = 0.0
    _stride_walk(ms[k, AUX_ND], ms[k, AUX_SHAPE:AUX_SHAPE + MAXD],
                 ms[k, AUX_STR:AUX_STR + MAXD], ms[k, AUX_BASE], x, y, False, 1.0)


@jit
def _lane(op, r, h, rq, rd, ms, ptrs):
    """Nonlinear reductions and softmaxes: x has n elements in lanes (``_lane_index``), y
    one value per lane (one per element for the softmaxes); c: var's N - correction,
    norm's p."""
    k = int(rd[3 * r + 2])
    c = rd[3 * r + 1]
    x = _val(rq, rd, ms, ptrs, h >> SHIFT)
    y = view_f64(ptrs[k], ms[k, SIZE])
    n = x.shape[0]
    kidx = _lane_index(ms, k, n)
    soft = op == SOFTMAX or op == LOGSOFTMAX
    nk = n if soft else y.shape[0]
    acc = np.zeros(nk)
    if op == MAXALL or op == AMAX or op == LOGSUMEXP or soft:
        acc[:] = -np.inf      # the lane max, NaN propagating as np.max
        for i in range(n):
            j = kidx[i]
            if x[i] > acc[j] or x[i] != x[i]:
                if acc[j] == acc[j]:
                    acc[j] = x[i]
        if op == MAXALL or op == AMAX:
            for j in range(nk):
                y[j] = acc[j]
            return
        # logsumexp and the softmaxes: shifted by the lane max (0 where it is not finite)
        s = np.zeros(nk)
        for j in range(nk):
            if not np.isfinite(acc[j]):
                acc[j] = 0.0
        for i in range(n):
            s[kidx[i]] += np.exp(x[i] - acc[kidx[i]])
        if op == LOGSUMEXP:
            for j in range(nk):
                y[j] = acc[j] + np.log(s[j])
        elif op == SOFTMAX:
            for i in range(n):
                j = kidx[i]
                y[i] = np.exp(x[i] - acc[j]) / s[j]
        else:
            for i in range(n):
                j = kidx[i]
                y[i] = (x[i] - acc[j]) - np.log(s[j])
    elif op == MINALL or op == AMIN:
        acc[:] = np.inf
        for i in range(n):
            j = kidx[i]
            if x[i] < acc[j] or x[i] != x[i]:
                if acc[j] == acc[j]:
                    acc[j] = x[i]
        for j in range(nk):
            y[j] = acc[j]
    elif op == PROD or op == PRODDIM:
        acc[:] = 1.0
        for i in range(n):
            acc[kidx[i]] *= x[i]
        for j in range(nk):
            y[j] = acc[j]
    elif op == VAR or op == STD:
        # np.var: the mean, then the sum of squared deviations over N - correction (= c)
        cnt = np.zeros(nk)
        for i in range(n):
            acc[kidx[i]] += x[i]
            cnt[kidx[i]] += 1.0
        for j in range(nk):
            acc[j] /= cnt[j]
        ss = np.zeros(nk)
        for i in range(n):
            dev = x[i] - acc[kidx[i]]
            ss[kidx[i]] += dev * dev
        for j in range(nk):
            v = ss[j] / c if c > 0.0 else np.nan
            y[j] = v if op == VAR else np.sqrt(v)
    elif op == NORM:
        # p = c: sqrt(sum x^2) for 2, (sum |x|^p)^(1/p) otherwise
        if c == 2.0:
            for i in range(n):
                acc[kidx[i]] += x[i] * x[i]
            for j in range(nk):
                y[j] = np.sqrt(acc[j])
        else:
            for i in range(n):
                acc[kidx[i]] += abs(x[i]) ** c
            for j in range(nk):
                y[j] = acc[j] ** (1.0 / c)


@jit
def _gather(op, r, h, rq, rd, ms, md, ptrs):
    """y[i] = x[idx[i]]; max(dim)/min(dim) first find the new arg-extreme of each lane
    (the first one on ties, a NaN wins, as np.argmax) and keep it in the int list the
    reverse sweep reads."""
    k = int(rd[3 * r + 2])
    x = _val(rq, rd, ms, ptrs, h >> SHIFT)
    y = view_f64(ptrs[k], ms[k, SIZE])
    idx = _ints(md, ptrs, k)
    if op == MAXDIM or op == MINDIM:
        n = x.shape[0]
        kidx = _lane_index(ms, k, n)
        for j in range(idx.shape[0]):
            idx[j] = -1
        for i in range(n):
            j = kidx[i]
            b = idx[j]
            if b < 0:
                idx[j] = i
                continue
            best = x[b]
            if best != best:          # a NaN already won the lane
                continue
            if (x[i] > best if op == MAXDIM else x[i] < best) or x[i] != x[i]:
                idx[j] = i
    for i in range(y.shape[0]):
        y[i] = x[idx[i]]


@jit
def _multi(r, rq, rd, ms, md, ptrs):
    """cat/stack: ints = (outer, inner, extent, slot_0, extent_0, slot_1, extent_1, ...);
    part p fills extent_p of the output's extent along the joined dimension."""
    k = int(rd[3 * r + 2])
    y = view_f64(ptrs[k], ms[k, SIZE])
    ints = _ints(md, ptrs, k)
    outer = ints[0]
    inner = ints[1]
    total = ints[2]
    at = 0
    for p in range((ints.shape[0] - 3) // 2):
        xp = _val(rq, rd, ms, ptrs, ints[3 + 2 * p])
        e = ints[4 + 2 * p]
        for o in range(outer):
            dst = (o * total + at) * inner
            src = o * e * inner
            for j in range(e * inner):
                y[dst + j] = xp[src + j]
        at += e


@jit
def _copyslices(r, h, rq, rd, ms, md, ptrs, cbuf):
    """z = a with z[pos[j]] = b[j] (b: one value per position, or the number c)."""
    k = int(rd[3 * r + 2])
    z = view_f64(ptrs[k], ms[k, SIZE])
    xa = _val(rq, rd, ms, ptrs, h >> SHIFT)
    if h & CONST_B:
        cbuf[0] = rd[3 * r + 1]
        xb = cbuf[0:1]
    else:
        xb = _val(rq, rd, ms, ptrs, int(rd[3 * r + 1]))
    pos = _ints(md, ptrs, k)
    for i in range(z.shape[0]):
        z[i] = xa[i]
    npos = pos.shape[0]
    one = xb.shape[0] != npos
    for j in range(npos):
        z[pos[j]] = xb[0 if one else j]


@jit
def _matmul(r, h, rq, rd, ms, ptrs):
    """mm (n,p)@(p,q), bmm (B,n,p)@(B,p,q), dot (p)@(p), mv (n,p)@(p), batch by batch, in
    plain loops (the sizes (B, n, p, q) are in the record's static row)."""
    k = int(rd[3 * r + 2])
    xa = _val(rq, rd, ms, ptrs, h >> SHIFT)
    xb = _val(rq, rd, ms, ptrs, int(rd[3 * r + 1]))
    y = view_f64(ptrs[k], ms[k, SIZE])
    batch, n, p, q = ms[k, PB], ms[k, PN], ms[k, PP], ms[k, PQ]
    if batch == 1:              # (a loop around the calls, even of one turn, costs 4x)
        if q == 1:
            _mv(xa, 0, xb, 0, y, 0, n, p)
        else:
            _mm(xa, 0, xb, 0, y, 0, n, p, q)
        return
    for t in range(batch):
        if q == 1:
            _mv(xa, t * n * p, xb, t * p, y, t * n, n, p)
        else:
            _mm(xa, t * n * p, xb, t * p * q, y, t * n * q, n, p, q)


@jit
def _mm(a, oa, b, ob, y, oy, n, p, q):
    """y (n, q) = a (n, p) b (p, q): row i of y is the sum over k of a[i, k] times row k
    of b, accumulated in a row of the function's own (its loop vectorizes: it cannot
    overlap the operands) and then stored."""
    row = np.empty(q)
    for i in range(n):
        for j in range(q):
            row[j] = 0.0
        for kk in range(p):
            aik = a[oa + i * p + kk]
            bk = ob + kk * q
            for j in range(q):
                row[j] += aik * b[bk + j]
        yi = oy + i * q
        for j in range(q):
            y[yi + j] = row[j]


@jit
def _mv(a, oa, b, ob, y, oy, n, p):
    """y (n) = a (n, p) b (p): dot products, summed in four registers (then added in
    pairs) so that the additions do not wait on each other."""
    p4 = p - p % 4
    for i in range(n):
        ai = oa + i * p
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for kk in range(0, p4, 4):
            s0 += a[ai + kk] * b[ob + kk]
            s1 += a[ai + kk + 1] * b[ob + kk + 1]
            s2 += a[ai + kk + 2] * b[ob + kk + 2]
            s3 += a[ai + kk + 3] * b[ob + kk + 3]
        for kk in range(p4, p):
            s0 += a[ai + kk] * b[ob + kk]
        y[oy + i] = (s0 + s1) + (s2 + s3)


@jit
def _round32(y):
    """A float32 result: each value rounded to float32, as the eager op rounds it."""
    for i in range(y.shape[0]):
        y[i] = np.float32(y[i])


# ----- what the recording says about gradients ---------------------------------------
@jit
def requires_of(rq, rd, md, ptrs, req):
    """Marks in ``req`` (sources marked by the caller) every record a gradient flows into
    from a marked record: through every operand but where's condition; comparisons and
    CASTNG pass none."""
    for r in range(rq.shape[0] // 3):
        h = rq[3 * r]
        fam = FAMILY[h & OPMASK]
        if fam == F_SOURCE or fam == F_COMPARE:
            continue
        if fam == F_MULTI:
            ints = _ints(md, ptrs, int(rd[3 * r + 2]))
            for p in range((ints.shape[0] - 3) // 2):
                if req[ints[3 + 2 * p]]:
                    req[r] = 1
            continue
        if req[h >> SHIFT]:
            req[r] = 1
        if (fam == F_BINARY or fam == F_MATMUL or fam == F_SETITEM) and \
                not (h & (CONST_A | CONST_B)) and req[int(rd[3 * r + 1])]:
            req[r] = 1


# ----- the sweep ----------------------------------------------------------------------
@jit
def _load(rq, rd, ms, ptrs, r, code, src):
    """Source record r takes the values at address src (element type code; -1 a Python
    float's double)."""
    if rq[3 * r] & SCALAR:
        if code <= 0:
            rd[3 * r + 2] = view_f64(src, 1)[0]
        else:
            tmp = np.empty(1)
            _copy(code, src, tmp)
            rd[3 * r + 2] = tmp[0]
        return
    k = int(rd[3 * r + 2])
    _copy(0 if code < 0 else code, src, view_f64(ptrs[k], ms[k, SIZE]))


@jit
def forward_sweep(rq, rd, ms, msd, md, ptrs, cond, c2s, fx, src_ext, ext, addr, start, stop):
    """Recomputes the values of records start, ..., stop - 1 in place. A source record r
    with src_ext[r] = j >= 0 loads external j (its element type ext[j, 1], at address
    addr[j]); the others are the caller's. cond[k]: where's condition slot (array row k);
    c2s[r]: the second constant of a scalar record r (clamp's max; only read for scalar
    clamps); fx[k]: a broadcast resolved to rows (``_binary_rows``)."""
    cbuf = np.zeros(4)
    ib = np.zeros((5, MAXD), np.int64)
    for r in range(start, stop):
        h = rq[3 * r]
        op = h & OPMASK
        fam = FAMILY[op]
        if fam == F_SOURCE:
            j = src_ext[r]
            if j >= 0:
                _load(rq, rd, ms, ptrs, r, ext[j, 1], addr[j])
            continue
        if h & SCALAR:
            # a Python-float result from Python-float operands, written inline
            a = h >> SHIFT
            c = rd[3 * r + 1]
            if fam == F_BINARY or (fam == F_COMPARE and op != CASTNG):
                if h & CONST_A:
                    v = value_of(op, c, rd[3 * a + 2], 0.0, 0.0)
                elif h & CONST_B:
                    v = value_of(op, rd[3 * a + 2], c, 0.0, 0.0)
                else:
                    v = value_of(op, rd[3 * a + 2], rd[3 * int(c) + 2], 0.0, 0.0)
            else:               # unary ops (and views of a scalar): the constant in b
                v = value_of(op, rd[3 * a + 2], 0.0, c, c2s[r] if op == CLAMP else 0.0)
            rd[3 * r + 2] = np.float32(v) if h & F32 else v
            continue
        if fx[int(rd[3 * r + 2]), 0] < 0:
            continue            # a detach: its values are its operand's (Program.alias)
        if fam == F_BINARY:
            _binary(op, r, h, rq, rd, ms, md, ptrs, cond, fx, cbuf, ib)
        elif fam == F_UNARY:
            _unary(op, r, h, rq, rd, ms, msd, ptrs)
        elif fam == F_REDUCE:
            _reduce(r, h, rq, rd, ms, ptrs)
        elif fam == F_LANE:
            _lane(op, r, h, rq, rd, ms, ptrs)
        elif fam == F_MATMUL:
            _matmul(r, h, rq, rd, ms, ptrs)
        elif fam == F_STRIDED:
            _view(r, h, rq, rd, ms, ptrs)
        elif fam == F_GATHER:
            _gather(op, r, h, rq, rd, ms, md, ptrs)
        elif fam == F_MULTI:
            _multi(r, rq, rd, ms, md, ptrs)
        elif fam == F_SETITEM:
            _copyslices(r, h, rq, rd, ms, md, ptrs, cbuf)
        elif fam == F_COMPARE:
            if op == CASTNG:
                _unary(op, r, h, rq, rd, ms, msd, ptrs)
            else:
                _binary(op, r, h, rq, rd, ms, md, ptrs, cond, fx, cbuf, ib)
        if h & F32:
            k = int(rd[3 * r + 2])
            _round32(view_f64(ptrs[k], ms[k, SIZE]))
