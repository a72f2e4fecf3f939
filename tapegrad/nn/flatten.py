"""``Flatten``: dims start_dim..end_dim merged into one (by default all but the batch dim);
``Unflatten``: one dim split into ``unflattened_size``."""
import math

from .module import Module


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def unflatten(input, dim, sizes):
    """``input.unflatten(dim, sizes)``: dim replaced by ``sizes`` (one of them may be -1,
    inferred), as a reshape (a view, ``ViewBackward0``)."""
    from ..shapes import _dim
    d = _dim(dim, input.ndim)
    size = input.shape[d]
    sizes = list(sizes)
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if (sizes.count(-1) == 0 and known != size) or \
            (sizes.count(-1) == 1 and (known == 0 or size % known)):
        raise RuntimeError(f"unflatten: Provided sizes {sizes} don't multiply up to the size "
                           f"of dim {dim} ({size}) in the input tensor")
    shape = list(input.shape)
    return input.reshape(*shape[:d], *sizes, *shape[d + 1:])


class Unflatten(Module):
    """Splits dim ``dim`` of the input into ``unflattened_size`` (a tuple or list of ints;
    PyTorch's errors for anything else)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self._require_tuple_int(unflattened_size)
        self.dim = dim
        self.unflattened_size = unflattened_size

    @staticmethod
    def _require_tuple_int(input):
        if isinstance(input, (tuple, list)):
            for idx, elem in enumerate(input):
                if not isinstance(elem, int):
                    raise TypeError("unflattened_size must be tuple of ints, but found element "
                                    f"of type {type(elem).__name__} at pos {idx}")
            return
        raise TypeError("unflattened_size must be a tuple of ints, but found type "
                        f"{type(input).__name__}")

    def forward(self, input):
        return unflatten(input, self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
