"""PyTorch's scatter/index family: ``scatter_add``, ``scatter`` (a tensor ``src`` or a number
``value``), ``index_add``, ``index_copy``, ``index_fill`` and their in-place forms.

Each is one custom :class:`~tapegrad.autograd.Function` named as PyTorch names its node
(``ScatterAddBackward0``, ``ScatterBackward0``/``1``, ``IndexAddBackward0``,
``IndexCopyBackward0``, ``IndexFillBackward0``/``1``). The checks (PyTorch's errors) run
first and turn ``dim`` and ``index`` into flat positions: ``ps`` (where each written element
lands in self) and ``pq`` (where it comes from in src); the forward is one NumPy write on
a copy of self (``np.add.at`` for the add forms, so repeated indices add up; an assignment
for the copy and fill forms). The backward is written with recorded tapegrad operations, so
``create_graph`` differentiates it again:

- self's gradient is g (add forms), or g with the written positions zeroed (copy and fill
  forms: a fill of zeros, itself this module's Function, named as PyTorch's
  ``grad.scatter(dim, index, 0)`` / ``grad.index_fill(dim, index, 0)``);
- src's gradient is g at the written positions (``gather`` / ``index_select``, times alpha for
  index_add); a src larger than index gets PyTorch's error at the backward, as PyTorch's
  (its ``grad.gather(dim, index)`` has index's shape);
- index_fill's 0-d tensor value gets the sum of g at the filled positions.

Inside ``tg.compile`` these ops raise, as every custom Function does (a replay would not
repeat their Python forward); their in-place forms raise as every in-place method does.
``scatter(..., reduce=...)`` is not supported.
"""
import numpy as np

from . import dtypes as D
from .autograd.function import Function
from .base import TensorBase
from .face import _array, _from_array, _shape
from .indexing import _pick
from .inplace import write_back
from .ops import GATHER, INDEX, INDEXSELECT
from .shapes import _dim


# ----- the Function: out = copy of x with elements written at flat positions ---------------
class _Write(Function):
    """``mode`` "add": out.flat[ps] += alpha * src.flat[pq] (repeats add up); "copy":
    out.flat[ps] = src.flat[pq]; "fill": out.flat[ps] = value (src: None, or the 0-d tensor
    holding value). ``src_op``: the recorded op of src's gradient (GATHER, INDEXSELECT)."""
    _fill = None            # the Function of self's gradient for copy and fill (g zeroed)

    @staticmethod
    def forward(ctx, x, src, ps, pq, mode, alpha, value, src_op, ishape):
        dt = x._dtype
        out = np.array(_array(x), dt.np, copy=True)
        flat = out.reshape(-1)
        if mode == "fill":
            flat[ps] = value
        else:
            vals = np.asarray(_array(src)).reshape(-1)[pq]
            if mode == "add":
                if alpha != 1:
                    vals = (vals * alpha).astype(dt.np)
                np.add.at(flat, ps, vals)
            else:
                flat[ps] = vals
        ctx.meta = (ps, mode, alpha, src_op, _shape(src) if src is not None else (), ishape)
        return _from_array(out, dt)

    @staticmethod
    def backward(ctx, g):
        ps, mode, alpha, src_op, src_shape, ishape = ctx.meta
        need_x, need_src = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx = gs = None
        if need_x:
            gx = g if mode == "add" else ctx._forward_cls._fill.apply(
                g, None, ps, None, "fill", 1, 0, None, ())
        if need_src:
            if mode == "fill":          # index_fill's 0-d tensor value
                gs = _pick(g, ps, INDEX).sum()
            else:
                shape = src_shape if src_op == INDEXSELECT else ishape
                gs = _pick(g, ps.reshape(shape), src_op)
                if alpha != 1:
                    gs = gs * alpha
        return gx, gs, None, None, None, None, None, None, None


def _named(name, fill=None):
    cls = type(name[:-len("Backward0")] + name[-1], (_Write,), {})
    cls._backward_cls.__name__ = cls._backward_cls.__qualname__ = name
    cls._fill = fill
    return cls


_ScatterFill = _named("ScatterBackward1")
_ScatterFill._fill = _ScatterFill
_IndexFill = _named("IndexFillBackward0")
_IndexFill._fill = _IndexFill
_ScatterAdd = _named("ScatterAddBackward0")
_Scatter = _named("ScatterBackward0", _ScatterFill)
_IndexAdd = _named("IndexAddBackward0")
_IndexCopy = _named("IndexCopyBackward0", _IndexFill)
_IndexFillValue = _named("IndexFillBackward1", _IndexFill)


def _apply(cls, x, src, ps, pq, mode, alpha, value, src_op, index_shape=()):
    return cls.apply(x, src, ps, pq, mode, alpha, value, src_op, index_shape)


# ----- checks and positions -------------------------------------------------------------
def _tensor(t, what):
    if not isinstance(t, TensorBase):
        raise TypeError(f"{what}: expected a Tensor, got {type(t).__name__}")
    return t


def _shape1(t):
    """A 0-d tensor's shape as (1,), as PyTorch's scatter/index kernels see it."""
    s = _shape(t)
    return s if s else (1,)


