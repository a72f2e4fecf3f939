"""Ordering along a dim: ``sort``, ``argsort`` and ``topk``, composed from the recorded
primitives.

The order is NumPy's stable ``argsort`` (NaN sorts as the largest value, as PyTorch's:
last ascending, first descending); the values are the input gathered at it (a ``gather``
record, so gradients flow back to the picked elements: ``GatherBackward0`` where PyTorch
has ``SortBackward0``/``TopkBackward0``). Ties keep their input order. PyTorch's CPU sort
is stable too, except ``descending=True`` without ``stable=True`` on longer dims, and its
``topk`` leaves the order of tied elements unspecified: there tapegrad's order is the
stable one.

Inside a ``tg.compile`` recording the order is a value the tape does not recompute (the
gather's positions are fixed), so the recording also records a check of it: the gathered
values compared pairwise along the dim (and, for ``topk``, the last one kept against every
one left out), ties broken by position, all reduced to one bool that becomes a guard. A
replay whose new values the recorded order does not sort records again, so a compiled
call never differs from an eager one.
"""
import collections

import numpy as np

from . import dtypes as D
from .face import TensorBase as Tensor, _array, _from_array, _new, _shape
from .indexing import _flat_positions, _pick
from .ops import GATHER
from .shapes import _dim
from .state import recording_active


def return_type(name, fields="values indices"):
    """A named tuple that prints as PyTorch's ``torch.return_types.<name>``."""
    base = collections.namedtuple(name, fields)

    class ReturnType(base):
        """(values, indices), also by name: PyTorch's ``torch.return_types.<name>``."""
        __slots__ = ()

        def __repr__(self):
            parts = ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
            return f"tapegrad.return_types.{name}(\n{parts})"

    ReturnType.__name__ = ReturnType.__qualname__ = name
    return ReturnType


SortResult = return_type("sort")
TopkResult = return_type("topk")


def _stable_order(v, d, descending):
    """Positions along axis d that sort v stably (NaN largest)."""
    if not descending:
        return np.argsort(v, axis=d, kind="stable")
    # descending and stable: the ascending stable order of the reversed lanes, reversed
    n = v.shape[d]
    rev = np.argsort(np.flip(v, d), axis=d, kind="stable")
    return np.flip(n - 1 - rev, d)


def _strictly_before(a, b, descending):
    if not a.dtype.is_floating_point:
        return a > b if descending else a < b
    if descending:                          # NaN first
        return (a > b) | (a.isnan() & ~b.isnan())
    return (a < b) | (b.isnan() & ~a.isnan())


def _in_order(a, b, ia, ib, descending):
    """Bool tensor: does a (at positions ia) come before b (at ib) in the stable order?"""
    if a.dtype is D.bool_:
        a, b = a.to(D.int64), b.to(D.int64)
    tie = a == b
    if a.dtype.is_floating_point:
        tie = tie | (a.isnan() & b.isnan())
    first = _from_array(np.asarray(ia < ib), D.bool_)
    return _strictly_before(a, b, descending) | (tie & first)


def _guard_order(x, values, order, d, descending, kept):
    """Inside a tg.compile recording: a guard that the recorded order still sorts the
    replayed values (the first ``kept`` along d, and those before the rest)."""
    n = order.shape[d]
    checks = []
    if kept > 1:
        ia = np.take(order, range(kept - 1), d)
        ib = np.take(order, range(1, kept), d)
        checks.append(_in_order(values.narrow(d, 0, kept - 1), values.narrow(d, 1, kept - 1),
                                ia, ib, descending))
    if 0 < kept < n:
        rest = np.take(order, range(kept, n), d)
        flat = np.take_along_axis(_flat_positions(order.shape), rest, d)
        left_out = _pick(x, flat, GATHER)
        last = np.take(order, [kept - 1], d)
        checks.append(_in_order(values.narrow(d, kept - 1, 1), left_out, last, rest,
                                descending))
    if checks:
        ok = checks[0].all()
        for c in checks[1:]:
            ok = ok & c.all()
        if not ok.item():           # (the guard: item() inside a recording)
            raise AssertionError("tapegrad: the stable order does not sort its values")


def _ordered(x, dim, descending, kept, name):
    """(values, indices) of the first ``kept`` elements of x's stable order along dim."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    shape = _shape(x)
    d = _dim(dim, len(shape))
    if not shape:                           # a 0-d tensor: itself, at index 0
        return x.clone(), _new(np.zeros((), np.int64), D.int64)
    v = _array(x)
    full = _stable_order(v, d, descending)
    order = full if kept == shape[d] else np.take(full, range(kept), d)
    flat = np.take_along_axis(_flat_positions(shape), order, d)
    values = _pick(x, flat, GATHER)
    if recording_active() and v.size:
        _guard_order(x, values, full, d, descending, kept)
    return values, _new(np.ascontiguousarray(order, np.int64), D.int64)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) of ``input`` sorted along ``dim``; ties keep their order."""
    return SortResult(*_ordered(input, dim, descending, _size(input, dim), "sort"))


def argsort(input, dim=-1, descending=False, stable=False):
    return _ordered(input, dim, descending, _size(input, dim), "argsort")[1]


def _size(x, dim):
    shape = _shape(x) if isinstance(x, Tensor) else ()
    return shape[_dim(dim, len(shape))] if shape else 1


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002 (PyTorch's name)
    """(values, indices) of the ``k`` largest (``largest=False``: smallest) elements along
    ``dim``, in order (also with ``sorted=False``)."""
    if isinstance(input, Tensor) and input.dtype is D.bool_:
        raise RuntimeError("topk does not support bool dtypes on CPU")
    n = _size(input, dim)
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    return TopkResult(*_ordered(input, dim, largest, k, "topk"))
