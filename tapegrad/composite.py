"""Tensor methods composed from the recorded primitives, so that their gradients, their
tg.compile replays and their errors come from those: comparisons by name, logical ops on
bool tensors, NaN/inf tests, ``all``/``any``, ``masked_fill``, ``repeat``, ``split``,
``chunk``, ``narrow``, ``tril``/``triu``, ``outer``, ``diag``, ``addmm``, ``where``,
``addcmul``/``addcdiv``, ``lerp``, ``nansum``/``nanmean``, ``masked_select``,
``type_as``/``view_as``; ``cumsum``/``cumprod`` (scans.py), ``sort``/``argsort``/``topk``
(ordering.py).

Their nodes are the primitives' (``masked_fill`` records ``WhereBackward0`` where PyTorch has
``MaskedFillBackward0``), as for the layers of ``tg.nn``.
"""
import math

import numpy as np

from . import dtypes as D
from .conversion import must_be_tensor
from .face import _array, _from_array, _shape, TensorBase as Tensor
from .indexing import _pick
from .ops import INDEX
from .ordering import argsort, sort, topk
from .scans import cumprod, cumsum
from .shapes import _dim


def _shares(a, b):
    """Do tensors a and b hold (possibly) the same memory?"""
    return type(a._v) is np.ndarray and type(b._v) is np.ndarray and \
        np.may_share_memory(a._v, b._v)


def _bool_operand(t, name):
    if type(t) is bool:
        return _from_array(np.array(int(t)), D.int64)
    if not isinstance(t, Tensor) or t.dtype is not D.bool_:
        kind = type(t).__name__ if not isinstance(t, Tensor) else str(t.dtype)
        raise NotImplementedError(f"tapegrad: {name} is supported on bool tensors only "
                                  f"(got {kind}); integer bitwise ops are not")
    return t.to(D.int64)


