"""Numba kernels: the reverse sweep over a tape and the derivative math of every opcode.

``prepare`` finds what the roots reach and gives every reached array record an adjoint:
a slice of one zeroed workspace, or, for a leaf, its persistent grad buffer itself (the
sweep accumulates into ``.grad`` with no scatter step). ``sweep`` then walks records
start, start-1, ..., stop: a reached record adds its adjoint times the local partial
derivatives into its operands' adjoints. Scalar records (``SCALAR`` in the head) take an
inline branch with no array views; array records go through one function per family
(``ops.FAMILY``). A reached leaf adds its adjoint into its grad cell or buffer and marks
it as holding a grad; a leaf ``DEFERRED`` to Python (hooks, a grad the user assigned),
and every leaf when ``stage`` is set (``autograd.grad``), keeps its adjoint for the engine.

Arguments (see ``layout``): rq/rd the records as int64/float64; ms/md the static and
dynamic metadata rows; ptrs the data addresses of the arrays the tape keeps (indexed by
the dynamic rows); sg the adjoints of scalar records; off, work each
array record's adjoint (an offset in the workspace, or -1 for a leaf's grad buffer).
sg and work have the sweep's dtype: float32 for a float32 tape (its gradients are
computed in float32, as PyTorch does), float64 otherwise. No kernel returns an array:
Python allocates them (boxing an array result costs more than the call).
"""
import os
import warnings

import numpy as np
from numba import njit

from .layout import (DYN_WIDTH, STATIC_WIDTH, ILEN, AOBJ, AUX_BASE, AUX_ND, AUX_SHAPE, AUX_STR, BOBJ, CONST_A, CONST_B,
                     DEFERRED, F32, GADDR, HAS_GRAD, IOBJ, ND, OPMASK, PB, PN, PP, PQ, SCALAR,
                     SHAPE, SHIFT, SIZE, STATE_OFFSET, YOBJ)
from .ops import (NEEDS, ABS, ADD, AMAX, AMIN, CLAMP, CONST, COS, DIV, DOT, ERF, EXP, EXPM1, FAMILY,
                  F_BINARY, F_COMPARE, F_CUSTOM, F_GATHER, F_LANE, F_MATMUL, F_MULTI,
                  F_REDUCE, F_SETITEM,
                  F_SOURCE, F_STRIDED, F_UNARY, LEAF, LOG, LOG1P, LOGSOFTMAX, LOGSUMEXP, MAXALL,
                  MAXD, MAXIMUM, MINALL, MINIMUM, MM, MUL, MV, NEG, NORM, POW, POWC, PROD,
                  PRODDIM, RECIP, RELU, RPOW, RSQRT, SIGMOID, SIN, SOFTMAX, SQRT, STD, SUB,
                  TANH, VAR, WHERE)
from .ptr import DATA_OFFSET, as_u8_ptr, load_i64, view, view_f32, view_f64, view_i64


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
    return njit(cache=_CACHE, error_model="numpy")(fn)


# ----- per-element derivatives --------------------------------------------------------
@jit
def unary_grad(op, x, y, c):
    """d y / d x for an elementwise unary record y = f(x) with constant c."""
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
    if op == CLAMP:         # 1 where clamping left x as it was (bounds included), else 0
        return 1.0 if y == x else 0.0
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


# ----- reading the tape ---------------------------------------------------------------
@njit(inline="always")
def _row(rd, s):
    """The metadata row of array record s."""
    return int(rd[3 * s + 2])


@njit(inline="always")
def _is_scalar(rq, s):
    return (rq[3 * s] & SCALAR) != 0


@njit(inline="always")
def _needs_grad(rq, s):
    """False for Python constants (s < 0) and tensors recorded as constants."""
    return s >= 0 and (rq[3 * s] & OPMASK) != CONST


@njit(inline="always")
def _size(rq, rd, ms, s):
    """Number of elements of operand slot s (1 for scalars and Python constants)."""
    if s < 0 or _is_scalar(rq, s):
        return 1
    return ms[_row(rd, s), SIZE]


@jit
def _shape(rq, rd, ms, s, out):
    """Writes the shape of slot s into out; returns its ndim (0 for scalars, constants)."""
    if s < 0 or _is_scalar(rq, s):
        return 0
    k = _row(rd, s)
    nd = ms[k, ND]
    for d in range(nd):
        out[d] = ms[k, SHAPE + d]
    return nd


