"""What ``tg.tensor(data)`` makes of Python data, as ``torch.tensor`` reads it.

PyTorch reads nested sequences in three steps, each with its own errors, and so does this:

1. sizes (``compute_sizes``): follow the first element down; a string met on the way is
   "too many dimensions 'str'" (a string is a sequence of strings, without end);
2. dtype (``infer_scalar_type``): every leaf, promoted: Python float -> the default float,
   int -> int64, bool -> bool, a tensor or NumPy scalar -> its dtype; a string is
   "new(): invalid data type", anything else "Could not infer dtype of X";
3. values (``recursive_store``): every row must have the length of the first
   ("expected sequence of length 2 at dim 1 (got 1)"); a tensor leaf is its one element
   (``item()``); a Python number stored into an integer dtype must fit
   ("value cannot be converted to type int64 without overflow": NaN, inf, out of range).

Plain nested lists of Python numbers, by far the common case, are checked level by level with
``map(type, row)`` and converted by one ``np.array`` call; everything else takes the exact
element-by-element path.
"""
import math
import warnings

import numpy as np

from . import dtypes as D
from .base import TensorBase
from .quiet import quietly

_NUMBERS = {bool, int, float}


def _tensor_class():
    return TensorBase


def _type_name(x):
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def must_be_tensor(fn, arg, position, x):
    """PyTorch's TypeError for a non-tensor argument ``arg`` of ``fn`` at ``position``."""
    return TypeError(f"{fn}(): argument '{arg}' (position {position}) must be Tensor, not "
                     f"{_type_name(x)}")


def _is_sequence(x, Tensor):
    """A sequence whose items ``recursive_store`` walks (lists, tuples, arrays, tensors)."""
    return (isinstance(x, (list, tuple, range)) or
            (isinstance(x, (np.ndarray, Tensor)) and x.ndim > 0))


def sizes_of(data):
    """The shape read from the first element down (PyTorch's ``compute_sizes``)."""
    sizes, seq = [], data
    while True:
        t = type(seq)
        if t is not list and t is not tuple and not (
                isinstance(seq, (list, tuple, range, str))
                or (isinstance(seq, np.ndarray) and seq.ndim > 0)):
            return sizes                 # a tensor inside a sequence is one number, too
        if isinstance(seq, str):
            raise ValueError("too many dimensions 'str'")
        sizes.append(len(seq))
        if not sizes[-1]:
            return sizes
        seq = seq[0]


def scalar_type(x):
    """The dtype of Python data ``x`` (PyTorch's ``infer_scalar_type``)."""
    t = type(x)
    if t is float:
        return D.DEFAULT_FLOAT
    if t is int:
        return D.int64
    if t is bool:
        return D.bool_
    if isinstance(x, _tensor_class()):
        return x.dtype
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        raise TypeError(f"new(): invalid data type '{_type_name(x)}'")
    if isinstance(x, (np.ndarray, np.generic, complex)):
        return D.from_numpy(np.asarray(x).dtype)
    if isinstance(x, (list, tuple, range)):
        found = D.DEFAULT_FLOAT if not len(x) else None     # [] reads as the default float
        for item in x:
            d = scalar_type(item)
            found = d if found is None else D.promote(found, d)
        return found
    raise RuntimeError(f"Could not infer dtype of {type(x).__name__}")


def _plain_leaf_types(seq, sizes, dim, types):
    """The set of leaf types of a regular nested list of Python numbers, or None when ``seq``
    is anything else (ragged, other leaves, non-list rows): the exact path decides then."""
    if type(seq) not in (list, tuple) or len(seq) != sizes[dim]:
        return None
    if dim + 1 == len(sizes):
        types.update(map(type, seq))
        return types if types <= _NUMBERS else None
    for row in seq:
        if _plain_leaf_types(row, sizes, dim + 1, types) is None:
            return None
    return types


def _store(seq, sizes, dim, out, floating, Tensor):
    """Appends the leaves of ``seq`` to ``out`` in order (PyTorch's ``recursive_store``)."""
    n = sizes[dim]
    if not _is_sequence(seq, Tensor):
        raise TypeError("not a sequence")
    if len(seq) != n:
        raise ValueError(f"expected sequence of length {n} at dim {dim} (got {len(seq)})")
    last = dim + 1 == len(sizes)
    for x in seq:
        if not last:
            _store(x, sizes, dim + 1, out, floating, Tensor)
        elif isinstance(x, Tensor):
            if x.numel() != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            if x.requires_grad:
                warnings.warn("Converting a tensor with requires_grad=True to a scalar may "
                              "lead to unexpected behavior.\nConsider using tensor.detach() "
                              "first.", UserWarning, stacklevel=5)
            out.append(x.item())         # (inside tg.compile: a guard, as any item())
        elif isinstance(x, np.generic):
            out.append(x.item())
        elif _is_sequence(x, Tensor):
            raise TypeError(f"must be real number, not {type(x).__name__}" if floating else
                            f"'{type(x).__name__}' object cannot be interpreted as an integer")
        else:
            out.append(x)


