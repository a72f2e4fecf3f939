"""Shapes: broadcasting, strides, dims and sizes, with PyTorch's errors (no tensors here)."""
import math

import numpy as np

_int = int


def _broadcast(sa, sb):
    """The broadcast shape of two shapes, with PyTorch's error."""
    n = max(len(sa), len(sb))
    out = [0] * n
    for i in range(n - 1, -1, -1):          # from the right, as PyTorch reports
        x = sa[i - n + len(sa)] if i - n + len(sa) >= 0 else 1
        y = sb[i - n + len(sb)] if i - n + len(sb) >= 0 else 1
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b "
                               f"({y}) at non-singleton dimension {i}")
        out[i] = y if x == 1 else x
    return tuple(out)


def _cstrides(shape):
    """Element strides of a C-contiguous array of ``shape``."""
    st = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        st[d] = st[d + 1] * shape[d + 1]
    return st


def _dim(d, nd):
    """A dimension index wrapped into range, with PyTorch's IndexError."""
    lo, hi = (-nd, nd - 1) if nd > 0 else (-1, 0)
    if not isinstance(d, (_int, np.integer)) or d < lo or d > hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], "
                         f"but got {d})")
    return d % nd if nd > 0 else 0


def _sizes(size):
    """``ones(2, 3)``, ``ones((2, 3))`` and ``ones([2, 3])`` all mean shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(_int(s) for s in size)


def _reduced_dims(shape, dim):
    """The sorted dims a reduction over ``dim`` (None: all; an int or a tuple) covers."""
    nd = len(shape)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(nd))
    dims = {_dim(d, nd) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
    return tuple(sorted(dims)) if nd else ()    # a 0-d tensor's dim 0 (or -1) is itself


def _lane_aux(shape, dims):
    """The map of a reduction over ``dims`` for the sweep: walking the input's shape, the
    offset of each element's lane in the keepdim-shaped result (stride 0 on ``dims``)."""
    keep = [1 if d in dims else s for d, s in enumerate(shape)]
    kst = _cstrides(keep)
    return (0, tuple(shape), tuple(0 if d in dims else kst[d] for d in range(len(shape))))


class Size(tuple):
    """A tensor's shape: a tuple that prints as PyTorch's ``torch.Size``."""

    def __repr__(self):
        return f"tapegrad.Size({list(self)})"

    def numel(self):
        return math.prod(self)
