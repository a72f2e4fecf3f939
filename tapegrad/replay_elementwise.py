"""Numba: the forward of the elementwise records of a replay (``replay_kernels`` walks
the tape): binary ops with broadcasting (resolved to rows by the recording where it can,
``Program.fx``), comparisons, unary ops and CASTNG, reading values where the tape says
they are (``_val``: a scalar's from its record, an array's from the call's arena).
"""
# kernel sources: d0fa704d674fac21
import numpy as np
from numba import njit

from ._generated.elementwise import binary_value, unary_value
from .kernels_base import jit
from .kernels_tape import _bcast_strides, _shape, _size
from .layout import C2, CONST_A, CONST_B, ILEN, IOBJ, SCALAR, SHIFT, SIZE
from .ops import (ADD, CASTNG, CLAMP, DIV, EQ, EXP, FAMILY, F_BINARY, F_UNARY, GE, GT, LE,
                  LT, MUL, NE, NEG, POWC, RELU, SIGMOID, SUB, TANH, WHERE)
from .ptr import view, view_i64


# ----- per-element values -------------------------------------------------------------
# the general per-element formulas run in float64 (a float32 arena rounds the result as it
# stores it, as an eager float32 op rounds its own)
_f64 = np.float64


@jit
def value_of(op, x, y, c, c2):
    """The value of one element: the binary and unary rows as the eager Python-float
    forwards compute them (``_generated.elementwise``, written from the op table), the
    comparisons 1.0/0.0, CASTNG (c: 0 bool, 1 integer toward zero, 2 the same value); ops
    that only move values give x."""
    fam = FAMILY[op]
    if fam == F_BINARY:
        return binary_value(op, x, y, 1.0)
    if fam == F_UNARY:
        return unary_value(op, x, c, c2)
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
    if op == CASTNG:
        if c == 0.0:
            return 1.0 if x != 0.0 else 0.0
        if c == 1.0:
            return np.trunc(x)
        return x
    return x                # views of a scalar: identity


# ----- reading the tape ---------------------------------------------------------------
@njit(inline="always")
def _val(rq, rd, ms, ptrs, s, buf):
    """The flat values of slot s in the arena's element type (that of ``buf``, a place for
    one value): an array's from the arena, a scalar's copied from its record into buf."""
    if rq[3 * s] & SCALAR:
        buf[0] = rd[3 * s + 2]
        return buf
    k = int(rd[3 * s + 2])
    return view(ptrs[k], ms[k, SIZE], buf)


@njit(inline="always")
def _ints(md, ptrs, k):
    """The int list of array row k (indices, operand slots, a condition)."""
    return view_i64(ptrs[md[k, IOBJ]], md[k, ILEN])


