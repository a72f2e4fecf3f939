"""Numba kernels: the backward of each family of array records (elementwise with
broadcasting, lanes, gathers, cat/stack, CopySlices, small matrix products)."""
# kernel sources: 9886e3edf5a112e2
import numpy as np

from .layout import (AUX_ND, AUX_SHAPE, AUX_STR, CONST_A, CONST_B, F32,
                     PB, PN, PP, PQ, SHIFT)
from .ops import (ADD, AMAX, AMIN, CAST, CLAMP, CLONE, LOGSOFTMAX, LOGSUMEXP, MAXALL,
                  MAXIMUM, MINALL, MINIMUM, MUL, NEG, NORM, POWC, PROD,
                  PRODDIM, RELU, SOFTMAX, STD, SUB,
                  TANH, VAR, WHERE)
from ._generated.elementwise import binary_grad, unary_grad
from .kernels_base import _f, empty, jit_inline, jit_internal, jit_light, zeros
from .kernels_math import _fma


from .kernels_tape import (COL_A, COL_B, COL_Y, GATHER, I0, I1, I2, NDIM, SCATTER,
                           _adjoint, _bcast_strides, _int_list, _needs_grad, _row, _saved,
                           _shape, _size, _stride_walk)


# ----- elementwise families -----------------------------------------------------------
# Each is written once and compiled in two variants: ``general`` (the sweep's core and full
# tiers) and not (its basic tier, for tapes whose elementwise ops all have loops of their
# own: ops.TIER). ``general`` is a closure constant, so Numba prunes the branches under
# ``if general:`` before typing them: the basic variants never compile the per-element
# switches of all ops (binary_grad, unary_grad), a large part of a cold start.
def _binary_kernel(general):
    def _binary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
        a = h >> SHIFT
        b = -1 if h & (CONST_A | CONST_B) else np.int64(rd[3 * r + 1])
        if h & CONST_A:          # the number stands first: x = c, y = the tensor in a
            a, b = b, a
        g = _adjoint(rq, rd, ms, md, sg, off, work, r)
        c = rd[3 * r + 1]
        # a value the record did not keep (its only user needs no grad) reads as empty
        xa = _saved(rq, rd, ms, md, ptrs, r, COL_A, a, cbuf, I0)
        xb = _saved(rq, rd, ms, md, ptrs, r, COL_B, b, cbuf, I1)
        if a < 0:
            cbuf[0] = c
            xa = cbuf[0:1]
        if b < 0:
            cbuf[1] = c
            xb = cbuf[1:2]
        xy = cbuf[2:2]
        xw = cbuf[3:3]
        if general:
            if h & F32 and (op == MAXIMUM or op == MINIMUM):
                # a float32 result from a float64 0-d operand or a number: PyTorch compares
                # the operands cast to float32, so values equal once rounded are a tie
                xa = _as_float32(xa, cbuf, I0)
                xb = _as_float32(xb, cbuf, I1)
            xy = _saved(rq, rd, ms, md, ptrs, r, COL_Y, r, cbuf, I2)
            if op == WHERE:                 # the condition, as 0/1 in the sweep's dtype
                cond = _int_list(md, ptrs, _row(rd, r))
                xw = empty(cond.shape[0], cbuf.dtype)
                for i in range(cond.shape[0]):
                    xw[i] = cond[i]
        grad_a = _needs_grad(rq, a)
        grad_b = _needs_grad(rq, b)
        # An operand that needs no grad writes its share into a scratch cell.
        ga = _adjoint(rq, rd, ms, md, sg, off, work, a) if grad_a else cbuf[4:5]
        gb = _adjoint(rq, rd, ms, md, sg, off, work, b) if grad_b else cbuf[5:6]
        n = g.shape[0]
        same = _binary_same if general else _binary_same_b
        if _size(rq, rd, ms, a) == n and _size(rq, rd, ms, b) == n:
            same(op, n, g, xa, xb, xy, xw, ga, gb, grad_a, grad_b)
            return
        if n == 0:
            return
        # Broadcasting, handled once for every op: + and - sum the adjoint straight back
        # to each operand's shape; the others read the operands out to the output's shape,
        # differentiate elementwise, then sum each share back.
        shp = zeros(NDIM, np.int64)
        sa = zeros(NDIM, np.int64)
        sb = zeros(NDIM, np.int64)
        nd = _shape(rq, rd, ms, r, shp)
        tmp = zeros(NDIM, np.int64)
        _bcast_strides(tmp, _shape(rq, rd, ms, a, tmp), nd, sa)
        _bcast_strides(tmp, _shape(rq, rd, ms, b, tmp), nd, sb)
        if op == ADD or op == SUB:
            if grad_a:
                _stride_walk(nd, shp, sa, I0, g, ga, SCATTER, 1.0)
            if grad_b:
                _stride_walk(nd, shp, sb, I0, g, gb, SCATTER, 1.0 if op == ADD else -1.0)
            return
        fa = zeros(n, cbuf.dtype)
        fb = zeros(n, cbuf.dtype)
        if xa.shape[0] > 0:
            _stride_walk(nd, shp, sa, I0, xa, fa, GATHER, 1.0)
        else:
            fa = fa[0:0]
        if xb.shape[0] > 0:
            _stride_walk(nd, shp, sb, I0, xb, fb, GATHER, 1.0)
        else:
            fb = fb[0:0]
        ta = zeros(n, cbuf.dtype)
        tb = zeros(n, cbuf.dtype)
        same(op, n, g, fa, fb, xy, xw, ta, tb, grad_a, grad_b)
        if grad_a:
            _stride_walk(nd, shp, sa, I0, ta, ga, SCATTER, 1.0)
        if grad_b:
            _stride_walk(nd, shp, sb, I0, tb, gb, SCATTER, 1.0)
    return _named(_binary, "_binary" if general else "_binary_b", light=True)


