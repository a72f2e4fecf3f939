"""Raw memory for the jitted kernels: arrays at integer addresses.

The sweep reads the values a backward needs where they already live (the NumPy arrays of
the forward pass, kept alive by the tape) and writes leaf gradients straight into their
persistent buffers: the tape hands it addresses, not copies. Every address comes from an
object the tape holds, with a size checked when it was recorded.

``DATA_OFFSET`` is where CPython's ndarray object keeps its data pointer (right after the
object header, in NumPy's ``PyArrayObject_fields``); ``data_offset()`` checks it at import
against ``ndarray.ctypes.data`` and is None when it does not hold (then the engine asks
NumPy for each address instead).
"""
import ctypes

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic


def data_offset():
    probe = np.arange(3.0)
    for off in (16, 24):
        if ctypes.c_void_p.from_address(id(probe) + off).value == probe.ctypes.data:
            return off
    return None


DATA_OFFSET = data_offset()


@intrinsic
def as_ptr(typingctx, addr, like):
    """A pointer to ``like``'s element type at integer address ``addr``."""
    sig = types.CPointer(like.dtype)(types.int64, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


@intrinsic
def load_i64(typingctx, addr):
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.int64)))
        return builder.load(ptr)
    return sig, codegen


@intrinsic
def as_u8_ptr(typingctx, addr):
    sig = types.CPointer(types.uint8)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


def _typed_ptr(nbtype):
    @intrinsic
    def typed(typingctx, addr):
        sig = types.CPointer(nbtype)(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
        return sig, codegen
    return typed


try:    # what numba.carray calls: carray itself is an overload, compiled of its own for each
    # pointer type on a cold start; its intrinsic is emitted where it is called
    from numba.np.arrayobj import get_cfarray_intrinsic
    _carray = get_cfarray_intrinsic("C", None)
except ImportError:
    _carray = numba.carray


_f32_ptr = _typed_ptr(types.float32)
_f64_ptr = _typed_ptr(types.float64)
_i64_ptr = _typed_ptr(types.int64)


@numba.njit(inline="always")
def view(addr, n, like):
    """The n elements of like's dtype at address addr, as a 1-d array."""
    return _carray(as_ptr(addr, like), (n,))


@numba.njit(inline="always")
def view_f32(addr, n):
    return _carray(_f32_ptr(addr), (n,))


@numba.njit(inline="always")
def view_f64(addr, n):
    return _carray(_f64_ptr(addr), (n,))


@numba.njit(inline="always")
def view_i64(addr, n):
    return _carray(_i64_ptr(addr), (n,))