def _out_of_bounds(idx, size, prefix=""):
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        return f"{prefix}index {int(bad[0])} is out of bounds for dimension {{d}} with size {size}"
    return None


def _scatter_positions(self, dim, index, src):
    """(ps, pq, index shape, d) of scatter/scatter_add, with PyTorch's checks (src: None for
    the value form)."""
    _tensor(index, "scatter()")
    xs = _shape1(self)
    d = _dim(dim, len(_shape(self)))
    if index._dtype not in (D.int64, D.int32):
        raise RuntimeError("scatter(): Expected dtype int32/int64 for index")
    ishape = _shape1(index)
    if len(ishape) != len(xs):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    ss = None
    if src is not None:
        ss = _shape1(src)
        if len(ishape) != len(ss):
            raise RuntimeError("Index tensor must have the same number of dimensions as src "
                               "tensor")
        if src._dtype is not self._dtype:
            raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    if any(ishape[k] > xs[k] for k in range(len(xs)) if k != d) or \
            (ss is not None and any(i > s for i, s in zip(ishape, ss))):
        more = "" if ss is None else \
            f" and to be no larger size than src {list(_shape(src))}"
        raise RuntimeError(f"Expected index {list(_shape(index))} to be no larger than self "
                           f"{list(_shape(self))} apart from dimension {d}{more}")
    idx = np.asarray(_array(index)).astype(np.int64).reshape(ishape)
    msg = _out_of_bounds(idx, xs[d])
    if msg:
        raise RuntimeError(msg.format(d=d))
    coords = list(np.indices(ishape, dtype=np.int64)) if idx.size else \
        [np.zeros(ishape, np.int64)] * len(ishape)
    pq = np.ravel_multi_index(coords, ss).reshape(-1) if ss is not None and idx.size else \
        np.zeros(idx.size, np.int64)
    coords[d] = idx
    ps = np.ravel_multi_index(coords, xs).reshape(-1) if idx.size else np.zeros(0, np.int64)
    return ps.astype(np.int64), pq.astype(np.int64), tuple(_shape(index))


def _index_positions(self, d, idx):
    """(ps, pq): where element k of a source shaped as self with dim d of size len(idx), in
    C order, lands in self."""
    xs = _shape1(self)
    ss = (xs[:d] + (idx.size,) + xs[d + 1:])
    if not idx.size or not np.prod(ss):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    coords = list(np.indices(ss, dtype=np.int64))
    coords[d] = idx.reshape((1,) * d + (-1,) + (1,) * (len(ss) - d - 1)) + 0 * coords[d]
    ps = np.ravel_multi_index(coords, xs).reshape(-1)
    return ps.astype(np.int64), np.arange(ps.size, dtype=np.int64)


def _index_array(index):
    return np.asarray(_array(index)).astype(np.int64).reshape(-1)


# ----- the operations -----------------------------------------------------------------------
def scatter_add(self, dim, index, src):
    _tensor(src, "scatter_add()")
    ps, pq, ishape = _scatter_positions(self, dim, index, src)
    return _apply(_ScatterAdd, self, src, ps, pq, "add", 1, None, GATHER, ishape)


def scatter(self, dim, index, src=None, value=None, *, reduce=None):
    if reduce is not None:
        raise NotImplementedError("tapegrad: scatter(..., reduce=...) is not supported")
    if src is None and value is None:
        raise TypeError("scatter() missing 1 required positional argument: 'src' or 'value'")
    if src is not None and not isinstance(src, TensorBase):
        src, value = None, src
    if src is None:
        ps, _, ishape = _scatter_positions(self, dim, index, None)
        return _apply(_ScatterFill, self, None, ps, None, "fill", 1, _fill_value(value, self),
                      None, ishape)
    ps, pq, ishape = _scatter_positions(self, dim, index, src)
    return _apply(_Scatter, self, src, ps, pq, "copy", 1, None, GATHER, ishape)


def _fill_value(value, self):
    if isinstance(value, TensorBase):
        value = value.item()
    return np.asarray(value).astype(self._dtype.np)


def index_add(self, dim, index, source, *, alpha=1):
    _tensor(index, "index_add_()")
    _tensor(source, "index_add_()")
    xs, ss = _shape(self), _shape(source)
    d = _dim(dim, len(xs))
    if index._dtype not in (D.int64, D.int32):
        raise RuntimeError("index_add_(): Expected dtype int32/int64 for index but got: "
                           f"{D.scalar_name(index._dtype)}")
    if len(_shape(index)) > 1:
        raise IndexError("index_add_(): Index is supposed to be a vector, but got dim: "
                         f"{len(_shape(index))} with type: {D.scalar_name(index._dtype)} and "
                         f"size: {list(_shape(index))}")
    idx = _index_array(index)
    n_src = _shape1(source)[d] if d < len(_shape1(source)) else 1
    if idx.size != n_src:
        raise RuntimeError(f"index_add_(): Number of indices ({idx.size}) should be equal to "
                           f"source.size(dim): ({n_src}), for dim: {d}")
    if source._dtype is not self._dtype:
        raise RuntimeError(f"index_add_(): self ({D.scalar_name(self._dtype)}) and source "
                           f"({D.scalar_name(source._dtype)}) must have the same scalar type")
    x1, s1 = _shape1(self), _shape1(source)
    if len(x1) != len(s1) or any(x1[k] != s1[k] for k in range(len(x1)) if k != d):
        raise RuntimeError("source tensor shape must match self tensor shape, excluding the "
                           f"specified dimension. Got self.shape = {list(xs)} source.shape = "
                           f"{list(ss)}")
    msg = _out_of_bounds(idx, x1[d])
    if msg:
        raise RuntimeError(msg.format(d=d))
    ps, pq = _index_positions(self, d, idx)
    return _apply(_IndexAdd, self, source, ps, pq, "add", alpha, None, INDEXSELECT)


