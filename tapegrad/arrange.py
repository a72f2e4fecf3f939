"""Tensor methods that rearrange elements, composed from the recorded primitives (so their
gradients, replays and errors are those): ``flip``, ``roll``, ``select``, ``unbind``,
``movedim``/``moveaxis``, ``swapaxes``/``swapdims``, ``tile``, ``diff``, ``trace``, ``rot90``.

Their nodes are the primitives' (``flip``, ``roll`` and ``rot90`` record ``IndexSelectBackward0``,
``trace`` a ``SumBackward0`` over an ``IndexBackward0``), as for composite.py's methods.
"""
import numpy as np

from .face import _shape
from .factory import tensor
from .shapes import _dim


def _dims(dims, nd, name):
    """``dims`` (an int or a sequence) as distinct dims in range."""
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    out = [_dim(d, nd) for d in dims]
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {out[0]} appears multiple times in the list of dims"
                           if name == "flip" else f"{name}: repeated dim")
    return out


def _along(t, d, positions):
    """t's elements at ``positions`` along dim d (index_select)."""
    return t.index_select(d, tensor(np.asarray(positions, np.int64)))


class ArrangeMethods:
    """The rearranging methods of Tensor (see the module docstring)."""
    __slots__ = ()

    def flip(self, *dims):
        """The elements in reverse order along each of ``dims``."""
        if len(dims) == 1 and not isinstance(dims[0], (int, np.integer)):
            dims = dims[0]
        shape = _shape(self)
        dims = _dims(dims, len(shape), "flip")
        if not shape or not dims:           # nothing to reverse: a new tensor all the same,
            return self.clone()             # as PyTorch's (never self itself)
        out = self
        for d in dims:
            out = _along(out, d, np.arange(shape[d] - 1, -1, -1))
        return out

    def roll(self, shifts, dims=None):
        """Elements shifted by ``shifts`` along ``dims``, those pushed off the end coming
        back at the start; without dims, over the flattened tensor, then its shape back."""
        if dims is None:
            if not isinstance(shifts, (int, np.integer)) and len(shifts) != 1:
                raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                                   "dims:0")
            s = shifts if isinstance(shifts, (int, np.integer)) else shifts[0]
            return self.flatten().roll(s, 0).reshape(_shape(self))
        shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
        dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                               f"dims:{len(dims)}")
        out = self
        for s, d in zip(shifts, dims):
            d = _dim(d, len(_shape(self)))
            n = _shape(self)[d]
            if n:
                out = _along(out, d, (np.arange(n) - s) % n)     # y[i] = x[(i - s) mod n]
        return out

    def select(self, dim, index):
        """The slice at ``index`` along ``dim``, that dim removed (a basic index)."""
        shape = _shape(self)
        if not shape:
            raise IndexError("select() cannot be applied to a 0-dim tensor.")
        d = _dim(dim, len(shape))
        if not -shape[d] <= index < shape[d]:
            raise IndexError(f"select(): index {index} out of range for tensor of size "
                             f"{list(shape)} at dimension {d}")
        return self[(slice(None),) * d + (index,)]

    def unbind(self, dim=0):
        """The slices along ``dim``, each with that dim removed."""
        shape = _shape(self)
        if not shape:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        d = _dim(dim, len(shape))
        return tuple(self.select(d, i) for i in range(shape[d]))

    def movedim(self, source, destination):
        """Dims ``source`` moved to positions ``destination``, the others in order."""
        nd = len(_shape(self))
        src = _dims(source, nd, "movedim")
        dst = _dims(destination, nd, "movedim")
        if len(src) != len(dst):
            raise RuntimeError("movedim: Invalid source or destination dims: source "
                               f"({list(src)} dims) should contain the same number of dims "
                               f"as destination ({list(dst)} dims)")
        order = [d for d in range(nd) if d not in src]
        for s, t in sorted(zip(dst, src)):
            order.insert(s, t)
        return self.permute(*order)

    moveaxis = movedim

    def swapaxes(self, axis0, axis1):
        return self.transpose(axis0, axis1)

    swapdims = swapaxes

    def tile(self, *dims):
        """``repeat`` with ones prepended to ``dims`` when it has fewer than self's dims."""
        if len(dims) == 1 and not isinstance(dims[0], (int, np.integer)):
            dims = tuple(dims[0])
        dims = (1,) * (len(_shape(self)) - len(dims)) + tuple(dims)
        return self.repeat(*dims)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along ``dim``: out[i] = x[i + 1] - x[i], n times,
        of self with ``prepend`` and ``append`` put at either end first."""
        from .indexing import cat
        shape = _shape(self)
        if not shape:
            raise RuntimeError("diff expects input to be at least one-dimensional")
        d = _dim(dim, len(shape))
        parts = [p for p in (prepend, self, append) if p is not None]
        for p in parts:
            if p.ndim != len(shape):
                raise RuntimeError("diff expects prepend or append to be the same dimension "
                                   "as input")
        out = cat(parts, d) if len(parts) > 1 else self
        for _ in range(n):
            m = _shape(out)[d]
            if m == 0:
                break
            out = out.narrow(d, 1, m - 1) - out.narrow(d, 0, m - 1)
        return out

    def rot90(self, k=1, dims=(0, 1)):
        """Rotated by 90 degrees ``k`` times in the plane of ``dims``, from the first dim
        towards the second: k = 1 is a flip of dims[1], then the two dims swapped."""
        dims = list(dims)
        nd = len(_shape(self))
        if len(dims) != 2:
            raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
        if nd < 2:
            raise RuntimeError(f"expected total dims >= 2, but got total dims = {nd}")
        d0, d1 = _dim(dims[0], nd), _dim(dims[1], nd)
        if d0 == d1:
            raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} "
                               f"and dim1 = {d1}")
        k %= 4
        if k == 1:
            return self.flip(d1).transpose(d0, d1)
        if k == 2:
            return self.flip(d0, d1)
        if k == 3:
            return self.flip(d0).transpose(d0, d1)
        return self.clone()

    def trace(self):
        """The sum of the main diagonal of a matrix."""
        if len(_shape(self)) != 2:
            raise RuntimeError("trace: expected a matrix, but got tensor with dim "
                               f"{len(_shape(self))}")
        return self.diag().sum()