def _natural(values, kind, floating):
    """A NumPy array of Python leaves of one kind ('f', 'i', 'b'), before the final dtype
    (``floating``: that dtype is a floating-point one, which takes ints of any size)."""
    if kind == "f" or (kind == "i" and floating):
        return np.array(values, np.float64)
    if kind == "b":
        return np.array(values, np.bool_)
    a = np.array(values)
    if a.dtype.kind not in "bi":          # uint64 or object: an int beyond int64
        raise ValueError("Overflow when unpacking long long")
    return a.astype(np.int64, copy=False)


_RANGES = {d: (int(np.iinfo(d.np).min), int(np.iinfo(d.np).max)) for d in D.ALL
           if d.category == 1}


def _overflow(dt):
    return RuntimeError(f"value cannot be converted to type {dt.name} without overflow")


_F32_MAX = float(np.finfo(np.float32).max)


def checked_fill(x, dt):
    """Python number ``x`` as a fill of dtype ``dt`` (full, fill_, t[k] = x, linspace's
    ends), checked as PyTorch's fills check it (c10::checked_convert): a finite number
    beyond float32's range is an error there, not inf."""
    if dt is D.float32 and isinstance(x, (float, np.floating)) and \
            math.isfinite(x) and abs(x) > _F32_MAX:
        raise RuntimeError("value cannot be converted to type float without overflow")
    return x


def _checked(a, dt):
    """``a`` as dtype ``dt``; a value that does not fit an integer dtype is PyTorch's error."""
    if dt.category == 1 and a.size and a.dtype.kind in "fi":
        low, high = _RANGES[dt]
        if a.dtype.kind == "f":            # NaN, inf or beyond the range
            bad = ~(a >= low) | (a > high)
        elif low == 0:                     # unsigned: -max..max, negatives wrap
            bad = (a > high) | (a < -high)
        else:
            bad = (a < low) | (a > high)
        if bad.any():
            raise _overflow(dt)
    return a if a.dtype == dt.np else quietly(a.astype, dt.np)     # (inf, silently)


def _number(x, dt):
    """A 0-d array of Python number ``x`` (the fast path of ``tg.tensor(1.5)``)."""
    t = type(x)
    if dt is None:
        dt = D.DEFAULT_FLOAT if t is float else (D.int64 if t is int else D.bool_)
    if t is int and dt.category and not -2 ** 63 <= x < 2 ** 63:
        if not dt.is_floating_point:
            raise ValueError("Overflow when unpacking long long")
    elif dt.category == 1 and t is not bool:
        low, high = _RANGES[dt]
        if not (low <= x <= high if t is float or low else -high <= x <= high):
            raise _overflow(dt)                 # NaN fails every comparison
        if x < 0 and not low:
            return np.array(x, np.int64).astype(dt.np)      # negatives wrap, as PyTorch
    return quietly(np.array, x, dt.np)          # (past float32's range: inf, silently)


def from_python(data, dt=None):
    """A NumPy array of dtype ``dt`` (None: the inferred one) holding Python data: a number,
    or nested lists/tuples of numbers, tensors, NumPy scalars and arrays."""
    if type(data) in _NUMBERS:
        return _number(data, dt)
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{_type_name(data)}'")
    sizes = sizes_of(data)
    types = _plain_leaf_types(data, sizes, 0, set()) if sizes else None
    if types is not None:                  # nested lists of Python numbers: one NumPy call
        kind = "f" if float in types or not types else ("i" if int in types else "b")
        dt = dt or {"f": D.DEFAULT_FLOAT, "i": D.int64, "b": D.bool_}[kind]
        return _checked(_natural(data, kind, dt.is_floating_point), dt)
    inferred = scalar_type(data)
    dt = dt or inferred
    if math.prod(sizes) == 0:              # nothing to store (nor rows to check, as PyTorch)
        return np.zeros(sizes, dt.np)
    if not sizes:
        values = data.item() if isinstance(data, np.generic) else data
    else:
        values = []
        _store(data, sizes, 0, values, dt.is_floating_point, _tensor_class())
    kind = {2: "f", 1: "i", 0: "b"}[inferred.category]
    return _checked(_natural(values, kind, dt.is_floating_point).reshape(sizes), dt)