def _named(fn, name, light=False):
    """``fn`` jitted under ``name``: each variant has a disk cache file of its own."""
    fn.__name__ = fn.__qualname__ = name
    return jit_light(fn, internal=True) if light else jit_internal(fn)


@jit_inline
def _as_float32(x, cbuf, i):
    """A one-element operand (0-d or a number) rounded to float32, through cbuf[i]."""
    if x.shape[0] != 1:
        return x
    cbuf[i] = np.float32(x[0])
    return cbuf[i:i + 1]


def _binary_same_kernel(general):
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
        if general:
            na = xa.shape[0] > 0
            nb = xb.shape[0] > 0
            ny = xy.shape[0] > 0
            nw = xw.shape[0] > 0
            zero = zeros(1, g.dtype)[0]
            for i in range(n):
                da, db = binary_grad(op, g[i], xa[i] if na else zero, xb[i] if nb else zero,
                                     xy[i] if ny else zero, xw[i] if nw else zero)
                ga[i if grad_a else 0] += da
                gb[i if grad_b else 0] += db
    return _named(_binary_same, "_binary_same" if general else "_binary_same_b")


def _unary_kernel(general):
    def _unary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
        a = h >> SHIFT
        if not _needs_grad(rq, a):
            return
        c = rd[3 * r + 1]
        g = _adjoint(rq, rd, ms, md, sg, off, work, r)
        ga = _adjoint(rq, rd, ms, md, sg, off, work, a)
        x = _saved(rq, rd, ms, md, ptrs, r, COL_A, a, cbuf, I0)
        y = _saved(rq, rd, ms, md, ptrs, r, COL_Y, r, cbuf, I1)
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
        elif op == POWC and c == 2.0:           # g * (2 x), in the sweep's dtype
            for i in range(n):
                ga[i] += g[i] * (x[i] + x[i])
        elif op == TANH:                        # g * (1 - y^2), 1 - y^2 one FMA: ops.py
            for i in range(n):
                ga[i] += g[i] * _fma(-y[i], y[i], _f(1.0, g[i]))
        elif op == NEG:
            for i in range(n):
                ga[i] -= g[i]
        elif op == CAST or op == CLONE:
            for i in range(n):
                ga[i] += g[i]
        elif general:
            na = x.shape[0] > 0
            ny = y.shape[0] > 0
            for i in range(n):
                ga[i] += unary_grad(op, g[i], x[i] if na else cbuf[7], y[i] if ny else cbuf[7],
                                    c)
    return _named(_unary, "_unary" if general else "_unary_b")


_binary_same, _binary_same_b = _binary_same_kernel(True), _binary_same_kernel(False)
_binary, _binary_b = _binary_kernel(True), _binary_kernel(False)
_unary, _unary_b = _unary_kernel(True), _unary_kernel(False)


# ----- reductions, views and gathers --------------------------------------------------
@jit_internal
def _lane_index(ms, k, n):
    """For each of the n input elements, the index of its lane (its reduced output)."""
    kidx = zeros(n, np.int64)
    nd = ms[k, AUX_ND]
    if nd == 0 or n == 0:
        return kidx
    idx = zeros(NDIM, np.int64)
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


