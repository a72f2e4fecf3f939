"""Numba: the forward of the elementwise records of a replay (``replay_kernels`` walks
the tape): binary ops with broadcasting (resolved to rows by the recording where it can,
``Program.fx``), comparisons, unary ops and CASTNG, reading values where the tape says
they are (``_val``: a scalar's from its record, an array's from the call's arena).
"""
# kernel sources: 9886e3edf5a112e2
import numpy as np
from numba import njit

from ._generated.elementwise import binary_value, unary_value
from .kernels_base import _f, jit
from .kernels_tape import _bcast_strides, _shape, _size
from .layout import C2, CONST_A, CONST_B, F32, ILEN, IOBJ, SCALAR, SHIFT, SIZE
from .numpy_loops import LOOP_OF, _call_loop
from .ops import (ADD, CASTNG, CLAMP, DIV, EQ, FAMILY, F_BINARY, F_UNARY, GE, GT, LE, LT, MUL,
                  NE, NEG, POWC, RELU, ROUNDDEC, RPOW, RSQRT, SIGMOID, SUB, WHERE)
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


@njit(inline="always")
def round_decimals(x, c):
    """x.round(decimals=c) in the dtype of x, as ATen's kernel and eager: rint(x * p) / p,
    or rint(x / p) * p for c < 0, p = 10 ** |c| in that dtype (inf past its range)."""
    d = abs(c)
    p = _f(10.0 ** d if d < 309.0 else np.inf, x)
    return np.rint(x * p) / p if c >= 0.0 else np.rint(x / p) * p


# ----- eager's own loops: ops whose array forward is not exactly rounded ----------------
# (numpy_loops.LOOP_OF: exp, log, tanh, sigmoid, sin, cos, log1p, expm1, atan, atan2, pow,
# powc, rpow; rsqrt and round(decimals=), exact steps in the result's dtype). A float32
# result of float32 operands in a float64 arena runs the float32 loop (eager's) on the
# values rounded to float32, exactly, and widens the result; a float32 result of other
# operands (an integer tensor's exp) runs the float64 loop, which the sweep rounds, as
# NumPy promotes and the eager op rounds.
@njit(inline="always")
def _f32_loop(h, rq, sa, sb, cbuf):
    """True for a float32 binary result in a float64 arena whose operands are float32
    arrays, scalars or Python numbers (NumPy takes a number in the array's dtype)."""
    if h & F32 == 0 or cbuf.itemsize != 8:
        return False
    if sa >= 0 and rq[3 * sa] & (F32 | SCALAR) == 0:
        return False
    return sb < 0 or rq[3 * sb] & (F32 | SCALAR) != 0


@jit
def _by_loop1(op, y, x, c, f32):
    """y = f(x) as the eager array forward computes it (f32: see above)."""
    n = y.shape[0]
    if n == 0:
        return
    if not f32:
        _eager_unary(op, y, x, c)
        return
    x32 = np.empty(n, np.float32)
    y32 = np.empty(n, np.float32)
    for i in range(n):
        x32[i] = x[i]
    _eager_unary(op, y32, x32, c)
    for i in range(n):
        y[i] = y32[i]


@jit
def _eager_unary(op, y, x, c):
    """The op table's array forward of op, in the dtype of x and y: NumPy's loop for that
    dtype, the arithmetic around it in that dtype (c: powc's exponent, rpow's base, in
    that dtype as NumPy takes a Python number)."""
    n = y.shape[0]
    s = y.itemsize
    k = 2 * LOOP_OF[op] + (1 if s == 8 else 0)
    if op == RSQRT:                         # 1.0 / np.sqrt(x)
        one = _f(1.0, x[0])
        for i in range(n):
            y[i] = one / np.sqrt(x[i])
    elif op == SIGMOID:                     # 1.0 / (1.0 + np.exp(-x))
        one = _f(1.0, x[0])
        for i in range(n):
            y[i] = -x[i]
        _call_loop(k, n, y, s, y, s, y, 0)
        for i in range(n):
            y[i] = one / (one + y[i])
    elif op == ROUNDDEC:
        for i in range(n):
            y[i] = round_decimals(x[i], c)
    elif op == POWC or op == RPOW:          # np.power(x, c), np.power(c, x)
        cb = y[:1].copy()
        cb[0] = c
        if op == POWC:
            _call_loop(k, n, x, s, cb, 0, y, s)
        else:
            _call_loop(k, n, cb, 0, x, s, y, s)
    else:
        _call_loop(k, n, x, s, y, s, y, 0)


