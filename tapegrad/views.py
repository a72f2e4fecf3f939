"""Views: indexing with ints, slices, None and ``...``, and ``unsqueeze``, ``squeeze``,
``reshape``/``view``, ``t``, ``permute``, ``T``. A view shares memory and version counter
with its base; its record holds the strided map back to it (other indexing: indexing.py)."""
import math

import numpy as np

from . import dtypes as D
from .face import _array, _float, _int, _shape, _strided, TensorBase
from .ops import (ASSTRIDED, PERMUTE, SELECT, SLICE, SQUEEZE, SQUEEZEDIM, T as T_OP,
                  UNSQUEEZE, VIEW)
from .shapes import _cstrides, _dim, _sizes


def _index_key(key, nd):
    """Splits a basic index into steps (kind, value) and checks it against ``nd`` dims."""
    single = not isinstance(key, tuple)
    if single:
        key = (key,)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > nd:
        if single and isinstance(key[0], slice):          # PyTorch's words for a 0-d tensor
            raise IndexError("slice() cannot be applied to a 0-dim tensor.")
        if single and isinstance(key[0], (_int, np.integer)) and not isinstance(key[0], bool):
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python "
                             "or `tensor.item<T>()` in C++ to convert a 0-dim tensor to a "
                             "number")
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    steps = []
    for k in key:
        if k is Ellipsis:
            steps.extend([("slice", slice(None))] * (nd - used))
            nd = used   # only one ellipsis expands
        elif k is None:
            steps.append(("none", None))
        elif isinstance(k, slice):
            steps.append(("slice", k))
        elif isinstance(k, (_int, np.integer)) and not isinstance(k, bool):
            steps.append(("int", _int(k)))
        elif isinstance(k, TensorBase) and k.ndim == 0 and not k._dtype.is_floating_point \
                and k._dtype is not D.bool_:
            steps.append(("int", _int(k.item())))
        else:
            return None
    return steps


def _select(x, d, i, at=None):
    """x[..., i] on dim ``d``; an error names dim ``at`` (the key's position) when given."""
    shape = x._v.shape
    if not -shape[d] <= i < shape[d]:
        raise IndexError(f"index {i} is out of bounds for dimension {d if at is None else at} "
                         f"with size {shape[d]}")
    i %= shape[d]
    st = _cstrides(shape)
    v = x._v[(slice(None),) * d + (i, Ellipsis)]
    return _strided(SELECT, x, v, i * st[d], shape[:d] + shape[d + 1:], st[:d] + st[d + 1:])


def _slice(x, d, start, stop, step):
    shape = x._v.shape
    st = _cstrides(shape)
    n = len(range(start, stop, step))
    v = x._v[(slice(None),) * d + (slice(start, stop, step),)]
    new_st = st[:d] + [st[d] * step] + st[d + 1:]
    return _strided(SLICE, x, v, start * st[d], shape[:d] + (n,) + shape[d + 1:], new_st)


