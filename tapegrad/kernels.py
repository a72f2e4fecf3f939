"""Numba kernels: the reverse sweep over a tape and the derivative math of every opcode.

The sweep walks the records from the last to the first. A record that no root reaches is
skipped; a reached one adds its adjoint times the local partial derivatives into the
adjoints of its operands and marks them reached. Records of Python-float scalars (opcode +
SCALAR) take a branch with no array views; array records go through one loop per family
(see ``ops.FAMILY_RANGES``).

Layout of the arguments (built by ``tape.Tape.freeze``):
  R[r]    = (op, a, b, c, v) of record r; operand slots are flat offsets 5 * record.
  sv, sg  = value and adjoint of each record stored as a scalar.
  m[r]    = row of record r in the array metadata M, or -1 for a scalar-stored record.
  M[k]    = (value offset or -1, adjoint offset, size, ndim, int-list offset, its length,
             shape[MAXD], aux ndim, aux base, aux shape[MAXD], aux strides[MAXD]).
  av, ag  = flat float64 values (and int lists) and adjoints of array records.
The sweep runs records start, start-1, ..., stop: backward splits it at hooked slots and at
matrix products, which NumPy does (``products.py``).
"""
import os
import warnings

import numpy as np
from numba import njit

from .layout import (AUX_BASE, AUX_ND, AUX_SHAPE, AUX_STR, GO, IN, IO, META_WIDTH,  # noqa: F401
                     ND, NEEDS_TABLE, SHAPE, SIZE, VO)
from .ops import (MAXD, SCALAR, CONST, BINARY_LAST, UNARY_LAST, REDUCE_LAST,
                  LANE_LAST, MATMUL_LAST, STRIDED_LAST, GATHER_LAST, MULTI_LAST,
                  ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, WHERE,
                  NEG, EXP, LOG, TANH, SIGMOID, SQRT, ABS, RELU, CLAMP, POWC, RPOW, RECIP,
                  SIN, COS, LOG1P, EXPM1, RSQRT, ERF,
                  MAXALL, MINALL, AMAX, AMIN, PROD, PRODDIM, VAR, STD, NORM, LOGSUMEXP,
                  SOFTMAX, LOGSOFTMAX, MM, DOT, MV, COPYSLICES)

def _cache_ok():
    """True when Numba can write its on-disk cache somewhere (read-only installs cannot)."""
    if os.environ.get("TAPEGRAD_NO_CACHE"):
        return False
    try:
        njit(cache=True)(_probe)
        return True
    except Exception:  # numba raises RuntimeError when no cache locator is writable
        warnings.warn("tapegrad: no writable Numba cache directory; kernels compile "
                      "in every process (set NUMBA_CACHE_DIR to a writable folder)")
        return False


def _probe():
    return 0


_CACHE = _cache_ok()


def jit(fn):
    return njit(cache=_CACHE, nogil=True, error_model="numpy")(fn)


def jit_inline(fn):
    """For the per-element derivative switches: inlined so LLVM can hoist the switch."""
    return njit(cache=_CACHE, nogil=True, error_model="numpy", inline="always")(fn)