@njit(inline="always")
def _adjoint(rq, rd, ms, md, sg, off, work, s):
    """The flat adjoint of slot s: a cell of sg, a slice of the workspace, or (a leaf's,
    ``off`` -1) its grad buffer itself."""
    if _is_scalar(rq, s):
        return sg[s:s + 1]
    k = _row(rd, s)
    o = off[k]
    if o >= 0:
        return work[o:o + ms[k, SIZE]]
    return view(md[k, GADDR], ms[k, SIZE], work)


@njit(inline="always")
def _saved(rq, rd, ms, md, ptrs, r, col, s, cbuf, i):
    """The value of slot s that record r saved in column col (AOBJ, BOBJ, YOBJ) of its
    dynamic row: a view of the kept array; a scalar's value from its record (through
    cbuf[i]); empty when r did not keep it."""
    if s < 0:
        return cbuf[i:i]
    if _is_scalar(rq, s):
        cbuf[i] = rd[3 * s + 2]
        return cbuf[i:i + 1]
    idx = md[_row(rd, r), col]
    if idx < 0:
        return cbuf[i:i]
    return view(ptrs[idx], ms[_row(rd, s), SIZE], cbuf)


@njit(inline="always")
def _int_list(md, ptrs, r_row):
    """The int64 list (indices, operand slots, a condition) of the record with metadata
    row r_row."""
    return view_i64(ptrs[md[r_row, IOBJ]], md[r_row, ILEN])


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


@jit
def _stride_walk(nd, shape, strides, base, g, ga, scatter, scale):
    """Walks ``shape`` in C order, element i at offset o = base + sum(idx * strides):
    ga[o] += scale * g[i] (scatter) or ga[i] += scale * g[o] (gather)."""
    n = g.shape[0] if scatter else ga.shape[0]
    if n == 0:
        return
    if nd == 0:
        if scatter:
            ga[base] += scale * g[0]
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
                ga[o + j * si] += scale * g[i + j]
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
def _walk(ms, k, g, ga, scatter, scale):
    """The strided walk of metadata row k's aux map (views and reductions)."""
    _stride_walk(ms[k, AUX_ND], ms[k, AUX_SHAPE:AUX_SHAPE + MAXD],
                 ms[k, AUX_STR:AUX_STR + MAXD], ms[k, AUX_BASE], g, ga, scatter, scale)


# ----- elementwise families -----------------------------------------------------------
@jit
def _binary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
    a = h >> SHIFT
    b = -1 if h & (CONST_A | CONST_B) else int(rd[3 * r + 1])
    if h & CONST_A:          # the number stands first: x = c, y = the tensor in a
        a, b = b, a
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    c = rd[3 * r + 1]
    # a value the record did not keep (its only user needs no grad) reads as empty
    xa = _saved(rq, rd, ms, md, ptrs, r, AOBJ, a, cbuf, 0)
    xb = _saved(rq, rd, ms, md, ptrs, r, BOBJ, b, cbuf, 1)
    if a < 0:
        cbuf[0] = c
        xa = cbuf[0:1]
    if b < 0:
        cbuf[1] = c
        xb = cbuf[1:2]
    xy = _saved(rq, rd, ms, md, ptrs, r, YOBJ, r, cbuf, 2)
    xw = cbuf[3:3]
    if op == WHERE:                 # the condition, as 0/1 in the sweep's dtype
        cond = _int_list(md, ptrs, _row(rd, r))
        xw = np.empty(cond.shape[0], cbuf.dtype)
        for i in range(cond.shape[0]):
            xw[i] = cond[i]
    grad_a = _needs_grad(rq, a)
    grad_b = _needs_grad(rq, b)
    # An operand that needs no grad writes its share into a scratch cell.
    ga = _adjoint(rq, rd, ms, md, sg, off, work, a) if grad_a else cbuf[4:5]
    gb = _adjoint(rq, rd, ms, md, sg, off, work, b) if grad_b else cbuf[5:6]
    n = g.shape[0]
    if _size(rq, rd, ms, a) == n and _size(rq, rd, ms, b) == n:
        _binary_same(op, n, g, xa, xb, xy, xw, ga, gb, grad_a, grad_b)
        return
    if n == 0:
        return
    # Broadcasting, handled once for every op: + and - sum the adjoint straight back to
    # each operand's shape; the others read the operands out to the output's shape,
    # differentiate elementwise, then sum each share back.
    shp = np.zeros(MAXD, np.int64)
    sa = np.zeros(MAXD, np.int64)
    sb = np.zeros(MAXD, np.int64)
    nd = _shape(rq, rd, ms, r, shp)
    tmp = np.zeros(MAXD, np.int64)
    _bcast_strides(tmp, _shape(rq, rd, ms, a, tmp), nd, sa)
    _bcast_strides(tmp, _shape(rq, rd, ms, b, tmp), nd, sb)
    if op == ADD or op == SUB:
        if grad_a:
            _stride_walk(nd, shp, sa, 0, g, ga, True, 1.0)
        if grad_b:
            _stride_walk(nd, shp, sb, 0, g, gb, True, 1.0 if op == ADD else -1.0)
        return
    fa = np.zeros(n, cbuf.dtype)
    fb = np.zeros(n, cbuf.dtype)
    if xa.shape[0] > 0:
        _stride_walk(nd, shp, sa, 0, xa, fa, False, 1.0)
    else:
        fa = fa[0:0]
    if xb.shape[0] > 0:
        _stride_walk(nd, shp, sb, 0, xb, fb, False, 1.0)
    else:
        fb = fb[0:0]
    ta = np.zeros(n, cbuf.dtype)
    tb = np.zeros(n, cbuf.dtype)
    _binary_same(op, n, g, fa, fb, xy, xw, ta, tb, grad_a, grad_b)
    if grad_a:
        _stride_walk(nd, shp, sa, 0, ta, ga, True, 1.0)
    if grad_b:
        _stride_walk(nd, shp, sb, 0, tb, gb, True, 1.0)


