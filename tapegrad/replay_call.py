"""Numba kernels of one replayed call, around the forward sweep: where the values go
(``place``), the inputs written in (``store_inputs``), the guards checked
(``guards_hold``).

An input is read where its tensor keeps it: a Python float's value at ``FLOAT_OFFSET``
in the float object, an ndarray's data through its data pointer (``ptr.DATA_OFFSET``), so
that one call writes every input whatever their number, with no Python per input. Both
offsets are checked at import against CPython's own answers; where one does not hold
(``None``), ``replay_program`` writes the inputs from Python instead.
"""
import ctypes

import numpy as np
from numba import njit, types

from .kernels import jit
from .layout import SCALAR, SIZE
from .ptr import DATA_OFFSET, _typed_ptr, load_i64, view_f64
from .replay_kernels import _val


def float_offset():
    """Where CPython's float object keeps its double (after the object header)."""
    probe = float(np.pi)
    for off in (16, 24, 8):
        if ctypes.c_double.from_address(id(probe) + off).value == probe:
            return off
    return None


FLOAT_OFFSET = float_offset()
DIRECT = FLOAT_OFFSET is not None and DATA_OFFSET is not None   # inputs read by address
_F_OFF = FLOAT_OFFSET or 0
_D_OFF = DATA_OFFSET or 0

# the element type of an input array: its code in icode
CODES = {np.dtype(np.float64): 0, np.dtype(np.float32): 1, np.dtype(np.int64): 2,
         np.dtype(np.int32): 3, np.dtype(np.int16): 4, np.dtype(np.int8): 5,
         np.dtype(np.uint8): 6, np.dtype(np.bool_): 6}
_f32 = _typed_ptr(types.float32)
_i64 = _typed_ptr(types.int64)
_i32 = _typed_ptr(types.int32)
_i16 = _typed_ptr(types.int16)
_i8 = _typed_ptr(types.int8)
_u8 = _typed_ptr(types.uint8)
_f64 = _typed_ptr(types.float64)


@jit
def place(base, rel, arena, ptrs):
    """ptrs[i] = base[i], plus the arena's address where rel[i] (a place in this call's
    arena; else an address of its own, a constant int list)."""
    at = arena.ctypes.data
    for i in range(ptrs.shape[0]):
        ptrs[i] = base[i] + at if rel[i] else base[i]


@njit(inline="always")
def _copy(code, src, dst):
    """dst (float64) = the n values at address src, of element type ``code``."""
    n = dst.shape[0]
    if code == 0:
        x = _f64(src)
        for i in range(n):
            dst[i] = x[i]
    elif code == 1:
        y = _f32(src)
        for i in range(n):
            dst[i] = y[i]
    elif code == 2:
        z = _i64(src)
        for i in range(n):
            dst[i] = z[i]
    elif code == 3:
        w = _i32(src)
        for i in range(n):
            dst[i] = w[i]
    elif code == 4:
        u = _i16(src)
        for i in range(n):
            dst[i] = u[i]
    elif code == 5:
        v = _i8(src)
        for i in range(n):
            dst[i] = v[i]
    else:
        b = _u8(src)
        for i in range(n):
            dst[i] = b[i]


@jit
def store_inputs(rq, rd, ms, ptrs, ids, islot, icode):
    """Writes input i (the object at address ids[i]: a Python float, or a C-contiguous
    ndarray of element type icode[i]) into source slot islot[i]: a scalar record's value,
    or its place in the arena."""
    for i in range(ids.shape[0]):
        s = islot[i]
        if rq[3 * s] & SCALAR:
            rd[3 * s + 2] = _f64(ids[i] + _F_OFF)[0]
        else:
            k = int(rd[3 * s + 2])
            _copy(icode[i], load_i64(ids[i] + _D_OFF), view_f64(ptrs[k], ms[k, SIZE]))


@jit
def guards_hold(rq, rd, ms, ptrs, gslot, gkind, gpar, goff, gvals):
    """Do the guards hold? Guard g: slot gslot[g] holds the values gvals[goff[g]:] (kind 0;
    NaN equals NaN), or its arg-extremes along a dim are the recorded ones (kind 1 argmax,
    2 argmin, the first on ties and a NaN winning as np.argmax; gpar[g] = (outer, n, inner):
    the value seen as (outer, n, inner), the extreme taken over n)."""
    for g in range(gslot.shape[0]):
        x = _val(rq, rd, ms, ptrs, gslot[g])
        o0 = goff[g]
        if gkind[g] == 0:
            for i in range(x.shape[0]):
                a = x[i]
                b = gvals[o0 + i]
                if a != b and not (a != a and b != b):
                    return False
            continue
        outer, n, inner = gpar[g, 0], gpar[g, 1], gpar[g, 2]
        for o in range(outer):
            for i in range(inner):
                best = 0
                for j in range(1, n):
                    v = x[(o * n + j) * inner + i]
                    bv = x[(o * n + best) * inner + i]
                    if bv != bv:
                        break
                    if v != v or (v > bv if gkind[g] == 1 else v < bv):
                        best = j
                if best != gvals[o0 + o * inner + i]:
                    return False
    return True


def store_inputs_py(rq, rd, ms, ptrs, arena, vals, islot):
    """``store_inputs`` from Python, one input at a time (where the object layouts could
    not be checked)."""
    base = arena.ctypes.data
    for v, s in zip(vals, islot.tolist()):
        if rq[3 * s] & SCALAR:
            rd[3 * s + 2] = float(v)
        else:
            k = int(rd[3 * s + 2])
            o = (int(ptrs[k]) - base) // 8
            arena[o:o + int(ms[k, SIZE])] = np.ravel(v)