@jit
def _by_loop2(op, z, a, ea, b, eb, f32):
    """z = f(a, b) by eager's NumPy loop; ea, eb: each operand's step in values (0: one
    value for all, as NumPy steps over a broadcast operand)."""
    n = z.shape[0]
    if n == 0:
        return
    if not f32:
        s = z.itemsize
        _call_loop(2 * LOOP_OF[op] + (1 if s == 8 else 0), n, a, s * ea, b, s * eb, z, s)
        return
    a32 = np.empty(a.shape[0], np.float32)
    b32 = np.empty(b.shape[0], np.float32)
    z32 = np.empty(n, np.float32)
    for i in range(a.shape[0]):
        a32[i] = a[i]
    for i in range(b.shape[0]):
        b32[i] = b[i]
    _call_loop(2 * LOOP_OF[op], n, a32, 4 * ea, b32, 4 * eb, z32, 4)
    for i in range(n):
        z[i] = z32[i]


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
    f32 = _f32_loop(h, rq, sa, sb, cbuf)
    if op == WHERE:             # the condition (the output's shape); its int list too
        xw = _val(rq, rd, ms, ptrs, cond[k], cbuf[4:5])
        flags = _ints(md, ptrs, k)
        for i in range(flags.shape[0]):
            flags[i] = 1 if xw[i] != 0.0 else 0
    n = z.shape[0]
    if n == 0:
        return
    if _size(rq, rd, ms, sa) == n and _size(rq, rd, ms, sb) == n:
        _binary_same(op, n, z, xa, xb, xw, f32)
        return
    if fx[k, 0] != 0:           # a broadcast the recording resolved to rows (fx)
        _binary_rows(op, fx[k, 0], fx[k, 1], fx[k, 2], z, xa, xb, xw, f32)
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
        _binary_same(op, 1, z, xa, xb, xw, f32)
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
                     else xw, f32)
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
def _binary_rows(op, kind, outer, inner, z, xa, xb, xw, f32):
    """A broadcast binary op as ``outer`` rows of ``inner`` values (``Program.fx``): kind 1
    a full, b one row; 2 a full, b one value per row; 3 a one row, b full; 4 a one value
    per row, b full; 5 a full, b one value; 6 a one value, b full. One loop nest (a call
    per row would cost more than the row)."""
    ra = inner if kind in (1, 2, 5) else (1 if kind == 4 else 0)   # a's step per row
    rb = inner if kind in (3, 4, 6) else (1 if kind == 2 else 0)
    if kind == 1 or kind == 3:          # both run along the row
        _rows_vv(op, outer, inner, z, xa, ra, xb, rb, xw, f32)
    elif kind == 2 or kind == 5:        # a runs, b one value per row
        _rows_vs(op, outer, inner, z, xa, ra, xb, rb, False, xw, f32)
    else:                               # b runs, a one value per row
        _rows_vs(op, outer, inner, z, xb, rb, xa, ra, True, xw, f32)


@jit
def _rows_vv(op, outer, inner, z, a, ra, b, rb, xw, f32):
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
    elif LOOP_OF[op] >= 0:              # eager's own NumPy loop, a row at a time
        for i in range(outer):
            _by_loop2(op, _row(z, i * inner, inner), _row(a, i * ra, inner), 1,
                      _row(b, i * rb, inner), 1, f32)
    else:
        for i in range(outer):
            zr, ar, br = _row(z, i * inner, inner), _row(a, i * ra, inner), _row(b, i * rb, inner)
            for j in range(inner):
                zr[j] = value_of(op, _f64(ar[j]), _f64(br[j]), 0.0, 0.0)


@jit
def _rows_vs(op, outer, inner, z, x, rx, s, rs, first, xw, f32):
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
    elif LOOP_OF[op] >= 0:              # eager's own NumPy loop, the value with step 0
        for i in range(outer):
            zr, xr, v = _row(z, i * inner, inner), _row(x, i * rx, inner), _row(s, i * rs, 1)
            if first:
                _by_loop2(op, zr, v, 0, xr, 1, f32)
            else:
                _by_loop2(op, zr, xr, 1, v, 0, f32)
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
def _binary_same(op, n, z, xa, xb, xw, f32):
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
    elif LOOP_OF[op] >= 0:      # eager's own NumPy loop (a one-value operand: step 0)
        _by_loop2(op, z[:n], xa, 1 if xa.shape[0] == n else 0, xb,
                  1 if xb.shape[0] == n else 0, f32)
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
    elif LOOP_OF[op] >= 0 or op == RSQRT or op == ROUNDDEC:   # as eager's forward, in its dtype
        f32 = h & F32 != 0 and cbuf.itemsize == 8 and rq[3 * a] & F32 != 0
        _by_loop1(op, y, x, c, f32)
    elif op == NEG:
        for i in range(n):
            y[i] = -x[i]
    else:
        for i in range(n):
            y[i] = value_of(op, _f64(x[i]), 0.0, c, c2)