@jit
def _binary_same(op, n, g, xa, xb, xy, xw, ga, gb, grad_a, grad_b):
    """The binary backward when no operand is broadcast: dedicated loops for + - *."""
    if op == ADD or op == SUB:
        if grad_a:
            for i in range(n):
                ga[i] += g[i]
        if grad_b:
            if op == ADD:
                for i in range(n):
                    gb[i] += g[i]
            else:
                for i in range(n):
                    gb[i] -= g[i]
        return
    if op == MUL:
        if grad_a:
            for i in range(n):
                ga[i] += g[i] * xb[i]
        if grad_b:
            for i in range(n):
                gb[i] += g[i] * xa[i]
        return
    na = xa.shape[0] > 0
    nb = xb.shape[0] > 0
    ny = xy.shape[0] > 0
    nw = xw.shape[0] > 0
    for i in range(n):
        da, db = binary_grad(op, xa[i] if na else 0.0, xb[i] if nb else 0.0,
                             xy[i] if ny else 0.0, xw[i] if nw else 0.0)
        ga[i if grad_a else 0] += g[i] * da
        gb[i if grad_b else 0] += g[i] * db


@jit
def _unary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
    a = h >> SHIFT
    if not _needs_grad(rq, a):
        return
    c = rd[3 * r + 1]
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    ga = _adjoint(rq, rd, ms, md, sg, off, work, a)
    x = _saved(rq, rd, ms, md, ptrs, r, AOBJ, a, cbuf, 0)
    y = _saved(rq, rd, ms, md, ptrs, r, YOBJ, r, cbuf, 1)
    n = g.shape[0]
    # dedicated loops for the hot ops; the switch in unary_grad for the rest
    if op == RELU:
        for i in range(n):
            if not y[i] <= 0:
                ga[i] += g[i]
    elif op == CLAMP:
        for i in range(n):
            if x[i] == y[i]:
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
            ga[i] += g[i] * unary_grad(op, x[i] if na else 0.0, y[i] if ny else 0.0, c)


# ----- reductions, views and gathers --------------------------------------------------
@jit
def _lane_index(ms, k, n):
    """For each of the n input elements, the index of its lane (its reduced output)."""
    kidx = np.zeros(n, np.int64)
    nd = ms[k, AUX_ND]
    if nd == 0 or n == 0:
        return kidx
    idx = np.zeros(MAXD, np.int64)
    o = 0
    for i in range(n):
        kidx[i] = o
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            o += ms[k, AUX_STR + d]
            if idx[d] < ms[k, AUX_SHAPE + d]:
                break
            o -= ms[k, AUX_STR + d] * idx[d]
            idx[d] = 0
            d -= 1
    return kidx


