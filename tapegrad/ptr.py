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
from numba.core import cgutils
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


try:    # what Numba's own array constructors use
    from numba.np.arrayobj import get_itemsize, make_array, populate_array
    from numba.core.imputils import impl_ret_borrowed
    _ARRAYS = True
except ImportError:
    _ARRAYS = False


def _array_at(context, builder, arrty, ptr, n):
    """A 1-d C array of n elements at data pointer ``ptr``, owned by no one (no meminfo,
    no parent: its reference counting is nothing). Valid while the memory it views is."""
    ary = make_array(arrty)(context, builder)
    itemsize = context.get_constant(types.intp, get_itemsize(context, arrty))
    populate_array(ary, data=builder.bitcast(ptr, context.get_data_type(arrty.dtype)
                                             .as_pointer()),
                   shape=[n], strides=[itemsize], itemsize=itemsize, meminfo=None)
    return ary._getvalue()


def _view_codegen(dtype):
    arrty = types.Array(dtype, 1, "C")

    def codegen(context, builder, sig, args):
        count = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = builder.inttoptr(args[0], context.get_data_type(dtype).as_pointer())
        return _array_at(context, builder, arrty, ptr, count)
    return arrty, codegen


def _typed_view(dtype):
    """An intrinsic view of ``dtype`` elements (see ``view``)."""
    @intrinsic
    def typed_view(typingctx, addr, n):
        if not isinstance(n, types.Integer):
            return None
        arrty, codegen = _view_codegen(dtype)
        return arrty(types.int64, n), codegen
    return typed_view


@intrinsic
def _view(typingctx, addr, n, like):
    if not (isinstance(n, types.Integer) and isinstance(like, types.Array)):
        return None
    arrty, codegen = _view_codegen(like.dtype)
    return arrty(types.int64, n, like), codegen


@intrinsic
def _row_part(typingctx, ary, k, at, n):
    """ary[k, at:at + n] of a 2-d C array, as a view owned by no one (``_array_at``): valid
    while ary is. (Numba's 2-d slicing emits the general slice arithmetic at each use.)"""
    if not (isinstance(ary, types.Array) and ary.ndim == 2 and ary.layout == "C"):
        return None
    arrty = types.Array(ary.dtype, 1, "C")

    def codegen(context, builder, sig, args):
        k_, at_, n_ = (context.cast(builder, v, t, types.intp)
                       for v, t in zip(args[1:], sig.args[1:]))
        a = make_array(sig.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], a, [k_, at_],
                                       wraparound=False)
        return _array_at(context, builder, arrty, ptr, n_)
    return arrty(ary, k, at, n), codegen


@intrinsic(prefer_literal=True)
def buffer_array(typingctx, buf, dtype, width):
    """np.frombuffer(buf, dtype), as rows of ``width`` (width > 0) or flat (width 0): the
    tape's bytearrays viewed in a kernel, emitted where called (np.frombuffer, .view and
    .reshape compile as overloads of their own on a cold start). The view borrows the
    buffer's meminfo, as np.frombuffer's does. Sizes are multiples of the row by
    construction (tape.py)."""
    if not (isinstance(buf, types.Buffer) and isinstance(dtype, (types.NumberClass,
                                                                  types.DType))):
        return None
    elem = dtype.instance_type if isinstance(dtype, types.NumberClass) else dtype.dtype
    ndim = 1 if isinstance(width, types.IntegerLiteral) and width.literal_value == 0 else 2
    arrty = types.Array(elem, ndim, "C", readonly=not buf.mutable)

    def codegen(context, builder, sig, args):
        b = make_array(sig.args[0])(context, builder, value=args[0])
        out = make_array(arrty)(context, builder)
        itemsize = get_itemsize(context, arrty)
        nbytes = builder.mul(b.nitems, b.itemsize)
        count = builder.sdiv(nbytes, nbytes.type(itemsize))
        if ndim == 1:
            shape, strides = [count], [count.type(itemsize)]
        else:
            w = context.cast(builder, args[2], sig.args[2], types.intp)
            shape, strides = [builder.sdiv(count, w), w], [builder.mul(w, w.type(itemsize)),
                                                           w.type(itemsize)]
        populate_array(out, data=builder.bitcast(b.data, context.get_data_type(elem)
                                                 .as_pointer()),
                       shape=shape, strides=strides, itemsize=count.type(itemsize),
                       meminfo=b.meminfo, parent=b.parent)
        return impl_ret_borrowed(context, builder, arrty, out._getvalue())
    return arrty(buf, dtype, width), codegen


_f32_ptr = _typed_ptr(types.float32)
_f64_ptr = _typed_ptr(types.float64)
_i64_ptr = _typed_ptr(types.int64)


if _ARRAYS:
    # Views of raw memory: emitted where they are called, as one struct each (Numba's carray
    # behind an njit was inlined as IR at each call: a tuple built, a reference counted).
    view, view_f32, view_f64, view_i64 = (_view, _typed_view(types.float32),
                                          _typed_view(types.float64), _typed_view(types.int64))
    row_part = _row_part
else:       # another Numba: through numba.carray
    @numba.njit(inline="always")
    def view(addr, n, like):
        return numba.carray(as_ptr(addr, like), (n,))

    @numba.njit(inline="always")
    def view_f32(addr, n):
        return numba.carray(_f32_ptr(addr), (n,))

    @numba.njit(inline="always")
    def view_f64(addr, n):
        return numba.carray(_f64_ptr(addr), (n,))

    @numba.njit(inline="always")
    def view_i64(addr, n):
        return numba.carray(_i64_ptr(addr), (n,))

    @numba.njit(inline="always")
    def row_part(ary, k, at, n):
        return ary[k, at:at + n]
