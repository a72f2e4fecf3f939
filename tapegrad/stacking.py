"""Shaping and stacking functions, composed from the recorded views, ``cat``/``stack`` and
``gather`` (so their gradients, replays and errors are those, and their nodes PyTorch's:
``ExpandBackward0``, ``UnsqueezeBackward0``, ``ViewBackward0``, ``SliceBackward0``,
``CatBackward0``, ``StackBackward0``, ``GatherBackward0``, ``SortBackward0``):

- methods and functions: ``broadcast_to``, ``reshape_as``, ``unflatten``, ``tensor_split``,
  ``hsplit``, ``vsplit``, ``dsplit``, ``take_along_dim``, ``msort``;
- functions: ``broadcast_tensors``, ``broadcast_shapes``, ``atleast_1d``/``2d``/``3d``,
  ``hstack``, ``vstack``/``row_stack``, ``dstack``, ``column_stack``, ``meshgrid``,
  ``cartesian_prod``.
"""
import math
import warnings

import numpy as np

from .base import TensorBase
from .face import _shape
from .indexing import cat, stack
from .shapes import Size, _broadcast, _dim


def broadcast_shapes(*shapes):
    """The shape all of ``shapes`` broadcast to (PyTorch's words when they do not)."""
    out = ()
    for s in shapes:
        out = _broadcast(out, (s,) if isinstance(s, (int, np.integer)) else tuple(s))
    return Size(out)


def broadcast_tensors(*tensors):
    """Each tensor expanded to the shape they broadcast to (one already of that shape is
    returned as it is, as PyTorch's)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = tuple(broadcast_shapes(*[_shape(t) for t in tensors]))
    return tuple(t if _shape(t) == shape else t.expand(shape) for t in tensors)


def _each(tensors, one):
    """atleast_*'s calling convention: one tensor gives one result, several (or a
    sequence) a tuple."""
    if len(tensors) == 1 and not isinstance(tensors[0], TensorBase):
        return tuple(one(t) for t in tensors[0])
    if len(tensors) == 1:
        return one(tensors[0])
    return tuple(one(t) for t in tensors)


def _at_least_1d(t):
    return t.reshape(1) if not _shape(t) else t


def _at_least_2d(t):
    nd = len(_shape(t))
    return t.reshape(1, 1) if nd == 0 else t.unsqueeze(0) if nd == 1 else t


def _at_least_3d(t):
    nd = len(_shape(t))
    if nd == 0:
        return t.reshape(1, 1, 1)
    if nd == 1:                                 # (n,) -> (1, n, 1)
        return t.unsqueeze(0).unsqueeze(-1)
    return t.unsqueeze(-1) if nd == 2 else t     # (m, n) -> (m, n, 1)


def atleast_1d(*tensors):
    return _each(tensors, _at_least_1d)


def atleast_2d(*tensors):
    return _each(tensors, _at_least_2d)


def atleast_3d(*tensors):
    return _each(tensors, _at_least_3d)


def _stack_args(tensors, name):
    if isinstance(tensors, TensorBase) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, "
                        f"not {type(tensors).__name__}")
    return list(tensors)


def hstack(tensors):
    """cat along dim 1 (dim 0 when every tensor is 1-D), 0-d ones made 1-D first."""
    ts = [_at_least_1d(t) for t in _stack_args(tensors, "hstack")]
    return cat(ts, 0 if ts and len(_shape(ts[0])) == 1 else 1)


def vstack(tensors):
    """cat along dim 0 of the tensors made at least 2-D (a 1-D one is a row)."""
    return cat([_at_least_2d(t) for t in _stack_args(tensors, "vstack")], 0)


row_stack = vstack


def dstack(tensors):
    """cat along dim 2 of the tensors made at least 3-D."""
    return cat([_at_least_3d(t) for t in _stack_args(tensors, "dstack")], 2)


def column_stack(tensors):
    """cat along dim 1, 0-d and 1-D tensors made columns (n, 1) first."""
    ts = _stack_args(tensors, "column_stack")
    return cat([t.reshape(-1, 1) if len(_shape(t)) <= 1 else t for t in ts], 1)


def meshgrid(*tensors, indexing=None):
    """Grids of 1-D (or 0-d) tensors: output i holds tensor i along dim i, expanded over
    the others ('ij'); 'xy' swaps the first two dims (Cartesian indexing)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass "
                      "the indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                           f"received: {indexing}")
    for t in tensors:
        if len(_shape(t)) > 1:
            raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list "
                               f"but got:  {t}")
    n = len(tensors)
    swap = indexing == "xy" and n >= 2
    order = [1, 0] + list(range(2, n)) if swap else list(range(n))
    sizes = [t.numel() for t in tensors]
    shape = [sizes[i] for i in order]
    out = []
    for i, t in enumerate(tensors):
        at = order.index(i)                         # the output dim tensor i runs along
        view = [1] * n
        view[at] = -1
        out.append(t.reshape(*view).expand(*shape))
    return tuple(out)


