"""Raw memory of replays: a Python float's double and arrays of any element type at an
address (``ptr`` has the float64/float32/int64 views the sweeps use).

``FLOAT_OFFSET`` is where CPython's float object keeps its double (after the object
header), checked at import against the float's own value, as ``ptr.DATA_OFFSET`` is.
"""
# kernel sources: 88e81a56664ca4b8
import ctypes

import numpy as np
from numba import njit, types

from .ptr import DATA_OFFSET, _typed_ptr


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