class ViewMethods:
    """The view methods of Tensor."""
    __slots__ = ()

    def __getitem__(self, key):
        nd = self.ndim
        steps = _index_key(key, nd)
        if steps is None:                # arrays, lists, tensors or masks in the key
            return self._advanced_index(key)      # indexing.py
        cur, d = self, 0
        for at, (kind, k) in enumerate(steps):  # at: the dim errors name, as PyTorch
            if kind == "none":
                cur = cur.unsqueeze(d)
                d += 1
            elif kind == "int":
                cur = _select(cur, d, k, at)
            else:
                size = cur._v.shape[d]
                start, stop, step = k.indices(size)
                if step <= 0:
                    raise ValueError("step must be greater than zero")
                if (start, stop, step) != (0, size, 1):
                    cur = _slice(cur, d, start, stop, step)
                d += 1
        if cur is self:                  # x[:] and x[...] are views of x too
            cur = _strided(SLICE, self, self._v if type(self._v) is _float else self._v[...],
                           0, _shape(self), _cstrides(_shape(self)))
        return cur

    def unsqueeze(self, dim):
        shape = _shape(self)
        d = _dim(dim, len(shape) + 1)
        st = _cstrides(shape)
        v = np.expand_dims(_array(self) if type(self._v) is _float else self._v, d)
        return _strided(UNSQUEEZE, self, v, 0, shape[:d] + (1,) + shape[d:],
                        st[:d] + [0] + st[d:])

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The view of the elements x[..., i, i + offset] over dims (dim1, dim2) (for a
        negative offset, x[..., i - offset, i]), along a new last dim; the other dims keep
        their order. A strided view (its node AsStridedBackward0: PyTorch's is
        DiagonalBackward0); writes to it reach self, as PyTorch's."""
        shape = _shape(self)
        nd = len(shape)
        d1, d2 = _dim(dim1, nd), _dim(dim2, nd)
        if d1 == d2:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        n1, n2 = shape[d1], shape[d2]
        n = max(min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2), 0)
        rest = [d for d in range(nd) if d not in (d1, d2)]
        a = self._v
        # the first element: row -offset (offset < 0) or column offset along (d1, d2)
        start = [slice(None)] * nd
        if n:
            start[d2 if offset >= 0 else d1] = slice(abs(offset), None)
        a0 = a[tuple(start)]
        v = np.lib.stride_tricks.as_strided(
            a0, tuple(shape[d] for d in rest) + (n,),
            tuple(a.strides[d] for d in rest) + (a.strides[d1] + a.strides[d2],))
        st = _cstrides(shape)               # the same map over self's C-ordered elements
        base = 0 if not n else offset * st[d2] if offset >= 0 else -offset * st[d1]
        return _strided(ASSTRIDED, self, v, base, tuple(shape[d] for d in rest) + (n,),
                        [st[d] for d in rest] + [st[d1] + st[d2]])

    def squeeze(self, dim=None):
        shape = _shape(self)
        if dim is None:
            keep = [d for d, s in enumerate(shape) if s != 1]
            op = SQUEEZE
        else:
            dd = _dim(dim, len(shape))
            keep = [d for d in range(len(shape)) if d != dd or shape[d] != 1]
            op = SQUEEZEDIM
        st = _cstrides(shape)
        v = _array(self).reshape([shape[d] for d in keep])
        return _strided(op, self, v, 0, tuple(shape[d] for d in keep), [st[d] for d in keep])

    def reshape(self, *shape):
        shape = list(_sizes(shape))
        n = self.numel()
        if shape.count(-1) == 1:
            rest = math.prod(s for s in shape if s != -1)
            if rest and n % rest == 0:
                shape[shape.index(-1)] = n // rest
        if math.prod(shape) != n or any(s < 0 for s in shape):
            raise RuntimeError(f"shape '{list(_sizes(tuple(shape)))}' is invalid for input "
                               f"of size {n}")
        v = _array(self).reshape(shape)
        return _strided(VIEW, self, v, 0, (n,), [1])

    def view(self, *shape):
        """reshape that must not copy: the new shape has to fit the strides."""
        a = _array(self)
        if not a.flags.c_contiguous:
            try:                            # NumPy's no-copy reshape: PyTorch's stride rule
                a.view().shape = _sizes(shape)
            except ValueError:              # a wrong size: reshape words it
                pass
            except AttributeError:
                raise RuntimeError(
                    "view size is not compatible with input tensor's size and stride (at "
                    "least one dimension spans across two contiguous subspaces). Use "
                    ".reshape(...) instead.") from None
        return self.reshape(*shape)

    def t(self):
        nd = self.ndim
        if nd > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
        shape = _shape(self)
        st = _cstrides(shape)
        return _strided(T_OP, self, _array(self).T, 0, shape[::-1], st[::-1])

    def permute(self, *dims):
        shape = _shape(self)
        dims = [_dim(d, len(shape)) for d in _sizes(dims)]
        if sorted(dims) != list(range(len(shape))):
            raise RuntimeError("permute(sparse_coo): number of dimensions in the tensor input "
                               "does not match the length of the desired ordering of "
                               "dimensions i.e. input.dim() = "
                               f"{len(shape)} is not equal to len(dims) = {len(dims)}")
        st = _cstrides(shape)
        return _strided(PERMUTE, self, np.transpose(_array(self), dims), 0,
                        tuple(shape[d] for d in dims), [st[d] for d in dims])

    @property
    def T(self):
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self):
        """The last two dims swapped: the transposes of a batch of matrices (a view)."""
        if self.ndim < 2:
            raise RuntimeError("tensor.mT is only supported on matrices or batches of "
                               f"matrices. Got {self.ndim}-D tensor.")
        return self.transpose(-2, -1)

    @property
    def mH(self):
        """mT (real tensors: the conjugate is the tensor itself)."""
        if self.ndim < 2:
            raise RuntimeError("tensor.mH is only supported on matrices or batches of "
                               f"matrices. Got {self.ndim}-D tensor.")
        return self.transpose(-2, -1)

    @property
    def H(self):
        if self.ndim != 2:
            raise RuntimeError("tensor.H is only supported on matrices (2-D tensors). Got "
                               f"{self.ndim}-D tensor." + (" For batches of matrices, consider "
                                                          "using tensor.mH" if self.ndim > 2
                                                          else ""))
        return self.transpose(0, 1)

    @property
    def real(self):
        """A real tensor's real part: the tensor itself, as PyTorch's."""
        return self

    @property
    def imag(self):
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
