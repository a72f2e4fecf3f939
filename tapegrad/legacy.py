"""PyTorch's legacy constructors: ``tg.Tensor(data)``, ``tg.Tensor(2, 3)``, ``tg.FloatTensor``,
``tg.DoubleTensor``, ``tg.LongTensor`` ...

``T(2, 3)`` (sizes) makes a tensor of that shape (PyTorch leaves it uninitialized; tapegrad
fills it with zeros), ``T([1, 2])`` (a sequence) copies the data into the constructor's
dtype, ``T(t)`` (a tensor of the same dtype) shares ``t``'s memory. ``tg.Tensor`` makes the
default float dtype from data and sizes, and keeps a tensor argument's dtype.
"""
import numpy as np

from . import dtypes as D
from .base import TensorBase as Tensor
from .device import check
from .factory import tensor, zeros
from .shapes import Size

# How PyTorch's C++ names dtypes in its TensorOptions messages
_CPP_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
              "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
              "bool": "bool"}


def new(dtype, args, kwargs):
    """A tensor as ``torch.Tensor(*args)`` makes it; ``dtype``: the constructor's (None for
    ``tg.Tensor``)."""
    device = kwargs.pop("device", None)
    if kwargs:
        got = ", ".join([type(a).__name__ for a in args] +
                        [f"{k}={type(v).__name__}" for k, v in kwargs.items()])
        raise TypeError(f"new() received an invalid combination of arguments - got ({got})")
    check(device)
    dt = dtype or D.DEFAULT_FLOAT
    if len(args) == 1 and not isinstance(args[0], Size):
        data = args[0]
        if isinstance(data, Tensor):
            if dtype is not None and data.dtype is not dtype:
                raise TypeError(f"expected {_options(dtype)} (got {_options(data.dtype)})")
            return data.detach()
        if isinstance(data, (list, tuple, np.ndarray)):
            return tensor(data, dtype=dt)
        if isinstance(data, str):
            raise TypeError("new(): invalid data type 'str'")
        if not isinstance(data, (int, np.integer)) or isinstance(data, bool):
            raise TypeError(f"new(): data must be a sequence (got {type(data).__name__})")
    sizes = tuple(args[0]) if len(args) == 1 and isinstance(args[0], Size) else args
    for i, s in enumerate(sizes):
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"new(): argument 'size' failed to unpack the object at pos {i + 1} "
                            f"with error \"type must be tuple of ints,but got "
                            f"{type(s).__name__}\"")
    return zeros(sizes or (0,), dtype=dt)


def _options(dt):
    return (f"TensorOptions(dtype={_CPP_NAMES[dt.name]}, device=cpu, layout=Strided, "
            "requires_grad=false (default), pinned_memory=false (default), "
            "memory_format=(nullopt))")


class _LegacyTensor:
    """``FloatTensor(...)`` and the others: calling one makes a tensor of its dtype (the
    result is a ``tg.Tensor``; ``x.type(tg.FloatTensor)`` converts to its dtype)."""
    dtype = None

    def __new__(cls, *args, **kwargs):
        return new(cls.dtype, args, kwargs)


class FloatTensor(_LegacyTensor):
    dtype = D.float32


class DoubleTensor(_LegacyTensor):
    dtype = D.float64


class LongTensor(_LegacyTensor):
    dtype = D.int64


class IntTensor(_LegacyTensor):
    dtype = D.int32


class BoolTensor(_LegacyTensor):
    dtype = D.bool_


class ByteTensor(_LegacyTensor):
    dtype = D.uint8