# ----- elementwise families -----------------------------------------------------------
@jit
def _binary(op, r, h, rq, rd, ms, md, ptrs, cond, fx, cbuf, ib):
    """z = f(a, b) with broadcasting (binary family and the comparisons GT..NE); a Python
    number stands in for an operand under CONST_A / CONST_B (in the arena's element type,
    as NumPy takes a Python number with an array: ``x * 0.1`` of float32 x multiplies by
    float32(0.1))."""
    a = h >> SHIFT
    c = rd[3 * r + 1]
    cbuf[0] = c
    if h & CONST_A:             # the number first: x = c, y = the tensor in a
        sa, sb = -1, a
        xa = cbuf[0:1]
        xb = _val(rq, rd, ms, ptrs, a, cbuf[3:4])
    elif h & CONST_B:
        sa, sb = a, -1
        xa = _val(rq, rd, ms, ptrs, a, cbuf[2:3])
        xb = cbuf[0:1]
    else:
        sa, sb = a, int(c)
        xa = _val(rq, rd, ms, ptrs, sa, cbuf[2:3])
        xb = _val(rq, rd, ms, ptrs, sb, cbuf[3:4])
    k = int(rd[3 * r + 2])
    z = view(ptrs[k], ms[k, SIZE], cbuf)
    xw = cbuf[1:1]
    if op == WHERE:             # the condition (the output's shape); its int list too
        xw = _val(rq, rd, ms, ptrs, cond[k], cbuf[4:5])
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
    rowa = np.empty(inner, z.dtype)
    rowb = np.empty(inner, z.dtype)
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
    do not overlap), the op chosen once, outside the rows (a choice per row costs twice
    the row's arithmetic)."""
    if op == ADD:
        for i in range(outer):
            zr, ar, br = _row(z, i * inner, inner), _row(a, i * ra, inner), _row(b, i * rb, inner)
            for j in range(inner):
                zr[j] = ar[j] + br[j]
    elif op == SUB:
        for i in range(outer):
            zr, ar, br = _row(z, i * inner, inner), _row(a, i * ra, inner), _row(b, i * rb, inner)
            for j in range(inner):
                zr[j] = ar[j] - br[j]
    elif op == MUL:
        for i in range(outer):
            zr, ar, br = _row(z, i * inner, inner), _row(a, i * ra, inner), _row(b, i * rb, inner)
            for j in range(inner):
                zr[j] = ar[j] * br[j]
    elif op == WHERE:
        for i in range(outer):
            zr, ar, br = _row(z, i * inner, inner), _row(a, i * ra, inner), _row(b, i * rb, inner)
            wr = _row(xw, i * inner, inner)
            for j in range(inner):
                zr[j] = ar[j] if wr[j] != 0.0 else br[j]
    else:
        for i in range(outer):
            zr, ar, br = _row(z, i * inner, inner), _row(a, i * ra, inner), _row(b, i * rb, inner)
            for j in range(inner):
                zr[j] = value_of(op, _f64(ar[j]), _f64(br[j]), 0.0, 0.0)


@jit
def _rows_vs(op, outer, inner, z, x, rx, s, rs, first, xw):
    """z[i, j] = f(x[i rx + j], s[i rs]), or f(s[i rs], x[i rx + j]) when ``first`` (the
    op chosen once, as in ``_rows_vv``)."""
    if op == ADD:
        for i in range(outer):
            zr, xr, v = _row(z, i * inner, inner), _row(x, i * rx, inner), s[i * rs]
            for j in range(inner):
                zr[j] = xr[j] + v
    elif op == MUL:
        for i in range(outer):
            zr, xr, v = _row(z, i * inner, inner), _row(x, i * rx, inner), s[i * rs]
            for j in range(inner):
                zr[j] = xr[j] * v
    elif op == SUB and not first:
        for i in range(outer):
            zr, xr, v = _row(z, i * inner, inner), _row(x, i * rx, inner), s[i * rs]
            for j in range(inner):
                zr[j] = xr[j] - v
    elif op == SUB:
        for i in range(outer):
            zr, xr, v = _row(z, i * inner, inner), _row(x, i * rx, inner), s[i * rs]
            for j in range(inner):
                zr[j] = v - xr[j]
    elif op == WHERE:
        for i in range(outer):
            zr, xr, v = _row(z, i * inner, inner), _row(x, i * rx, inner), s[i * rs]
            wr = _row(xw, i * inner, inner)
            for j in range(inner):
                if first:
                    zr[j] = v if wr[j] != 0.0 else xr[j]
                else:
                    zr[j] = xr[j] if wr[j] != 0.0 else v
    else:
        for i in range(outer):
            zr, xr, v = _row(z, i * inner, inner), _row(x, i * rx, inner), s[i * rs]
            for j in range(inner):
                if first:
                    zr[j] = value_of(op, _f64(v), _f64(xr[j]), 0.0, 0.0)
                else:
                    zr[j] = value_of(op, _f64(xr[j]), _f64(v), 0.0, 0.0)


@njit(inline="always")
def _row(x, at, n):
    return x[at:at + n]


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
            z[i] = value_of(op, _f64(xa[i]), _f64(xb[i]), 0.0, 0.0)


@jit
def _unary(op, r, h, rq, rd, ms, msd, ptrs, cbuf):
    """y = f(x) elementwise, with constants c (the b field) and c2 (the static row: clamp's
    max). CASTNG (c: 0 bool, 1 integer, 2 detach) too."""
    a = h >> SHIFT
    c = rd[3 * r + 1]
    k = int(rd[3 * r + 2])
    c2 = msd[k, C2]
    x = _val(rq, rd, ms, ptrs, a, cbuf[2:3])
    y = view(ptrs[k], ms[k, SIZE], cbuf)
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
            y[i] = value_of(op, _f64(x[i]), 0.0, c, c2)