def cartesian_prod(*tensors):
    """The rows (a, b, ...) of every combination, the last tensor varying fastest."""
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([g.reshape(-1) for g in grids], 1)


def _split_points(size, sections, name):
    """tensor_split's cut points: ``sections`` pieces, the first size % sections of them
    one longer, or the listed indices."""
    if isinstance(sections, TensorBase):
        if sections.dtype.is_floating_point or len(_shape(sections)) > 1:
            raise RuntimeError(f"{name} expected tensor_indices_or_sections to be a zero-"
                               "dimensional or one-dimensional tensor, but got a tensor with "
                               f"{len(_shape(sections))} dims")
        sections = sections.item() if not _shape(sections) else sections.tolist()
    if isinstance(sections, (int, np.integer)):
        if sections <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {sections}")
        q, r = divmod(size, sections)
        points, at = [], 0
        for i in range(sections - 1):
            at += q + (1 if i < r else 0)
            points.append(at)
        return points
    return list(sections)


class StackingMethods:
    """The shaping methods of Tensor (see the module docstring)."""
    __slots__ = ()

    def broadcast_to(self, *size):
        return self.expand(*size)

    def reshape_as(self, other):
        return self.reshape(_shape(other))

    def unflatten(self, dim, sizes):
        """Dim ``dim`` viewed as ``sizes`` (one of which may be -1)."""
        shape = _shape(self)
        d = _dim(dim, len(shape))
        sizes = tuple(sizes)
        if not sizes:
            raise RuntimeError("unflatten: sizes must be non-empty")
        known = math.prod(s for s in sizes if s != -1)
        if sizes.count(-1) > 1:
            raise RuntimeError("only one dimension can be inferred")
        if -1 not in sizes and known != shape[d]:
            raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to "
                               f"the size of dim {dim} ({shape[d]}) in the input tensor")
        return self.reshape(*shape[:d], *sizes, *shape[d + 1:])

    def tensor_split(self, indices_or_sections, dim=0):
        """Views of consecutive pieces along ``dim``: ``sections`` of them (the first
        size % sections one longer), or cut at the listed indices."""
        shape = _shape(self)
        if not shape:
            raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but "
                               "got a tensor with 0 dims")
        d = _dim(dim, len(shape))
        size = shape[d]
        points = _split_points(size, indices_or_sections, "tensor_split")
        out, at = [], 0
        for p in points + [size]:
            p = min(max(p + size if p < 0 else p, 0), size)
            start = min(at, size)
            out.append(self.narrow(d, start, max(p - start, 0)))
            at = p
        return tuple(out)

    def _split_along(self, sections, dim, name, min_dims):
        nd = len(_shape(self))
        if nd < min_dims:
            raise RuntimeError(f"torch.{name} requires a tensor with at least {min_dims} "
                               f"dimension, but got a tensor with {nd} dimensions!")
        if isinstance(sections, (int, np.integer)):
            size = _shape(self)[dim]
            if sections == 0 or size % sections:
                raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, "
                                   f"but the size of the dimension {size} is not divisible "
                                   f"by the split_size {sections}!")
        return self.tensor_split(sections, dim)

    def hsplit(self, sections):
        """tensor_split along dim 1 (dim 0 of a 1-D tensor); equal pieces for an int."""
        nd = len(_shape(self))
        return self._split_along(sections, 1 if nd > 1 else 0, "hsplit", 1)

    def vsplit(self, sections):
        return self._split_along(sections, 0, "vsplit", 2)

    def dsplit(self, sections):
        return self._split_along(sections, 2, "dsplit", 3)

    def take_along_dim(self, indices, dim=None):
        """gather along ``dim`` with ``indices`` broadcast against self over the other
        dims; without dim, of the flattened tensor."""
        if dim is None:
            return self.reshape(-1).gather(0, indices.reshape(-1))
        shape, ishape = _shape(self), _shape(indices)
        if len(shape) != len(ishape):
            raise RuntimeError("torch.take_along_dim(): input and indices should have the "
                               f"same number of dimensions, but got {len(shape)} dimensions "
                               f"for input, and {len(ishape)} dimensions for indices")
        d = _dim(dim, len(shape))
        a = list(shape)
        b = list(ishape)
        a[d] = b[d] = 1
        common = list(_broadcast(tuple(a), tuple(b)))
        src = self.expand(*common[:d], shape[d], *common[d + 1:])
        idx = indices.expand(*common[:d], ishape[d], *common[d + 1:])
        return src.gather(d, idx)

    def msort(self):
        """The values sorted along dim 0."""
        return self.sort(0)[0]
