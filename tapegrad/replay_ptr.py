"""Raw memory of replays: a Python float's double and arrays of any element type at an
address (``ptr`` has the float64/float32/int64 views the sweeps use).

``FLOAT_OFFSET`` is where CPython's float object keeps its double (after the object
header), checked at import against the float's own value, as ``ptr.DATA_OFFSET`` is.

A replayed call's arguments are checked by the step kernel itself (``replay_step_kernels``
``_gather``): it reads the argument tuple's items, each argument tensor's ``_v``, ``_node``,
``_tape`` and ``_rg`` slots and its value's type from the objects' memory. Where they sit
(``TUPLE_ITEMS``, ``TYPE_OFFSET``, ``SLOT_OFFSETS``) is found and checked at import the same
way, on objects whose contents are known; ``ARGS_DIRECT`` is False when any is not found
(the calls then check their arguments in Python).
"""
# kernel sources: 9886e3edf5a112e2
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


def _word(addr):
    return ctypes.c_int64.from_address(addr).value


def _found(obj, target, size):
    """The one offset (a multiple of 8 below size) where obj's memory holds id(target)."""
    hits = [off for off in range(8, size, 8) if _word(id(obj) + off) == id(target)]
    return hits[0] if len(hits) == 1 else None


def type_offset():
    """Where an object's header keeps its type (a float's and an ndarray's both)."""
    off = _found(1.5, float, 16)
    probe = np.zeros(2)
    return off if off is not None and _word(id(probe) + off) == id(np.ndarray) else None


def tuple_items():
    """Where a tuple keeps its items' addresses (item i at 8 * i after it)."""
    marks = (object(), object(), object())
    off = _found(marks, marks[0], 64)
    if off is None or any(_word(id(marks) + off + 8 * i) != id(m)
                          for i, m in enumerate(marks)):
        return None
    return off


def slot_offsets():
    """Where a tensor keeps its ``_v``, ``_node``, ``_tape`` and ``_rg`` (as a tuple of four
    offsets), found on a tensor whose slots hold distinct marker objects."""
    from .base import TensorBase
    names = ("_v", "_node", "_tape", "_rg")
    t = TensorBase.__new__(TensorBase)
    marks = [object() for _ in names]
    for name, m in zip(names, marks):
        setattr(t, name, m)
    offs = tuple(_found(t, m, TensorBase.__basicsize__) for m in marks)
    if None in offs or len(set(offs)) != len(offs):
        return None
    other = object()            # and the slot's own member descriptor agrees
    t._node = other
    return offs if _word(id(t) + offs[1]) == id(other) else None


TYPE_OFFSET = type_offset()
TUPLE_ITEMS = tuple_items()
SLOT_OFFSETS = slot_offsets()
ARGS_DIRECT = DIRECT and None not in (TYPE_OFFSET, TUPLE_ITEMS, SLOT_OFFSETS)
_T_OFF = TYPE_OFFSET or 0
_TUPLE = TUPLE_ITEMS or 0
_S_V, _S_NODE, _S_TAPE, _S_RG = SLOT_OFFSETS or (0, 0, 0, 0)

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