@jit_internal
def _lane(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
    """Nonlinear reductions and softmaxes: x has n elements in K lanes, y one per lane
    (or one per element for the softmaxes)."""
    a = h >> SHIFT
    if not _needs_grad(rq, a):
        return
    c = rd[3 * r + 1]
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    ga = _adjoint(rq, rd, ms, md, sg, off, work, a)
    x = _saved(rq, rd, ms, md, ptrs, r, COL_A, a, cbuf, I0)
    y = _saved(rq, rd, ms, md, ptrs, r, COL_Y, r, cbuf, I1)
    n = ga.shape[0]
    kidx = _lane_index(ms, _row(rd, r), n)
    nk = 0
    for i in range(n):
        if kidx[i] >= nk:
            nk = kidx[i] + 1
    acc = zeros(nk, np.float64)
    cnt = zeros(nk, np.float64)
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


@jit_internal
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


@jit_internal
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


@jit_internal
def _copyslices(r, h, rq, rd, ms, md, ptrs, sg, off, work):
    """z = a with z[pos] = b: a gets g outside the positions, b gets g at them."""
    a = h >> SHIFT
    b = -1 if h & CONST_B else np.int64(rd[3 * r + 1])
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


@jit_internal
def _matmul(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
    """Small matrix products in plain loops, batch by batch: ga += g b^T, gb += a^T g
    (products.py does the large ones with BLAS). An operand's value is kept only when the
    other operand needs a gradient."""
    a = h >> SHIFT
    b = np.int64(rd[3 * r + 1])
    k = _row(rd, r)
    batch, n, p, q = ms[k, PB], ms[k, PN], ms[k, PP], ms[k, PQ]
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    grad_a = _needs_grad(rq, a)
    grad_b = _needs_grad(rq, b)
    ga = _adjoint(rq, rd, ms, md, sg, off, work, a) if grad_a else cbuf[0:0]
    gb = _adjoint(rq, rd, ms, md, sg, off, work, b) if grad_b else cbuf[0:0]
    xa = _saved(rq, rd, ms, md, ptrs, r, COL_A, a, cbuf, I0)
    xb = _saved(rq, rd, ms, md, ptrs, r, COL_B, b, cbuf, I1)
    for t in range(batch):      # batch t's matrices start at t * n * p, t * p * q, t * n * q
        if grad_a:
            _mm_ga(g, xb, ga, t * n * q, t * p * q, t * n * p, n, p, q)
        if grad_b:
            _mm_gb(g, xa, gb, t * n * q, t * n * p, t * p * q, n, p, q)


@jit_inline
def _mm_ga(g, b, ga, og, ob, oa, n, p, q):
    """ga (n, p) += g (n, q) b (p, q)^T, the matrices at offsets oa, og, ob of their arrays
    (offsets, not slices: each slice is an array struct of its own to build), the loop order
    picked by shape. Indices are unsigned: with no wraparound test on them, the inner loops
    vectorize."""
    un, up, uq = np.uint64(n), np.uint64(p), np.uint64(q)
    g0, b0, a0 = np.uint64(og), np.uint64(ob), np.uint64(oa)
    if q >= 8:                 # ga[i, k] += sum_j g[i, j] b[k, j]: dots along rows
        for i in range(un):
            for k in range(up):
                acc = 0.0
                for j in range(uq):
                    acc += g[g0 + i * uq + j] * b[b0 + k * uq + j]
                ga[a0 + i * up + k] += acc
    else:                      # few columns: ga[i, :] += g[i, j] b[:, j]
        for i in range(un):
            for j in range(uq):
                gij = g[g0 + i * uq + j]
                for k in range(up):
                    ga[a0 + i * up + k] += gij * b[b0 + k * uq + j]


@jit_inline
def _mm_gb(g, a, gb, og, oa, ob, n, p, q):
    """gb (p, q) += a (n, p)^T g (n, q), at offsets as in _mm_ga, the loop order picked by
    shape (indices unsigned, as in _mm_ga)."""
    un, up, uq = np.uint64(n), np.uint64(p), np.uint64(q)
    g0, a0, b0 = np.uint64(og), np.uint64(oa), np.uint64(ob)
    if q >= 8:                 # gb[k, :] += a[i, k] g[i, :]: rows, contiguous inner loops
        for i in range(un):
            for k in range(up):
                aik = a[a0 + i * up + k]
                for j in range(uq):
                    gb[b0 + k * uq + j] += aik * g[g0 + i * uq + j]
    else:                      # few columns: gb[k, j] += sum_i a[i, k] g[i, j], the sums in
        # float64, each over i in order, as one register each would; rows of a along k
        acc = zeros(p * q, np.float64)
        for i in range(un):
            for j in range(uq):
                gij = g[g0 + i * uq + j]
                for k in range(up):
                    acc[k * uq + j] += a[a0 + i * up + k] * gij
        for kj in range(p * q):
            gb[ob + kj] += acc[kj]


