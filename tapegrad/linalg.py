"""``tg.linalg``: vector and matrix norms, built on tapegrad's reductions, so their gradients
come from ops the sweep already knows (node names as PyTorch's: a vector norm is
``LinalgVectorNormBackward0``, the matrix 1- and inf-norms end in ``AmaxBackward0`` or
``AminBackward0``, since PyTorch composes them the same way).

Matrix norms that need singular values (ord 2, -2 and 'nuc') are not available.
"""
import math

import numpy as np

from .ops import NORM
from .reductions import _lane_op
from .reductions import vector_norm as _positive_norm
from .face import _from_array, _shape
from .shapes import _dim
from .tensor_api import _SCALAR_TYPE, _values


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """(sum |x_i|^ord)^(1/ord) over ``dim`` (all elements by default); ord inf: max |x_i|,
    -inf: min |x_i|, 0: the number of nonzero elements."""
    if isinstance(ord, bool) or not isinstance(ord, (int, float, np.number)):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, "
                        f"not {type(ord).__name__}")
    if not x.dtype.is_floating_point:
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {_SCALAR_TYPE[x.dtype.name]}")
    if dtype is not None:
        from . import dtypes as D
        dt = D.as_dtype(dtype)
        if not dt.is_floating_point:
            raise RuntimeError("linalg.vector_norm: dtype should be floating point or complex, "
                               f"but got {_SCALAR_TYPE[dt.name]}")
        x = x.to(dt)
    dims = _dims(x, dim)
    ord = float(ord)
    if math.isinf(ord) and x.numel() == 0:
        raise RuntimeError("linalg.vector_norm cannot compute the inf norm on an empty tensor "
                           "because the operation does not have an identity")
    if ord > 0 or math.isinf(ord):
        return _positive_norm(x, ord, dims, keepdim)
    a = np.abs(_values(x).astype(np.float64))
    if ord == 0:        # the number of nonzero elements: its gradient is zero
        count = (a != 0).sum(axis=dims, keepdims=keepdim).astype(x.dtype.np)
        return (x * 0.0).sum(dims, keepdim) + _from_array(count, x.dtype)
    with np.errstate(all="ignore"):     # a zero element makes the norm 0 (|0|^ord = inf)
        value = (a ** ord).sum(axis=dims, keepdims=True) ** (1.0 / ord)
    return _lane_op(NORM, x, dims, value, c=ord, keepdim=keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):  # noqa: A002
    """Frobenius ('fro'), max column sum (1), max row sum (inf), and the minima -1, -inf,
    over the two dims ``dim``."""
    if isinstance(dim, int):
        raise TypeError("linalg_matrix_norm() received an invalid combination of arguments - "
                        "got (Tensor, dim=int), but expected one of: (Tensor input, Number "
                        "ord, tuple of ints dim = {-2,-1}, bool keepdim = False, *, "
                        "dtype = None); (Tensor input, str ord = \"fro\", tuple of ints dim "
                        "= {-2,-1}, bool keepdim = False, *, dtype = None)")
    return _matrix_norm(A, ord, tuple(dim), keepdim, dtype)


def _matrix_norm(A, ord, dim, keepdim, dtype):  # noqa: A002
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 "
                           "dimensions.")
    if len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {len(dim)}")
    d0, d1 = (_dim(d, A.ndim) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, "
                           f"{dim[1]})")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim, dtype=dtype)
    if ord == "nuc" or ord in (2, -2):
        raise NotImplementedError(f"tapegrad: linalg.matrix_norm with ord={ord!r} needs "
                                  "singular values, which tapegrad does not compute")
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {_order(ord)} not supported.")
    # the 1-norm is the largest column sum of |A|; the inf-norm, the 1-norm of A^T
    if math.isinf(ord):
        d0, d1 = d1, d0
    if not keepdim and d0 < d1:
        d1 -= 1                     # the first reduction removed a dim before d1
    sums = vector_norm(A, 1, d0, keepdim, dtype=dtype)
    return sums.amax(d1, keepdim) if ord > 0 else sums.amin(d1, keepdim)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """A vector norm over one dim (or all elements when neither ord nor dim is given), a
    matrix norm over two, as PyTorch's ``linalg.norm`` decides."""
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if isinstance(ord, str):
            return _matrix_norm(A, ord, dims, keepdim, dtype)
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        if len(dims) == 2:
            _dims(A, dims)
            return _matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype)
        raise RuntimeError("linalg.norm: If dim is specified, it must be of length 1 or 2. "
                           f"Got {list(dims)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 2 or isinstance(ord, str):
        return _matrix_norm(A, ord, (-2, -1), keepdim, dtype)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    raise RuntimeError("linalg.norm: If dim is not specified but ord is, the input must be 1D "
                       f"or 2D. Got {A.ndim}D.")


def _dims(x, dim):
    """``dim`` as a tuple of dims in range (None: all), with PyTorch's error for repeats."""
    nd = len(_shape(x))
    if dim is None:
        return tuple(range(nd))
    dims = [_dim(d, nd) for d in ((dim,) if isinstance(dim, int) else dim)]
    for d in dims:
        if dims.count(d) > 1:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return tuple(dims)


def _order(ord):  # noqa: A002
    """An order as PyTorch's C++ prints it (3.0 as 3)."""
    if isinstance(ord, float) and ord.is_integer():
        return str(int(ord))
    return str(ord)
