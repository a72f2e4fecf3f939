"""Tensor methods beyond the core, in a mixin ``Tensor`` inherits: the legacy constructor
``tg.Tensor(...)``, ``format(t, spec)``, ``argmax``/``argmin``, ``isclose``/``allclose``/
``equal``, ``nonzero``/``argwhere``/``count_nonzero``, ``unique``, ``stride``/
``element_size``/``itemsize``/``nbytes``, ``cpu``/``cuda``, ``new_*``. None of them records
on the tape: their results carry no gradient, as in PyTorch.

``face.Tensor`` is the class users see (tensor.py sets it), read at call time.
"""
import numpy as np

from . import dtypes as D
from . import face as _T
from .base import TensorBase
from .device import check
from .factory import empty, full, ones, tensor, zeros
from .grad_mode import is_grad_enabled, no_grad
from .legacy import new
from .shapes import _broadcast, _dim
from .state import thread_state

# PyTorch's ScalarType names, as its messages print them
_SCALAR_TYPE = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


class TensorAPI:
    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        """``tg.Tensor(data)`` / ``tg.Tensor(2, 3)``: PyTorch's legacy constructor (legacy.py).
        A subclass is made as before this mixin existed: its own __init__ fills it in."""
        if cls is not _T.Tensor:
            return object.__new__(cls)
        return new(None, args, kwargs)

    def __format__(self, spec):
        """A 0-d tensor formats as its Python number (``f"{loss:.4f}"``), as in PyTorch."""
        if self.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    # ----- where the extreme is ------------------------------------------------------
    def argmax(self, dim=None, keepdim=False):
        """The index of the largest element (of the flattened tensor, or along ``dim``);
        the first one on ties, NaN counting as the largest."""
        return _arg_extreme(self, dim, keepdim, np.argmax, "argmax")

    def argmin(self, dim=None, keepdim=False):
        return _arg_extreme(self, dim, keepdim, np.argmin, "argmin")

    # ----- comparing tensors ---------------------------------------------------------
    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """|self - other| <= atol + rtol |other| elementwise (equal infinities are close)."""
        return _T._new(_close(self, other, rtol, atol, equal_nan, "isclose"), D.bool_)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return bool(_close(self, other, rtol, atol, equal_nan, "allclose").all())

    def equal(self, other):
        """True when both have the same shape and the same values."""
        if not isinstance(other, TensorBase):
            raise TypeError(f"equal(): argument 'other' (position 2) must be Tensor, not "
                            f"{type(other).__name__}")
        a, b = _values(self), _values(other)
        return a.shape == b.shape and bool(np.array_equal(a, b))

    # ----- where the nonzero elements are, distinct values ---------------------------
    def nonzero(self, *, as_tuple=False):
        """The indices of the nonzero elements: an (n, ndim) int64 tensor, or with
        ``as_tuple`` one 1-D tensor per dim (a 0-d tensor counts as 1-D)."""
        v = _values(self)
        where = np.nonzero(v.reshape(-1) if v.ndim == 0 else v)
        if as_tuple:
            return tuple(_T._new(np.ascontiguousarray(w, np.int64), D.int64) for w in where)
        found = np.stack(where, 1) if v.ndim else np.empty((len(where[0]), 0), np.int64)
        return _T._new(found.astype(np.int64), D.int64)

    def argwhere(self):
        return self.nonzero()

    def count_nonzero(self, dim=None):
        v = _values(self)
        axis = None if dim is None else tuple(_dim(d, v.ndim) for d in (
            (dim,) if isinstance(dim, (int, np.integer)) else dim))
        return _T._new(np.asarray(np.count_nonzero(v, axis=axis), np.int64), D.int64)

    def unique(self, sorted=True, return_inverse=False, return_counts=False,  # noqa: A002
               dim=None):
        """The distinct values in ascending order (along ``dim``: the distinct slices),
        with the index of each element's value and each value's count if asked."""
        v = _values(self)
        if dim is not None:
            dim = _dim(dim, v.ndim)
        values, inverse, counts = np.unique(v, return_inverse=True, return_counts=True,
                                            axis=dim)
        out = [_T._new(values, self.dtype)]
        if return_inverse:
            shape = v.shape if dim is None else (v.shape[dim],)
            out.append(_T._new(inverse.reshape(shape).astype(np.int64), D.int64))
        if return_counts:
            out.append(_T._new(counts.astype(np.int64), D.int64))
        return out[0] if len(out) == 1 else tuple(out)

    # ----- memory --------------------------------------------------------------------
    def stride(self, dim=None):
        """Steps between neighbours along each dim, in elements (0 along an expanded dim)."""
        v = _T._array(self)                 # (the array itself: its layout)
        steps = tuple(s // v.itemsize for s in v.strides) if v.ndim else ()
        return steps if dim is None else steps[_dim(dim, v.ndim)]

    def element_size(self):
        return self.dtype.itemsize

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.numel() * self.dtype.itemsize

    # ----- devices: the CPU only -----------------------------------------------------
    def cpu(self):
        return self

    def cuda(self, device=None, non_blocking=False):
        check("cuda" if device is None else device)     # raises: there is no CUDA device
        return self

    @property
    def is_cuda(self):
        return False

    @property
    def is_cpu(self):
        return True

    # ----- new tensors like this one -------------------------------------------------
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        return tensor(data, dtype=dtype or self.dtype, device=device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return zeros(*size, dtype=dtype or self.dtype, device=device,
                     requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return ones(*size, dtype=dtype or self.dtype, device=device,
                    requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return empty(*size, dtype=dtype or self.dtype, device=device,
                     requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return full(size, fill_value, dtype=dtype or self.dtype, device=device,
                    requires_grad=requires_grad)


def is_tensor(obj):
    """``tg.is_tensor(x)``: True for a tapegrad tensor."""
    return isinstance(obj, TensorBase)


def write_out(name, out, result):
    """PyTorch's ``out=`` argument of ``tg.<name>``: the result written into ``out`` (which
    is resized to the result's shape, keeping its dtype); no gradient goes through it."""
    if is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                           "differentiation, but one of the arguments requires grad.")
    if result.dtype.category > out.dtype.category:
        raise RuntimeError(f"result type {_SCALAR_TYPE[result.dtype.name]} can't be cast to the "
                           f"desired output type {_SCALAR_TYPE[out.dtype.name]}")
    with no_grad():
        if tuple(out.shape) == tuple(result.shape):
            out.copy_(result)
        else:
            out.data = result.to(out.dtype, copy=True)
    return out


def _values(t):
    """t's values as a NumPy array. Inside a tg.compile recording the result depends on
    them, so they become a guard (a replay with other values records again)."""
    v = np.array(_T._array(t))
    rec = thread_state().recording
    if rec is not None:
        rec.guards.append((_T._slot(t, rec.tape), "array", v))
    return v


def _arg_extreme(x, dim, keepdim, find, name):
    if x.dtype is D.bool_:
        raise RuntimeError(f"{name}(): does not support bool input")
    v = _values(x)
    if dim is None:
        if v.size == 0:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                             "input.numel() == 0.")
        i = np.asarray(find(v))
        if keepdim:
            i = i.reshape((1,) * v.ndim)
    else:
        d = _dim(dim, v.ndim)
        if v.ndim == 0:
            i = np.zeros((), np.int64)
        elif v.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        else:
            i = find(v, axis=d, keepdims=bool(keepdim))
    return _T._new(np.asarray(i, np.int64), D.int64)


def _close(a, b, rtol, atol, equal_nan, name):
    """PyTorch's isclose as a NumPy bool array: a == b, or |a - b| finite and at most
    atol + |rtol b|, computed in the tensors' dtype (bool and integers: the default float)."""
    if not isinstance(b, TensorBase):
        raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not "
                        f"{type(b).__name__}")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{_SCALAR_TYPE[a.dtype.name]} did not match "
                           f"{_SCALAR_TYPE[b.dtype.name]}")
    for what, tol in (("rtol", rtol), ("atol", atol)):
        if tol < 0:
            raise RuntimeError(f"{what} must be greater than or equal to zero, but got {tol:g}")
    _broadcast(tuple(a.shape), tuple(b.shape))
    va, vb = _values(a), _values(b)
    close = np.asarray(va == vb)
    floating = a.dtype.is_floating_point
    if equal_nan and floating:
        close = close | (np.isnan(va) & np.isnan(vb))
    if rtol or atol:
        ft = va.dtype.type if floating else D.DEFAULT_FLOAT.np.type
        ca, cb = va.astype(ft), vb.astype(ft)
        with np.errstate(all="ignore"):
            allowed = ft(atol) + np.abs(ft(rtol) * cb)
            actual = np.abs(ca - cb)
        close = close | (np.isfinite(actual) & (actual <= allowed))
    return close