# ----- per-element derivatives --------------------------------------------------------
@jit
def unary_grad(op, x, y, c, c2):
    """d y / d x for an elementwise unary record y = f(x) with constants c, c2."""
    if op == NEG:
        return -1.0
    if op == EXP:           # d/dx e^x = e^x
        return y
    if op == LOG:           # d/dx log x = 1/x
        return 1.0 / x
    if op == TANH:          # d/dx tanh = 1 - tanh^2
        return 1.0 - y * y
    if op == SIGMOID:       # d/dx s = s (1 - s)
        return y * (1.0 - y)
    if op == SQRT:          # d/dx sqrt x = 1 / (2 sqrt x)
        return 0.5 / y
    if op == ABS:           # sign(x), 0 at 0 as PyTorch
        return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)
    if op == RELU:          # 0 where the result is <= 0 (relu'(0) = 0); NaN passes
        return 0.0 if y <= 0 else 1.0
    if op == CLAMP:         # 1 inside [min, max], bounds included
        return 1.0 if (x >= c and x <= c2) else 0.0
    if op == POWC:          # d/dx x^c = c x^(c-1); 0 for c == 0 as PyTorch
        return 0.0 if c == 0.0 else c * x ** (c - 1.0)
    if op == RPOW:          # d/dx c^x = c^x log c; 0 where c == 0 and x >= 0
        return 0.0 if (c == 0.0 and x >= 0) else y * np.log(c)
    if op == RECIP:         # d/dx 1/x = -1/x^2 = -y^2
        return -y * y
    if op == SIN:           # d/dx sin = cos
        return np.cos(x)
    if op == COS:           # d/dx cos = -sin
        return -np.sin(x)
    if op == LOG1P:         # d/dx log(1 + x) = 1 / (1 + x)
        return 1.0 / (1.0 + x)
    if op == EXPM1:         # d/dx (e^x - 1) = e^x = y + 1
        return y + 1.0
    if op == RSQRT:         # d/dx x^(-1/2) = -x^(-3/2) / 2 = -y^3 / 2
        return -0.5 * y * y * y
    if op == ERF:           # d/dx erf x = 2/sqrt(pi) e^(-x^2)
        return 1.1283791670955126 * np.exp(-x * x)
    return 1.0              # to() and clone(): identity


@jit
def binary_grad(op, x, y, z, w):
    """(d z/d x, d z/d y) for an elementwise binary record z = f(x, y); w: where's cond."""
    if op == ADD:
        return 1.0, 1.0
    if op == SUB:
        return 1.0, -1.0
    if op == MUL:
        return y, x
    if op == DIV:           # d/dx x/y = 1/y, d/dy x/y = -x/y^2
        return 1.0 / y, -x / (y * y)
    if op == POW:           # d/dx x^y = y x^(y-1), d/dy x^y = x^y log x
        dx = 0.0 if y == 0.0 else y * x ** (y - 1.0)
        dy = 0.0 if (x == 0.0 and y >= 0) else z * np.log(x)
        return dx, dy
    if op == MAXIMUM:       # the larger gets the gradient, a tie splits it, NaN passes it
        if x == y:
            return 0.5, 0.5
        return (0.0 if x < y else 1.0), (0.0 if y < x else 1.0)
    if op == MINIMUM:
        if x == y:
            return 0.5, 0.5
        return (0.0 if x > y else 1.0), (0.0 if y > x else 1.0)
    if op == WHERE:         # x where the condition holds, y elsewhere
        return w, 1.0 - w
    return np.nan, np.nan


# ----- operand access -----------------------------------------------------------------
@jit
def _values(s, c, m, M, sv, av, cbuf):
    """Flat values of operand slot s (s < 0: the constant c)."""
    if s < 0:
        cbuf[0] = c
        return cbuf[0:1]
    r = s // 5
    k = m[r]
    if k < 0:
        return sv[r:r + 1]
    o = M[k, VO]
    if o < 0:
        return av[0:0]
    return av[o:o + M[k, SIZE]]


@jit
def _ints(r, m, M, av):
    """The int list (indices, slots, a condition) a record keeps in the value buffer."""
    k = m[r]
    o = M[k, IO]
    return av[o:o + M[k, IN]]


@jit
def _adjoints(r, m, M, sg, ag):
    k = m[r]
    if k < 0:
        return sg[r:r + 1]
    o = M[k, GO]
    return ag[o:o + M[k, SIZE]]


