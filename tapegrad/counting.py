"""Functions of values that record nothing (integer or boolean results, or counts, as in
PyTorch, where none of them has a gradient): ``searchsorted``, ``bucketize``, ``histc``,
``bincount``, ``isin``, ``signbit``, ``isneginf``, ``isposinf``, ``tril_indices``,
``triu_indices``, and integer powers (``int_power``: ``2 ** t`` and ``t ** u`` of integer
tensors). Inside a tg.compile recording the values they read become a guard
(tensor_api._values), so a replay at other values records again.
"""
import numpy as np

from . import dtypes as D
from . import face as _T
from .base import TensorBase
from .tensor_api import _values


def _int_result(a, out_int32):
    dt = D.int32 if out_int32 else D.int64
    return _T._new(np.array(a, dt.np), dt)         # (a copy: C-ordered, 0-d kept)


def _bool_result(a):
    return _T._new(np.array(a, np.bool_), D.bool_)


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """For each value, the index in ``sorted_sequence`` (along its last dim, batched over
    the others) where it would be inserted keeping the order: before equal values, or
    after them with ``right=True`` / ``side='right'``."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but "
                               f"got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites,"
                               " got side of left while right was True")
        right = side == "right"
    seq = _values(sorted_sequence)
    scalar = not isinstance(input, TensorBase)
    vals = np.asarray(input) if scalar else _values(input)
    if sorter is not None:
        seq = np.take_along_axis(seq, _values(sorter).astype(np.int64), -1)
    how = "right" if right else "left"
    if seq.ndim == 1:
        found = np.searchsorted(seq, vals, how)
    else:
        if scalar or seq.shape[:-1] != vals.shape[:-1]:
            raise RuntimeError("torch.searchsorted(): boundaries tensor should be 1 dimension "
                               "or the first N-1 dimensions of boundaries tensor and input "
                               "value tensor must match, but we got boundaries tensor "
                               f"{list(seq.shape)} and input value tensor {list(vals.shape)}")
        rows_s = seq.reshape(-1, seq.shape[-1])
        rows_v = vals.reshape(-1, vals.shape[-1])
        found = np.stack([np.searchsorted(s, v, how) for s, v in zip(rows_s, rows_v)]) \
            .reshape(vals.shape)
    return _int_result(found, out_int32)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each value: i with boundaries[i-1] < x <= boundaries[i] (or
    boundaries[i-1] <= x < boundaries[i] with ``right``), boundaries 1-D and sorted."""
    if len(boundaries.shape) != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim("
                           f"{len(boundaries.shape)})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def histc(input, bins=100, min=0, max=0):  # noqa: A002  (PyTorch's names)
    """Counts of the elements in ``bins`` equal bins over [min, max] (the elements' own
    range when min == max, widened by 1 each way if they are all equal); elements outside
    are left out, one at max counts in the last bin. The result has input's dtype."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"histogram_cpu\" not implemented for "
                           f"'{D.scalar_name(input.dtype)}'")
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for "
                           "dimension 0")
    v = _values(input).reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and v.size:
        lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(f"torch.histc: range of [{lo:g}, {hi:g}] is not finite")
    f = v.dtype.type                            # the arithmetic in input's dtype
    lo, hi = f(lo), f(hi)
    inside = v[(v >= lo) & (v <= hi)]
    # bin of x: the integer part of (x - min) * bins / (max - min), max in the last bin
    pos = ((inside - lo) * f(bins) / (hi - lo)).astype(np.int64)
    pos[pos == bins] = bins - 1
    return _T._new(np.bincount(pos, minlength=bins).astype(input.dtype.np), input.dtype)


def bincount(input, weights=None, minlength=0):
    """Occurrences of each value 0 .. max(input) (at least ``minlength`` of them) of a 1-D
    non-negative integer tensor; with ``weights``, their sums (float64 unless weights are
    float32)."""
    v = _values(input)
    if not np.issubdtype(v.dtype, np.integer) and v.dtype != np.bool_:
        raise NotImplementedError(f"\"bincount_cpu\" not implemented for "
                           f"'{D.scalar_name(input.dtype)}'")
    if v.ndim != 1 or (v.size and v.min() < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is None:
        return _int_result(np.bincount(v, minlength=minlength), False)
    w = _values(weights)
    if w.shape != v.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    dt = D.float32 if weights.dtype is D.float32 else D.float64
    return _T._new(np.bincount(v, w.astype(np.float64), minlength).astype(dt.np), dt)


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each element is one of ``test_elements`` (either may be a number)."""
    a = elements if not isinstance(elements, TensorBase) else _values(elements)
    b = test_elements if not isinstance(test_elements, TensorBase) else _values(test_elements)
    return _bool_result(np.isin(a, b, assume_unique=assume_unique, invert=invert))


def signbit(input):
    """Whether each element's sign bit is set (-0.0 and NaNs with the bit too)."""
    return _bool_result(np.signbit(_values(input)))


def isneginf(input):
    return _bool_result(np.isneginf(_values(input)))


def isposinf(input):
    return _bool_result(np.isposinf(_values(input)))


def int_power(base, exponent):
    """``base ** exponent`` with PyTorch's integer semantics, an integer tensor (the wider
    of the two integer dtypes; a bool one counts as int64): powers wrap around as int64
    arithmetic does, and a negative exponent gives 0, save for a base of 1 (1) or -1
    (+-1 by the exponent's parity); no gradient."""
    b = _values(base) if isinstance(base, TensorBase) else np.asarray(base, np.int64)
    e = _values(exponent) if isinstance(exponent, TensorBase) else np.asarray(exponent,
                                                                              np.int64)
    dts = [t.dtype for t in (base, exponent) if isinstance(t, TensorBase)
           and t.dtype is not D.bool_]
    dt = max(dts, key=lambda d: d.itemsize) if dts else D.int64
    b64, e64 = np.broadcast_arrays(b.astype(np.int64), e.astype(np.int64))
    with np.errstate(all="ignore"):
        out = np.power(b64, np.maximum(e64, 0))
    neg = e64 < 0                                   # 1 ** -n = 1, (-1) ** -n = +-1, else 0
    out = np.where(neg, np.where(b64 == 1, 1, np.where(b64 == -1, 1 - 2 * (e64 & 1), 0)),
                   out)
    return _T._new(np.array(out.astype(dt.np)), dt)


def _triangle_indices(row, col, offset, dtype, np_fn):
    rows, cols = np_fn(row, offset, col)
    dt = dtype or D.int64
    if dt.is_floating_point:
        raise NotImplementedError(f"\"{np_fn.__name__}\" not implemented for "
                           f"'{D.scalar_name(dt)}'")
    return _T._new(np.stack([rows, cols]).astype(dt.np).reshape(2, -1), dt)


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (2, N) row and column indices of the lower triangle (on and below diagonal
    ``offset``) of a row x col matrix, row by row."""
    return _triangle_indices(row, col, offset, dtype, np.tril_indices)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    return _triangle_indices(row, col, offset, dtype, np.triu_indices)


class CountingMethods:
    """The methods of Tensor among these (PyTorch's: not searchsorted, bucketize, isin)."""
    __slots__ = ()
    histc = histc
    bincount = bincount
    signbit = signbit
    isneginf = isneginf
    isposinf = isposinf
