"""Tensor methods beyond the core, in a mixin ``Tensor`` inherits: the legacy constructor
``tg.Tensor(...)``, ``format(t, spec)``, ``argmax``/``argmin``, ``isclose``/``allclose``/
``equal``, ``cpu``/``cuda``, ``new_*``. None of them records on the tape: their results
carry no gradient, as in PyTorch.

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