def index_copy(self, dim, index, source):
    _tensor(index, "index_copy_()")
    _tensor(source, "index_copy_()")
    xs, ss = _shape(self), _shape(source)
    d = _dim(dim, len(xs))
    if len(_shape(index)) > 1:
        raise IndexError(f"index_copy_(): Index should have dimension 1 or 0 (got "
                         f"{len(_shape(index))})")
    idx = _index_array(index)
    if xs and ss and len(xs) != len(ss):
        raise IndexError("index_copy_(): When source and destination are not scalars, their "
                         f"dimensionality must match. Source dimensionality ({len(ss)}), "
                         f"destination dimensionality ({len(xs)})")
    n_src = _shape1(source)[d]
    if idx.size != n_src:
        raise IndexError(f"index_copy_(): Number of indices ({idx.size}) should be equal to "
                         f"source.size(dim) ({n_src})")
    x1, s1 = _shape1(self), _shape1(source)
    rest_x = [x1[k] for k in range(len(x1)) if k != d]
    rest_s = [s1[k] for k in range(len(s1)) if k != d]
    if rest_x != rest_s:
        raise RuntimeError("index_copy_(): Source/destination tensor must have same slice "
                           f"shapes. Destination slice shape: {' '.join(map(str, rest_x))} at "
                           f"dimension {d} and source slice shape: "
                           f"{' '.join(map(str, rest_s))} at dimension 0.")
    if index._dtype is not D.int64:
        raise RuntimeError("index_copy_(): Expected a long tensor for index, but got "
                           f"{D.scalar_name(index._dtype)}")
    if source._dtype is not self._dtype:
        raise RuntimeError("index_copy_(): self and source expected to have the same dtype, "
                           f"but got (self) {D.scalar_name(self._dtype)} and (source) "
                           f"{D.scalar_name(source._dtype)}")
    msg = _out_of_bounds(idx, x1[d], "index_copy_(): ")
    if msg:
        raise IndexError(msg.format(d=d))
    ps, pq = _index_positions(self, d, idx)
    return _apply(_IndexCopy, self, source, ps, pq, "copy", 1, None, INDEXSELECT)


def index_fill(self, dim, index, value):
    _tensor(index, "index_fill_()")
    d = _dim(dim, len(_shape(self)))
    if index._dtype is not D.int64:
        raise IndexError("index_fill_(): Expected dtype int64 for index.")
    if len(_shape(index)) > 1:
        raise RuntimeError("Index has to be a vector/scalar")
    if isinstance(value, TensorBase) and _shape(value):
        raise RuntimeError("index_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {len(_shape(value))} dimension(s).")
    x1 = _shape1(self)
    idx = _index_array(index)
    bad = idx[(idx < -x1[d]) | (idx >= x1[d])]
    if bad.size:
        raise IndexError(f"index {int(bad[0])} is out of bounds for dimension {d} with size "
                         f"{x1[d]}")
    idx = idx % x1[d] if idx.size else idx
    ps, _ = _index_positions(self, d, idx)
    ps = np.unique(ps)
    if isinstance(value, TensorBase):
        return _apply(_IndexFillValue, self, value, ps, None, "fill", 1,
                      _fill_value(value, self), None)
    return _apply(_IndexFill, self, None, ps, None, "fill", 1, _fill_value(value, self), None)


class ScatteringMethods:
    """Tensor methods: the scatter/index family and their in-place forms."""
    __slots__ = ()
    scatter_add = scatter_add
    scatter = scatter
    index_add = index_add
    index_copy = index_copy
    index_fill = index_fill

    def scatter_add_(self, dim, index, src):
        return write_back(self, lambda t: scatter_add(t, dim, index, src), "scatter_add_",
                          (index, src))

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        return write_back(self, lambda t: scatter(t, dim, index, src, value, reduce=reduce),
                          "scatter_", (index, src))

    def index_add_(self, dim, index, source, *, alpha=1):
        return write_back(self, lambda t: index_add(t, dim, index, source, alpha=alpha),
                          "index_add_", (index, source))

    def index_copy_(self, dim, index, source):
        return write_back(self, lambda t: index_copy(t, dim, index, source), "index_copy_",
                          (index, source))

    def index_fill_(self, dim, index, value):
        return write_back(self, lambda t: index_fill(t, dim, index, value), "index_fill_",
                          (index, value))