class CompositeMethods:
    """The composed methods of Tensor (see the module docstring)."""
    __slots__ = ()

    # ----- comparisons by name, logical ops -------------------------------------------
    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def logical_and(self, other):
        # bool tensors as 0/1 integers: a and b = a * b != 0 (compare records replay)
        return (_bool_operand(self, "&") * _bool_operand(other, "&")) != 0

    def logical_or(self, other):
        return (_bool_operand(self, "|") + _bool_operand(other, "|")) != 0

    def logical_xor(self, other):
        return _bool_operand(self, "^") != _bool_operand(other, "^")

    def logical_not(self):
        return _bool_operand(self, "~") == 0

    __and__ = __rand__ = logical_and
    __or__ = __ror__ = logical_or
    __xor__ = __rxor__ = logical_xor
    __invert__ = logical_not

    # ----- NaN and inf ----------------------------------------------------------------
    def isnan(self):
        return self != self                     # NaN is the one value unequal to itself

    def isinf(self):
        if not self.dtype.is_floating_point:
            return self != self                 # (all False)
        return self.abs() == math.inf

    def isfinite(self):
        if not self.dtype.is_floating_point:
            return self == self                 # (all True)
        return (self - self) == 0.0             # x - x is NaN for inf and NaN, else 0

    def all(self, dim=None, keepdim=False):
        """True where every element (along ``dim``) is nonzero; a bool tensor."""
        zero = (self != 0).logical_not().to(D.int64)
        n = zero.sum() if dim is None else zero.sum(dim, keepdim=keepdim)
        return n == 0

    def any(self, dim=None, keepdim=False):
        nz = (self != 0).to(D.int64)
        n = nz.sum() if dim is None else nz.sum(dim, keepdim=keepdim)
        return n != 0

    # ----- masks and copies ---------------------------------------------------------
    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is True, self elsewhere (mask broadcast to self)."""
        from .indexing import where
        if not isinstance(mask, Tensor):
            raise must_be_tensor("masked_fill", "mask", 1, mask)
        if mask.dtype is not D.bool_:
            raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with "
                               f"dtype {D.cpp_name(mask.dtype)}")
        if isinstance(value, Tensor) and value.ndim:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s).")
        out = where(mask, value if isinstance(value, Tensor) else float(value)
                    if self.dtype.is_floating_point else value, self)
        return out if out.dtype is self.dtype else out.to(self.dtype)

    def repeat(self, *sizes):
        """The tensor tiled ``sizes[i]`` times along dim i (new leading dims when there are
        more sizes than dims): an expand of interleaved new dims, then a reshape."""
        if not sizes:
            raise TypeError('repeat() missing 1 required positional arguments: "repeats"')
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        shape = _shape(self)
        if len(sizes) < len(shape):
            raise RuntimeError("Number of dimensions of repeat dims can not be smaller than "
                               "number of dimensions of tensor")
        shape = (1,) * (len(sizes) - len(shape)) + tuple(shape)
        spread = [d for s in shape for d in (1, s)]
        tiled = [d for r, s in zip(sizes, shape) for d in (r, s)]
        out = self.reshape(*spread).expand(*tiled).reshape(
            *[r * s for r, s in zip(sizes, shape)])
        # repeats of 1 leave a view of self: a copy, as PyTorch's repeat always is
        return out.clone() if _shares(out, self) else out

    def narrow(self, dim, start, length):
        n = len(_shape(self))
        d = _dim(dim, n)
        size = _shape(self)[d]
        start = start + size if start < 0 else start
        if not 0 <= start <= size or length < 0 or start + length > size:
            raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                               f"({size}).")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def split(self, split_size_or_sections, dim=0):
        """Views of consecutive pieces along ``dim``: of ``split_size`` each (the last
        smaller), or of the sizes listed."""
        d = _dim(dim, len(_shape(self)))
        size = _shape(self)[d]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step <= 0 and not (step == 0 and size == 0):
                raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                                   f"dimension size of {size}" if step == 0 else
                                   f"split expects split_size be non-negative, but got "
                                   f"split_size={step}")
            sizes = [min(step, size - at) for at in range(0, size, step)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != size:
                raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to "
                                   f"{size} (input tensor's size at dimension {d}), but got "
                                   f"split_sizes={sizes}")
        out, at = [], 0
        for s in sizes:
            out.append(self.narrow(d, at, s))
            at += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        if chunks <= 0:
            raise RuntimeError("chunk expects `chunks` to be greater than 0, got: "
                               f"{chunks}")
        size = _shape(self)[_dim(dim, len(_shape(self)))]
        return self.split(max(-(-size // chunks), 1) if size else 1, dim)

    def _triangle(self, diagonal, keep):
        from .indexing import where
        shape = _shape(self)
        if len(shape) < 2:
            raise RuntimeError(f"{keep.__name__}: input tensor must have at least 2 dimensions")
        mask = keep(np.ones(shape[-2:], bool), diagonal)     # over the last two dims
        return where(_from_array(mask, D.bool_), self, self.new_zeros(()))

    def tril(self, diagonal=0):
        """Elements on and below the ``diagonal``-th diagonal, zeros above."""
        return self._triangle(diagonal, np.tril)

    def triu(self, diagonal=0):
        return self._triangle(diagonal, np.triu)

    def diag(self, diagonal=0):
        """1-D: the square matrix with self on its ``diagonal``-th diagonal (an ``index``
        of self padded with one zero); 2-D: that diagonal of self (an ``index``)."""
        shape = _shape(self)
        if len(shape) not in (1, 2):
            raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {len(shape)}D")
        k = diagonal
        if len(shape) == 1:
            n = shape[0]
            m = n + abs(k)
            flat = np.full((m, m), n, np.int64)            # n: the zero padded on
            i = np.arange(n)
            flat[i + max(-k, 0), i + max(k, 0)] = i
            from .indexing import cat
            return _pick(cat([self, self.new_zeros(1)]), flat, INDEX)
        r, c = shape
        count = max(min(r, c - k) if k >= 0 else min(r + k, c), 0)
        i = np.arange(count)
        return _pick(self, (i + max(-k, 0)) * c + i + max(k, 0), INDEX)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        """``beta * self + alpha * (mat1 @ mat2)``; with ``beta=0`` self is not read (its
        NaN and inf do not propagate; its gradient is zero), as PyTorch's."""
        from .indexing import _expanded, where
        for name, m in (("mat1", mat1), ("mat2", mat2)):
            if not isinstance(m, Tensor):
                raise must_be_tensor("addmm", name, 1 if name == "mat1" else 2, m)
            if m.ndim != 2:
                raise RuntimeError(f"{name} must be a matrix, got {m.ndim}-D tensor")
        for a, b in ((mat1, mat2), (self, mat1)):
            if a.dtype is not b.dtype:
                raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                                   f"{D.scalar_name(a.dtype)} and {D.scalar_name(b.dtype)}")
        (n, p), (q, r) = _shape(mat1), _shape(mat2)
        if p != q:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({n}x{p} and "
                               f"{q}x{r})")
        _expanded(_shape(self), [n, r], self.dtype)      # (PyTorch's words if it cannot)
        prod = mat1.mm(mat2)
        if alpha != 1:
            prod = prod * alpha
        if beta == 0:             # self's gradient is zero: where picks prod everywhere
            if not self.requires_grad:
                return prod
            return where(_from_array(np.ones((n, r), bool), D.bool_), prod, self)
        return prod + (self if beta == 1 else self * beta)

    cumsum = cumsum
    cumprod = cumprod
    sort = sort
    argsort = argsort
    topk = topk

    # ----- pointwise compositions ---------------------------------------------------
    def where(self, condition, y):
        """self where ``condition`` holds, else y (``tg.where(condition, self, y)``)."""
        from .indexing import where
        return where(condition, self, y)

    def addcmul(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 * tensor2, in that order (PyTorch's kernel's)."""
        return self + (tensor1 * tensor2 if value == 1 else value * tensor1 * tensor2)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 / tensor2."""
        return self + (tensor1 / tensor2 if value == 1 else value * tensor1 / tensor2)

    def lerp(self, end, weight):
        """self + weight (end - self), computed as PyTorch's kernel computes it: from end
        when weight >= 0.5 (end - (end - self)(1 - weight)), so lerp(a, b, 1) is b."""
        from .indexing import where
        diff = end - self
        if not isinstance(weight, Tensor):
            return self + weight * diff if abs(weight) < 0.5 else end - diff * (1 - weight)
        return where(weight.abs() < 0.5, self + weight * diff, end - diff * (1 - weight))

    def nansum(self, dim=None, keepdim=False):
        """The sum with NaNs counted as zero (their gradient is 0)."""
        from .indexing import where
        kept = where(self.isnan(), self.new_zeros(()), self)
        return kept.sum() if dim is None else kept.sum(dim, keepdim=keepdim)

    def nanmean(self, dim=None, keepdim=False):
        """The mean of the values that are not NaN."""
        count = (~self.isnan()).to(self.dtype)
        return self.nansum(dim, keepdim) / (count.sum() if dim is None else
                                            count.sum(dim, keepdim=keepdim))

    def masked_select(self, mask):
        """The elements where ``mask`` (broadcast with self) is True, as a 1-D tensor."""
        from .shapes import _broadcast
        if not isinstance(mask, Tensor):
            raise must_be_tensor("masked_select", "mask", 1, mask)
        if mask.dtype is not D.bool_:
            raise RuntimeError("masked_select: expected BoolTensor for mask")
        shape = _broadcast(_shape(self), _shape(mask))
        return self.expand(*shape)[mask.expand(*shape)]

    # ----- shapes and dtypes of another tensor --------------------------------------
    def outer(self, vec2):
        if self.ndim != 1 or vec2.ndim != 1:
            bad = self if self.ndim != 1 else vec2
            which = "self" if bad is self else "vec2"
            raise RuntimeError(f"outer: Expected 1-D argument {which}, but got {bad.ndim}-D")
        return self.unsqueeze(1) * vec2.unsqueeze(0)

    def type_as(self, other):
        return self.to(other.dtype)

    def view_as(self, other):
        return self.view(*_shape(other))

    def is_contiguous(self):
        v = self._v
        return type(v) is float or bool(_array(self).flags.c_contiguous)
