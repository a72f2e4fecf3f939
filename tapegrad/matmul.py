"""Matrix products: ``mm``, ``bmm``, ``dot``, ``mv`` and ``matmul`` (``@``), with PyTorch's
shape checks and words."""
import math

import numpy as np

from . import dtypes as D
from .base import TensorBase as Tensor
from .conversion import must_be_tensor
from .face import _as_tensor, _product, _shape
from .ops import BMM, DOT, MM, MV
from .quiet import quietly
from .shapes import _broadcast


def _matmul(a, b):
    """np.matmul of a and b as C-ordered arrays (a transposed view is copied first): the
    product a tg.compile replay computes with the same loop (replay_kernels._product) on
    values it holds C-ordered, so that the two agree to the bit; overflow is inf, silently."""
    return quietly(np.matmul, np.asarray(a, order="C"), np.asarray(b, order="C"))


class MatmulMethods:
    """The matrix-product methods of Tensor."""
    __slots__ = ()

    def mm(self, mat2):
        if not isinstance(mat2, Tensor):
            raise must_be_tensor("mm", "mat2", 1, mat2)
        va, vb = self._v, mat2._v           # (ndim inline: mm is a training step's op)
        if type(va) is float or va.ndim != 2:
            raise RuntimeError("self must be a matrix")
        if type(vb) is float or vb.ndim != 2:
            raise RuntimeError("mat2 must be a matrix")
        (n, p), (q, r) = va.shape, vb.shape
        if p != q:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({n}x{p} and "
                               f"{q}x{r})")
        return _product(MM, self, mat2, _matmul(va, vb))

    def matmul(self, other):
        """``@`` as PyTorch: dot, mv, mm, bmm, and broadcast batches of matrices."""
        other = _as_tensor(other)
        na, nb = self.ndim, other.ndim
        if na == 0 or nb == 0:
            raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they "
                               f"are {na}D and {nb}D")
        if na == 1 and nb == 1:
            return self.dot(other)
        if na == 2 and nb == 1:
            return self.mv(other)
        if na == 1 and nb == 2:
            return self.unsqueeze(0).mm(other).squeeze(0)
        if na == 2 and nb == 2:
            return self.mm(other)
        a = self.unsqueeze(0) if na == 1 else self
        b = other.unsqueeze(-1) if nb == 1 else other
        sa, sb = _shape(a), _shape(b)
        batch = _broadcast(sa[:-2], sb[:-2])
        if sa[-1] != sb[-2]:
            raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be:"
                               f" [{math.prod(batch)}, {sa[-1]}] but got: "
                               f"[{math.prod(batch)}, {sb[-2]}].")
        nbatch = math.prod(batch)
        a3 = a.expand(*batch, *sa[-2:]).reshape(nbatch, *sa[-2:])
        b3 = b.expand(*batch, *sb[-2:]).reshape(nbatch, *sb[-2:])
        out = a3.bmm(b3).reshape(*batch, sa[-2], sb[-1])
        if na == 1:
            out = out.squeeze(-2)
        if nb == 1:
            out = out.squeeze(-1)
        return out

    def bmm(self, mat2):
        if self.ndim != 3:
            raise RuntimeError("batch1 must be a 3D tensor")
        if mat2.ndim != 3:
            raise RuntimeError("batch2 must be a 3D tensor")
        (b, _, p), (b2, q, _) = self._v.shape, mat2._v.shape
        if b != b2 or p != q:
            raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be:"
                               f" [{b}, {p}] but got: [{b2}, {q}].")
        return _product(BMM, self, mat2, _matmul(self._v, mat2._v))

    def dot(self, other):
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"1D tensors expected, but got {self.ndim}D and {other.ndim}D "
                               "tensors")
        if self._dtype is not other._dtype:
            raise RuntimeError("dot : expected both vectors to have same dtype, but found "
                               f"{D.scalar_name(self._dtype)} and {D.scalar_name(other._dtype)}")
        n, m = self._v.shape[0], other._v.shape[0]
        if n != m:
            raise RuntimeError(f"inconsistent tensor size, expected tensor [{n}] and src [{m}] "
                               f"to have the same number of elements, but got {n} and {m} "
                               "elements respectively")
        return _product(DOT, self, other, np.asarray(_matmul(self._v, other._v)))

    def mv(self, vec):
        if self.ndim != 2 or vec.ndim != 1:
            raise RuntimeError(f"vector + matrix @ vector expected, got 1, {self.ndim}, "
                               f"{vec.ndim}")
        (n, p), q = self._v.shape, vec._v.shape[0]
        if p != q:
            raise RuntimeError(f"size mismatch, got input ({n}), mat ({n}x{p}), vec ({q})")
        return _product(MV, self, vec, _matmul(self._v, vec._v))