@jit
def _lane(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
    """Nonlinear reductions and softmaxes: x has n elements in K lanes, y one per lane
    (or one per element for the softmaxes)."""
    a = h >> SHIFT
    if not _needs_grad(rq, a):
        return
    c = rd[3 * r + 1]
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    ga = _adjoint(rq, rd, ms, md, sg, off, work, a)
    x = _saved(rq, rd, ms, md, ptrs, r, AOBJ, a, cbuf, 0)
    y = _saved(rq, rd, ms, md, ptrs, r, YOBJ, r, cbuf, 1)
    n = ga.shape[0]
    kidx = _lane_index(ms, _row(rd, r), n)
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
def _gather(r, h, rq, rd, ms, md, ptrs, sg, off, work):
    """y[i] = x[idx[i]]: the adjoint goes back to where each element came from."""
    a = h >> SHIFT
    if not _needs_grad(rq, a):
        return
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    ga = _adjoint(rq, rd, ms, md, sg, off, work, a)
    idx = _int_list(md, ptrs, _row(rd, r))
    for i in range(g.shape[0]):
        ga[idx[i]] += g[i]


@jit
def _multi(r, rq, rd, ms, md, ptrs, sg, off, work):
    """cat/stack: ints = (outer, inner, extent, slot_0, extent_0, slot_1, extent_1, ...);
    part p fills extent_p of the output's extent along the joined dimension."""
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    ints = _int_list(md, ptrs, _row(rd, r))
    outer = ints[0]
    inner = ints[1]
    total = ints[2]
    at = 0
    for p in range((ints.shape[0] - 3) // 2):
        s = ints[3 + 2 * p]
        e = ints[4 + 2 * p]
        if _needs_grad(rq, s):
            gp = _adjoint(rq, rd, ms, md, sg, off, work, s)
            for o in range(outer):
                src = (o * total + at) * inner
                dst = o * e * inner
                for j in range(e * inner):
                    gp[dst + j] += g[src + j]
        at += e


@jit
def _copyslices(r, h, rq, rd, ms, md, ptrs, sg, off, work):
    """z = a with z[pos] = b: a gets g outside the positions, b gets g at them."""
    a = h >> SHIFT
    b = -1 if h & CONST_B else int(rd[3 * r + 1])
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    pos = _int_list(md, ptrs, _row(rd, r))
    if _needs_grad(rq, b):
        gb = _adjoint(rq, rd, ms, md, sg, off, work, b)
        for j in range(pos.shape[0]):
            gb[j] += g[pos[j]]
    if _needs_grad(rq, a):
        ga = _adjoint(rq, rd, ms, md, sg, off, work, a)
        for i in range(g.shape[0]):
            ga[i] += g[i]
        for j in range(pos.shape[0]):
            ga[pos[j]] -= g[pos[j]]


@jit
def _matmul(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
    """Small matrix products in plain loops, batch by batch: ga += g b^T, gb += a^T g
    (products.py does the large ones with BLAS). An operand's value is kept only when the
    other operand needs a gradient."""
    a = h >> SHIFT
    b = int(rd[3 * r + 1])
    k = _row(rd, r)
    batch, n, p, q = ms[k, PB], ms[k, PN], ms[k, PP], ms[k, PQ]
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    grad_a = _needs_grad(rq, a)
    grad_b = _needs_grad(rq, b)
    ga = _adjoint(rq, rd, ms, md, sg, off, work, a) if grad_a else cbuf[0:0]
    gb = _adjoint(rq, rd, ms, md, sg, off, work, b) if grad_b else cbuf[0:0]
    xa = _saved(rq, rd, ms, md, ptrs, r, AOBJ, a, cbuf, 0)
    xb = _saved(rq, rd, ms, md, ptrs, r, BOBJ, b, cbuf, 1)
    for t in range(batch):
        oa = t * n * p
        ob = t * p * q
        og = t * n * q
        if grad_a:
            _mm_ga(g[og:og + n * q], xb[ob:ob + p * q], ga[oa:oa + n * p], n, p, q)
        if grad_b:
            _mm_gb(g[og:og + n * q], xa[oa:oa + n * p], gb[ob:ob + p * q], n, p, q)


@jit
def _mm_ga(g, b, ga, n, p, q):
    """ga (n, p) += g (n, q) b (p, q)^T, the loop order picked by shape."""
    if q >= 8:                 # ga[i, k] += sum_j g[i, j] b[k, j]: dots along rows
        for i in range(n):
            for k in range(p):
                acc = 0.0
                for j in range(q):
                    acc += g[i * q + j] * b[k * q + j]
                ga[i * p + k] += acc
    else:                      # few columns: ga[i, :] += g[i, j] b[:, j]
        for i in range(n):
            for j in range(q):
                gij = g[i * q + j]
                for k in range(p):
                    ga[i * p + k] += gij * b[k * q + j]


@jit
def _mm_gb(g, a, gb, n, p, q):
    """gb (p, q) += a (n, p)^T g (n, q), the loop order picked by shape."""
    if q >= 8:                 # gb[k, :] += a[i, k] g[i, :]: rows, contiguous inner loops
        for i in range(n):
            for k in range(p):
                aik = a[i * p + k]
                for j in range(q):
                    gb[k * q + j] += aik * g[i * q + j]
    else:                      # few columns: gb[k, j] += sum_i a[i, k] g[i, j], in a register
        for k in range(p):
            for j in range(q):
                acc = 0.0
                for i in range(n):
                    acc += a[i * p + k] * g[i * q + j]
                gb[k * q + j] += acc


# ----- the sweep ----------------------------------------------------------------------
@jit
def data_pointers(ids, out):
    """The data address of each kept ndarray, read from the objects (ids: their id())."""
    for i in range(ids.shape[0]):
        out[i] = load_i64(ids[i] + DATA_OFFSET)


@jit
def _operands_reach(r, h, rq, rd, md, ptrs, reach):
    """Marks the operands of reached record r that need a gradient."""
    op = h & OPMASK
    fam = FAMILY[op]
    if fam == F_SOURCE or fam == F_COMPARE:
        return
    if fam == F_MULTI:
        ints = _int_list(md, ptrs, _row(rd, r))
        for p in range((ints.shape[0] - 3) // 2):
            s = ints[3 + 2 * p]
            if _needs_grad(rq, s):
                reach[s] = 1
        return
    if fam == F_CUSTOM:          # a Function's output: its inputs are its int list
        ints = _int_list(md, ptrs, _row(rd, r))
        for p in range(ints.shape[0]):
            if _needs_grad(rq, ints[p]):
                reach[ints[p]] = 1
        return
    a = h >> SHIFT
    if _needs_grad(rq, a):
        reach[a] = 1
    if (fam == F_BINARY or fam == F_MATMUL or fam == F_SETITEM) and \
            not (h & (CONST_A | CONST_B)):
        b = int(rd[3 * r + 1])
        if _needs_grad(rq, b):
            reach[b] = 1


@jit
def prepare(rq, rd, ms, md, ptrs, roots, stage, f32, reach, off):
    """Marks in ``reach`` what the roots reach and gives each reached array record its
    adjoint: ``off[k]``, an offset in the workspace (whose size it returns), or -1 for a
    leaf whose grad buffer is its adjoint (unless staged: ``stage``, deferred, or a dtype
    other than the sweep's, ``f32``). Buffers are sized by what a backward reaches."""
    top = -1
    for i in range(roots.shape[0]):
        reach[roots[i]] = 1
        top = max(top, roots[i])
    for r in range(top, -1, -1):
        if reach[r]:
            _operands_reach(r, rq[3 * r], rq, rd, md, ptrs, reach)
    total = 0
    for r in range(top + 1):
        h = rq[3 * r]
        if reach[r] == 0 or h & SCALAR:
            continue
        k = _row(rd, r)
        off[k] = total
        if (h & OPMASK) == LEAF and not stage and ((h & F32) != 0) == f32:
            state = as_u8_ptr(np.int64(rd[3 * r + 1]))
            if not (state[STATE_OFFSET] & DEFERRED):
                off[k] = -1                  # accumulate straight into .grad
                continue
        total += ms[k, SIZE]
    return total


@jit
def _leaf(r, h, rq, rd, ms, md, sg, off, work):
    """A reached leaf: add its adjoint into its grad (a cell, or its buffer when the
    adjoint was staged because of a dtype other than the sweep's) and mark it as holding
    a grad. Deferred leaves are left to the engine."""
    cell = np.int64(rd[3 * r + 1])
    state = as_u8_ptr(cell)
    if state[STATE_OFFSET] & DEFERRED:
        return
    if h & SCALAR:
        if h & F32:
            view_f32(cell, 1)[0] += sg[r]
        else:
            view_f64(cell, 1)[0] += sg[r]
    else:
        k = _row(rd, r)
        o = off[k]
        if o >= 0:                                  # staged: another dtype
            g = work[o:o + ms[k, SIZE]]
            if h & F32:
                buf = view_f32(md[k, GADDR], ms[k, SIZE])
                for i in range(g.shape[0]):
                    buf[i] += g[i]
            else:
                buf64 = view_f64(md[k, GADDR], ms[k, SIZE])
                for i in range(g.shape[0]):
                    buf64[i] += g[i]
    state[STATE_OFFSET] |= HAS_GRAD


@jit
def sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, start, stop, stage):
    """Accumulates adjoints from record ``start`` down to record ``stop`` (reached ones)."""
    cbuf = np.zeros(8, sg.dtype)
    for r in range(start, stop - 1, -1):
        if reach[r] == 0:
            continue
        h = rq[3 * r]
        op = h & OPMASK
        fam = FAMILY[op]
        if fam == F_SOURCE:
            if op == LEAF and not stage:
                _leaf(r, h, rq, rd, ms, md, sg, off, work)
            continue
        if h & SCALAR:          # Python-float scalars: inline, no array views
            g = sg[r]
            a = h >> SHIFT
            c = rd[3 * r + 1]
            if fam == F_BINARY:
                if h & CONST_B:
                    da, db = binary_grad(op, rd[3 * a + 2], c, rd[3 * r + 2], 0.0)
                    sg[a] += g * da
                elif h & CONST_A:
                    da, db = binary_grad(op, c, rd[3 * a + 2], rd[3 * r + 2], 0.0)
                    sg[a] += g * db
                else:
                    b = int(c)
                    da, db = binary_grad(op, rd[3 * a + 2], rd[3 * b + 2], rd[3 * r + 2], 0.0)
                    sg[a] += g * da
                    sg[b] += g * db
            elif fam == F_UNARY:
                sg[a] += g * unary_grad(op, rd[3 * a + 2], rd[3 * r + 2], c)
            continue
        if fam == F_BINARY:
            _binary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_UNARY:
            _unary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_REDUCE:   # d/dx sum = 1 (times 1/count for mean), broadcast back
            a = h >> SHIFT
            if _needs_grad(rq, a):
                _walk(ms, _row(rd, r), _adjoint(rq, rd, ms, md, sg, off, work, r),
                      _adjoint(rq, rd, ms, md, sg, off, work, a), False, rd[3 * r + 1])
        elif fam == F_LANE:
            _lane(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_MATMUL:
            _matmul(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_STRIDED:  # a view: scatter the adjoint back to where it came from
            a = h >> SHIFT
            if _needs_grad(rq, a):
                _walk(ms, _row(rd, r), _adjoint(rq, rd, ms, md, sg, off, work, r),
                      _adjoint(rq, rd, ms, md, sg, off, work, a), True, 1.0)
        elif fam == F_GATHER:
            _gather(r, h, rq, rd, ms, md, ptrs, sg, off, work)
        elif fam == F_MULTI:
            _multi(r, rq, rd, ms, md, ptrs, sg, off, work)
        elif fam == F_SETITEM:
            _copyslices(r, h, rq, rd, ms, md, ptrs, sg, off, work)


@jit
def backward_all(rec, static, dyn, ids, root, seed, like, freed, retain):
    """A whole backward in one call, for the common case (one root; no hooks, links,
    retained or deferred leaves, large products): reach, adjoints, sweep, leaves, and
    marking what it freed (``freed``; ``retain``: nothing). Returns the number of records
    reached, or -1 (nothing done) when a reached record was freed before."""
    ptrs = np.empty(ids.shape[0], np.int64)
    data_pointers(ids, ptrs)
    return backward_at(rec, static, dyn, ptrs, root, seed, like, freed, retain)


@jit
def backward_at(rec, static, dyn, ptrs, root, seed, like, freed, retain):
    """``backward_all`` with the data addresses given (a tg.compile replay's arena)."""
    rq = rec.view(np.int64)
    rd = rec.view(np.float64)
    ms = static.reshape(-1, STATIC_WIDTH)
    md = dyn.reshape(-1, DYN_WIDTH)
    n = rq.shape[0] // 3
    reach = np.zeros(n, np.uint8)
    off = np.full(ms.shape[0], -1, np.int64)
    roots = np.full(1, root, np.int64)
    total = prepare(rq, rd, ms, md, ptrs, roots, False, like.itemsize == 4, reach, off)
    count = 0
    for r in range(root + 1):
        if reach[r]:
            count += 1
            if freed[r]:
                return -1
    work = np.zeros(total, like.dtype)
    sg = np.zeros(n, like.dtype)
    g = _adjoint(rq, rd, ms, md, sg, off, work, root)
    for i in range(g.shape[0]):
        g[i] += seed[i]
    sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, root, 0, False)
    if not retain:
        for r in range(root + 1):
            if reach[r] and NEEDS[rq[3 * r] & OPMASK] != 0:
                freed[r] = 1
    return count