@jit
def _shape(s, m, M, out):
    """Writes the shape of slot s into out; returns its ndim (0 for scalars and constants)."""
    if s < 0:
        return 0
    k = m[s // 5]
    if k < 0:
        return 0
    nd = M[k, ND]
    for d in range(nd):
        out[d] = M[k, SHAPE + d]
    return nd


@jit
def _size(s, m, M):
    """Number of elements of operand slot s (1 for scalars and Python constants)."""
    if s < 0:
        return 1
    k = m[s // 5]
    return 1 if k < 0 else M[k, SIZE]


@jit
def _needs_grad(s, R):
    """False for Python constants and for tensors recorded as constants."""
    return s >= 0 and int(R[s // 5, 0]) != CONST


@jit
def _bcast_strides(shape, nd, out_nd, strides):
    """C strides of an array of shape[:nd] broadcast to out_nd dims (0 on broadcast dims)."""
    acc = 1
    for d in range(out_nd - 1, -1, -1):
        j = d - (out_nd - nd)
        if j < 0 or shape[j] == 1:
            strides[d] = 0
        else:
            strides[d] = acc
            acc *= shape[j]


# ----- elementwise families -----------------------------------------------------------
@jit
def _binary(op, r, R, m, M, sv, av, sg, ag, cbuf, needs):
    a = int(R[r, 1])
    b = int(R[r, 2])
    c = R[r, 3]
    g = _adjoints(r, m, M, sg, ag)
    # a value the record did not keep (its only user needs no grad) reads as empty
    xa = _values(a, c, m, M, sv, av, cbuf)
    xb = _values(b, c, m, M, sv, av, cbuf[1:])
    xy = _values(5 * r, c, m, M, sv, av, cbuf) if needs[op] & 4 else av[0:0]
    na = xa.shape[0] > 0
    nb = xb.shape[0] > 0
    ny = xy.shape[0] > 0
    xw = _values(int(c), 0.0, m, M, sv, av, cbuf) if op == WHERE else av[0:0]
    nw = op == WHERE
    # An operand that needs no grad writes its share into a scratch cell.
    grad_a = _needs_grad(a, R)
    grad_b = _needs_grad(b, R)
    ga = _adjoints(a // 5, m, M, sg, ag) if grad_a else cbuf[2:3]
    gb = _adjoints(b // 5, m, M, sg, ag) if grad_b else cbuf[3:4]
    n = g.shape[0]
    if _size(a, m, M) == n and _size(b, m, M) == n:
        _binary_same(op, n, g, xa, xb, xy, xw, ga, gb, na, nb, ny, grad_a, grad_b)
        return
    if n == 0:
        return
    # Broadcasting, handled once for every op: read the operands out to the output's
    # shape, differentiate elementwise, then sum each share back to its operand's shape.
    shp = np.zeros(MAXD, np.int64)
    sa = np.zeros(MAXD, np.int64)
    sb = np.zeros(MAXD, np.int64)
    nd = _shape(5 * r, m, M, shp)
    tmp = np.zeros(MAXD, np.int64)
    _bcast_strides(tmp, _shape(a, m, M, tmp), nd, sa)
    _bcast_strides(tmp, _shape(b, m, M, tmp), nd, sb)
    fa = np.zeros(n)
    fb = np.zeros(n)
    if na:
        _stride_walk(nd, shp, sa, 0, xa, fa, False, 1.0)
    if nb:
        _stride_walk(nd, shp, sb, 0, xb, fb, False, 1.0)
    ta = np.zeros(n)
    tb = np.zeros(n)
    _binary_same(op, n, g, fa, fb, xy, xw, ta, tb, na, nb, ny, grad_a, grad_b)
    if grad_a:
        _stride_walk(nd, shp, sa, 0, ta, ga, True, 1.0)
    if grad_b:
        _stride_walk(nd, shp, sb, 0, tb, gb, True, 1.0)


@jit
def _binary_same(op, n, g, xa, xb, xy, xw, ga, gb, na, nb, ny, grad_a, grad_b):
    """The binary backward when no operand is broadcast: dedicated loops for + - *."""
    if op == ADD or op == SUB:
        if grad_a:
            for i in range(n):
                ga[i] += g[i]
        if grad_b:
            s = 1.0 if op == ADD else -1.0
            for i in range(n):
                gb[i] += s * g[i]
        return
    if op == MUL:
        if grad_a:
            for i in range(n):
                ga[i] += g[i] * xb[i]
        if grad_b:
            for i in range(n):
                gb[i] += g[i] * xa[i]
        return
    nw = xw.shape[0] > 0
    for i in range(n):
        da, db = binary_grad(op, xa[i] if na else 0.0, xb[i] if nb else 0.0,
                             xy[i] if ny else 0.0, xw[i] if nw else 0.0)
        ga[i if grad_a else 0] += g[i] * da
        gb[i if grad_b else 0] += g[i] * db


@jit
def _unary(op, r, R, m, M, sv, av, sg, ag, cbuf, needs):
    a = int(R[r, 1])
    if int(R[a // 5, 0]) == CONST:
        return
    c = R[r, 3]
    c2 = R[r, 2]
    g = _adjoints(r, m, M, sg, ag)
    ga = _adjoints(a // 5, m, M, sg, ag)
    x = _values(a, c, m, M, sv, av, cbuf) if needs[op] & 1 else av[0:0]
    y = _values(5 * r, c, m, M, sv, av, cbuf) if needs[op] & 4 else av[0:0]
    n = g.shape[0]
    # dedicated loops for the hot ops; the switch in unary_grad for the rest
    if op == RELU:
        for i in range(n):
            if not y[i] <= 0:
                ga[i] += g[i]
    elif op == CLAMP:
        for i in range(n):
            if x[i] >= c and x[i] <= c2:
                ga[i] += g[i]
    elif op == POWC and c == 2.0:
        for i in range(n):
            ga[i] += 2.0 * x[i] * g[i]
    elif op == TANH:
        for i in range(n):
            ga[i] += g[i] * (1.0 - y[i] * y[i])
    elif op == NEG:
        for i in range(n):
            ga[i] -= g[i]
    else:
        na = x.shape[0] > 0
        ny = y.shape[0] > 0
        for i in range(n):
            ga[i] += g[i] * unary_grad(op, x[i] if na else 0.0, y[i] if ny else 0.0, c, c2)


# ----- reductions, views and gathers --------------------------------------------------
@jit
def _walk(k, M, g, ga, scatter, scale):
    """The strided walk of M[k]'s aux map (views and reductions)."""
    _stride_walk(M[k, AUX_ND], M[k, AUX_SHAPE:AUX_SHAPE + MAXD], M[k, AUX_STR:AUX_STR + MAXD],
                 M[k, AUX_BASE], g, ga, scatter, scale)


@jit
def _stride_walk(nd, shape, strides, base, g, ga, scatter, scale):
    """Walks ``shape`` in C order, element i at offset o = base + sum(idx * strides):
    ga[o] += g[i] (scatter) or ga[i] += scale * g[o] (gather)."""
    n = g.shape[0] if scatter else ga.shape[0]
    if n == 0:
        return
    if nd == 0:
        if scatter:
            ga[base] += g[0]
        else:
            ga[0] += scale * g[base]
        return
    if not scatter:
        flat = True
        for d in range(nd):
            flat = flat and strides[d] == 0
        if flat:                 # a full reduction: every element gets the same share
            s = scale * g[base]
            for i in range(n):
                ga[i] += s
            return
    idx = np.zeros(MAXD, np.int64)
    inner = shape[nd - 1]
    si = strides[nd - 1]
    o = base
    i = 0
    for _ in range(n // inner):
        if scatter:
            for j in range(inner):
                ga[o + j * si] += g[i + j]
        else:
            for j in range(inner):
                ga[i + j] += scale * g[o + j * si]
        i += inner
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            o += strides[d]
            if idx[d] < shape[d]:
                break
            o -= strides[d] * idx[d]
            idx[d] = 0
            d -= 1


@jit
def _lane_index(k, M, n):
    """For each of the n input elements, the index of its lane (its reduced output)."""
    kidx = np.zeros(n, np.int64)
    nd = M[k, AUX_ND]
    if nd == 0 or n == 0:
        return kidx
    idx = np.zeros(MAXD, np.int64)
    o = 0
    for i in range(n):
        kidx[i] = o
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            o += M[k, AUX_STR + d]
            if idx[d] < M[k, AUX_SHAPE + d]:
                break
            o -= M[k, AUX_STR + d] * idx[d]
            idx[d] = 0
            d -= 1
    return kidx


@jit
def _lane(op, r, R, m, M, sv, av, sg, ag, cbuf):
    """Nonlinear reductions and softmaxes: x has n elements in K lanes, y one per lane
    (or one per element for the softmaxes)."""
    a = int(R[r, 1])
    if int(R[a // 5, 0]) == CONST:
        return
    c = R[r, 3]
    g = _adjoints(r, m, M, sg, ag)
    ga = _adjoints(a // 5, m, M, sg, ag)
    x = _values(a, 0.0, m, M, sv, av, cbuf)
    y = _values(5 * r, 0.0, m, M, sv, av, cbuf[1:])
    n = ga.shape[0]
    kidx = _lane_index(m[r], M, n)
    nk = 0
    for i in range(n):
        nk = max(nk, kidx[i] + 1)
    acc = np.zeros(nk)
    cnt = np.zeros(nk)
    if op == MAXALL or op == MINALL or op == AMAX or op == AMIN:
        # ties share the gradient evenly; a NaN extreme goes to the NaNs
        for i in range(n):
            k = kidx[i]
            if x[i] == y[k] or (np.isnan(x[i]) and np.isnan(y[k])):
                cnt[k] += 1.0
        for i in range(n):
            k = kidx[i]
            if x[i] == y[k] or (np.isnan(x[i]) and np.isnan(y[k])):
                ga[i] += g[k] / cnt[k]
    elif op == PROD or op == PRODDIM:
        # d/dx_i prod = prod of the others: y/x_i, or the product of the nonzeros where
        # x_i is the lane's only zero
        acc[:] = 1.0
        for i in range(n):
            if x[i] == 0.0:
                cnt[kidx[i]] += 1.0
            else:
                acc[kidx[i]] *= x[i]
        for i in range(n):
            k = kidx[i]
            if x[i] != 0.0:
                ga[i] += g[k] * y[k] / x[i]
            elif cnt[k] == 1.0:
                ga[i] += g[k] * acc[k]
    elif op == VAR or op == STD:
        # d var/dx_i = 2 (x_i - mean) / (N - correction); d std = d var / (2 std)
        for i in range(n):
            acc[kidx[i]] += x[i]
            cnt[kidx[i]] += 1.0
        for j in range(nk):
            acc[j] /= cnt[j]
        for i in range(n):
            k = kidx[i]
            if op == VAR:
                ga[i] += g[k] * 2.0 * (x[i] - acc[k]) / c
            elif y[k] != 0.0:   # a lane of equal values: 0, as PyTorch masks it
                ga[i] += g[k] * (x[i] - acc[k]) / (c * y[k])
    elif op == NORM:
        # d ||x||_p / dx_i = x_i |x_i|^(p-2) / ||x||^(p-1); 0 where the norm is 0
        for i in range(n):
            k = kidx[i]
            if y[k] != 0.0:
                if c == 2.0:
                    ga[i] += g[k] * x[i] / y[k]
                elif c == 1.0:
                    ga[i] += g[k] * (1.0 if x[i] > 0 else (-1.0 if x[i] < 0 else 0.0))
                else:
                    ga[i] += g[k] * x[i] * abs(x[i]) ** (c - 2.0) / y[k] ** (c - 1.0)
    elif op == LOGSUMEXP:     # d/dx_i log sum e^x = e^(x_i - y)
        for i in range(n):
            k = kidx[i]
            ga[i] += g[k] * np.exp(x[i] - y[k])
    elif op == SOFTMAX:       # dx_i = y_i (g_i - sum_j g_j y_j)
        for i in range(n):
            acc[kidx[i]] += g[i] * y[i]
        for i in range(n):
            ga[i] += y[i] * (g[i] - acc[kidx[i]])
    elif op == LOGSOFTMAX:    # dx_i = g_i - e^(y_i) sum_j g_j
        for i in range(n):
            acc[kidx[i]] += g[i]
        for i in range(n):
            ga[i] += g[i] - np.exp(y[i]) * acc[kidx[i]]


@jit
def _gather(r, R, m, M, sg, ag, av):
    """y[i] = x[idx[i]]: the adjoint goes back to where each element came from."""
    a = int(R[r, 1])
    if int(R[a // 5, 0]) == CONST:
        return
    g = _adjoints(r, m, M, sg, ag)
    ga = _adjoints(a // 5, m, M, sg, ag)
    idx = _ints(r, m, M, av)
    for i in range(g.shape[0]):
        ga[int(idx[i])] += g[i]


@jit
def _multi(r, R, m, M, sg, ag, av, reach):
    """cat/stack: ints = (outer, inner, extent, slot_0, extent_0, slot_1, extent_1, ...);
    part p fills extent_p of the output's extent along the joined dimension."""
    g = _adjoints(r, m, M, sg, ag)
    ints = _ints(r, m, M, av)
    outer = int(ints[0])
    inner = int(ints[1])
    total = int(ints[2])
    off = 0
    for p in range((ints.shape[0] - 3) // 2):
        s = int(ints[3 + 2 * p])
        e = int(ints[4 + 2 * p])
        reach[s // 5] = 1
        if int(R[s // 5, 0]) != CONST:
            gp = _adjoints(s // 5, m, M, sg, ag)
            for o in range(outer):
                src = (o * total + off) * inner
                dst = o * e * inner
                for j in range(e * inner):
                    gp[dst + j] += g[src + j]
        off += e


@jit
def _copyslices(r, R, m, M, sv, av, sg, ag, cbuf):
    """z = a with z[pos] = b: a gets g outside the positions, b gets g at them."""
    a = int(R[r, 1])
    b = int(R[r, 2])
    g = _adjoints(r, m, M, sg, ag)
    pos = _ints(r, m, M, av)
    if _needs_grad(b, R):
        gb = _adjoints(b // 5, m, M, sg, ag)
        for j in range(pos.shape[0]):
            gb[j] += g[int(pos[j])]
    if _needs_grad(a, R):
        ga = _adjoints(a // 5, m, M, sg, ag)
        for i in range(g.shape[0]):
            ga[i] += g[i]
        for j in range(pos.shape[0]):
            ga[int(pos[j])] -= g[int(pos[j])]


@jit
def _product_dims(op, ka, kb, M):
    """(batch, n, p, q) of a matrix-product record whose operands have metadata rows ka, kb:
    dot is (1, 1, p, 1), mv (1, n, p, 1)."""
    if op == DOT:
        return 1, 1, M[ka, SHAPE], 1
    if op == MV:
        return 1, M[ka, SHAPE], M[ka, SHAPE + 1], 1
    if op == MM:
        return 1, M[ka, SHAPE], M[ka, SHAPE + 1], M[kb, SHAPE + 1]
    return M[ka, SHAPE], M[ka, SHAPE + 1], M[ka, SHAPE + 2], M[kb, SHAPE + 2]


@jit
def _matmul(op, r, R, m, M, av, sg, ag):
    """Small matrix products in plain loops: ga += g b^T, gb += a^T g, batch by batch
    (products.py does the large ones with BLAS). An operand's value is kept only when the
    other operand needs a gradient."""
    a = int(R[r, 1])
    b = int(R[r, 2])
    batch, n, p, q = _product_dims(op, m[a // 5], m[b // 5], M)
    g = _adjoints(r, m, M, sg, ag)
    ga = _adjoints(a // 5, m, M, sg, ag)
    gb = _adjoints(b // 5, m, M, sg, ag)
    grad_a = int(R[a // 5, 0]) != CONST
    grad_b = int(R[b // 5, 0]) != CONST
    ka = m[a // 5]
    kb = m[b // 5]
    xa = av[M[ka, VO]:M[ka, VO] + M[ka, SIZE]] if grad_b else av[0:0]
    xb = av[M[kb, VO]:M[kb, VO] + M[kb, SIZE]] if grad_a else av[0:0]
    for t in range(batch):
        oa = t * n * p
        ob = t * p * q
        og = t * n * q
        for i in range(n):
            for k in range(p):
                acc = 0.0
                if grad_a:
                    for j in range(q):
                        acc += g[og + i * q + j] * xb[ob + k * q + j]
                    ga[oa + i * p + k] += acc
                if grad_b:
                    aik = xa[oa + i * p + k]
                    for j in range(q):
                        gb[ob + k * q + j] += aik * g[og + i * q + j]


# ----- the sweep ----------------------------------------------------------------------
@jit
def reverse_sweep(R, sv, sg, m, M, av, ag, reach, start, stop, needs):
    """Accumulates adjoints from record ``start`` down to record ``stop`` (reached ones)."""
    cbuf = np.zeros(4)
    for r in range(start, stop - 1, -1):
        if reach[r] == 0:
            continue
        op = int(R[r, 0])
        if op >= SCALAR:        # Python-float scalars: inline, no array views
            op -= SCALAR
            if op > MULTI_LAST:
                continue        # no gradient (a detach or cast inside a tg.compile recording)
            g = sg[r]
            a = int(R[r, 1])
            c = R[r, 3]
            x = sv[a // 5] if a >= 0 else c
            if op <= BINARY_LAST:
                b = int(R[r, 2])
                da, db = binary_grad(op, x, sv[b // 5] if b >= 0 else c, sv[r], 0.0)
                if a >= 0:
                    sg[a // 5] += g * da
                if b >= 0:
                    sg[b // 5] += g * db
            else:
                sg[a // 5] += g * unary_grad(op, x, sv[r], c, R[r, 2])
        elif op <= BINARY_LAST:
            if op < ADD:
                continue        # sources: leaves, constants, links to other tapes
            _binary(op, r, R, m, M, sv, av, sg, ag, cbuf, needs)
        elif op <= UNARY_LAST:
            _unary(op, r, R, m, M, sv, av, sg, ag, cbuf, needs)
        elif op <= REDUCE_LAST:  # d/dx sum = 1 (times 1/count for mean), broadcast back
            _walk(m[r], M, _adjoints(r, m, M, sg, ag),
                  _adjoints(int(R[r, 1]) // 5, m, M, sg, ag), False, R[r, 3])
        elif op <= LANE_LAST:
            _lane(op, r, R, m, M, sv, av, sg, ag, cbuf)
        elif op <= MATMUL_LAST:
            _matmul(op, r, R, m, M, av, sg, ag)
        elif op <= STRIDED_LAST:  # a view: scatter the adjoint back to where it came from
            _walk(m[r], M, _adjoints(r, m, M, sg, ag),
                  _adjoints(int(R[r, 1]) // 5, m, M, sg, ag), True, 1.0)
        elif op <= GATHER_LAST:
            _gather(r, R, m, M, sg, ag, av)
        elif op <= MULTI_LAST:
            _multi(r, R, m, M, sg, ag, av, reach)
            continue            # its operands are in its int list, marked there
        elif op == COPYSLICES:
            _copyslices(r, R, m, M, sv, av, sg, ag, cbuf)
        else:
            continue
        a = int(R[r, 1])
        if a >= 0:
            reach[a // 5] = 1
        if op <= BINARY_LAST or (op > LANE_LAST and op <= MATMUL_LAST) or op == COPYSLICES:
            b = int(R[r, 2])    # b is a slot only for binary ops
            if b >= 0:
                reach[b // 5] = 1

