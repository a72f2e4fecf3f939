"""The Python face: ``Tensor``, the class users see: a tensor's data (``face.TensorBase``)
with its methods, gathered from the modules that implement them, and its operators,
conversions and printing. PyTorch's names and errors throughout."""
import math

import numpy as np

from . import dtypes as D
from . import face
from ._generated.methods import UnaryMethods
from ._generated.operators import ScalarOperators
from .arrange import ArrangeMethods
from .stacking import StackingMethods
from .scattering import ScatteringMethods
from .counting import CountingMethods, int_power
from .composite import CompositeMethods
from .device import CPU, to_args
from .face import (S_POWC, TensorBase, _array, _as_tensor, _binary, _from_array, _guard,
                   _is_num, _new, _record, _recorded_here, _round, _sconst, _shape, _tracks,
                   _unary)
from .grads import AutogradMethods
from .indexing import IndexingMethods
from .inplace import InPlaceMethods, scaled
from .matmul import MatmulMethods
from .quiet import quietly
from ._generated.tables import SCALAR_F as _SCALAR_F
from .ops import (ADD, CAST, CASTNG, CLAMP, CLONE, DIV, EQ, GE, GT, LE, LT, MAXIMUM, MINIMUM, MUL, NE, POW, POWC, RECIP, RPOW, SUB)
from .reductions import ReductionMethods
from .shapes import Size, _broadcast, _dim  # noqa: F401  (tg.Size)
from .state import recording_active, thread_state
from .tensor_api import TensorAPI
from .views import ViewMethods

_float = float
_int = int


class Tensor(ScalarOperators, UnaryMethods, ViewMethods, InPlaceMethods, MatmulMethods, ReductionMethods,
             IndexingMethods, AutogradMethods, TensorAPI, CompositeMethods, ArrangeMethods,
             StackingMethods, ScatteringMethods, CountingMethods, TensorBase):
    """A multi-dimensional array that records the operations on it for ``backward()``."""
    __slots__ = ()

    @property
    def shape(self):
        return Size(_shape(self))

    def size(self, dim=None):
        s = _shape(self)
        return Size(s) if dim is None else s[_dim(dim, len(s))]

    @property
    def dtype(self):
        return self._dtype

    @property
    def ndim(self):
        return 0 if type(self._v) is _float else self._v.ndim

    def dim(self):
        return self.ndim

    def numel(self):
        return 1 if type(self._v) is _float else self._v.size

    @property
    def device(self):
        return CPU

    def is_floating_point(self):
        return self._dtype.is_floating_point

    def item(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError(f"a Tensor with {n} elements cannot be converted to Scalar")
        v = self._v
        v = v if type(v) is _float else v.reshape(()).item()
        if recording_active():
            _guard(self, "array", np.asarray(v))
        return v

    def tolist(self):
        if recording_active():
            _guard(self, "array", np.array(_array(self)))
        return _array(self).tolist()

    def numpy(self, *, force=False):
        if force:
            return self.detach().numpy()
        if self._rg and not _recorded_here(self):
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if recording_active():
            _guard(self, "array", np.array(_array(self)))
        return _array(self)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __float__(self):
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return _float(self.item())

    def __int__(self):
        return _int(self.item())

    def __index__(self):
        if self._dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return _int(self.item())

    def __bool__(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._v.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        from .graph import class_name
        from .printing import format_tensor
        suffix = []
        if self._tape is not None:
            suffix.append(f"grad_fn=<{class_name(self.grad_fn)}>")
        elif self._rg:
            suffix.append("requires_grad=True")
        dt = self._dtype
        default = dt is D.float32 or dt is D.int64 or dt is D.bool_
        return format_tensor(_array(self), None if default else dt.name, tuple(suffix))

    __str__ = __repr__

    def __rtruediv__(self, other):
        if isinstance(other, Tensor):
            return _binary(DIV, other, self)
        return _binary(MUL, _unary(RECIP, self), other)    # c / x = (1/x) * c, as PyTorch

    def __pow__(self, other):
        return self.pow(other)

    def __rpow__(self, other):
        if isinstance(other, Tensor):
            return other.pow(self)
        if not self._dtype.is_floating_point and isinstance(other, (_int, np.integer)):
            return int_power(other, self)       # an integer tensor (bool too) to an int
        return _unary(RPOW, self, _float(other))

    __neg__ = UnaryMethods.neg

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return _as_tensor(other).matmul(self)

    def add(self, other, alpha=1):
        return _binary(ADD, self, other if alpha == 1 else scaled(other, alpha))

    def sub(self, other, alpha=1):
        return _binary(SUB, self, other if alpha == 1 else scaled(other, alpha))

    def mul(self, other):
        return _binary(MUL, self, other)

    def div(self, other):
        return _binary(DIV, self, other)

    def pow(self, exponent):
        a = self._v
        if type(a) is _float and _is_num(type(exponent)) and a > 0.0:
            c = _float(exponent)        # (an overflow is inf, as PyTorch's: _SCALAR_F)
            return _sconst(S_POWC, self, c, _SCALAR_F[POW](a, c))
        if isinstance(exponent, Tensor):
            if not (self._dtype.is_floating_point or exponent._dtype.is_floating_point):
                return int_power(self, exponent)
            return _binary(POW, self, exponent)
        if isinstance(exponent, _int) and exponent < 0 and not self._dtype.is_floating_point:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return _unary(POWC, self, _float(exponent), keep_int=isinstance(exponent, _int))

    def square(self):
        return self.pow(2)

    def maximum(self, other):
        return _binary(MAXIMUM, self, _as_tensor(other))

    def minimum(self, other):
        return _binary(MINIMUM, self, _as_tensor(other))

    def clamp(self, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        lo = -math.inf if min is None else _float(min)
        hi = math.inf if max is None else _float(max)
        return _unary(CLAMP, self, lo, hi, keep_int=True)

    clip = clamp

    def _compare(self, other, f, op):
        o = other._v if isinstance(other, Tensor) else other
        if isinstance(other, Tensor):
            _broadcast(_shape(self), _shape(other))
        out = _new(np.asarray(f(_array(self), o)), D.bool_)
        if recording_active():               # a replay must recompute branch conditions
            if isinstance(other, Tensor):
                _record(op, out, self, other)
            else:
                _record(op, out, self, _float(other))
            out._rg = True                   # tracked inside the recording only
        return out

    def __eq__(self, other):
        return self._compare(other, np.equal, EQ)

    def __ne__(self, other):
        return self._compare(other, np.not_equal, NE)

    def __lt__(self, other):
        return self._compare(other, np.less, LT)

    def __le__(self, other):
        return self._compare(other, np.less_equal, LE)

    def __gt__(self, other):
        return self._compare(other, np.greater, GT)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal, GE)

    def to(self, *args, **kwargs):
        """A copy in another dtype (gradients flow back in this tensor's dtype); the device
        can only be the CPU."""
        dtype, copy = to_args(args, kwargs)
        dt = D.as_dtype(dtype) or self._dtype
        if dt is self._dtype and not copy:
            return self
        v = self._v
        if type(v) is _float and dt.is_floating_point:
            out = _new(_round(v, dt), dt)
        else:
            out = _from_array(quietly(np.array, _array(self), dt.np), dt)   # (inf, silently)
        if _tracks(self._rg):
            if dt.is_floating_point:
                out._rg = True
                _record(CAST, out, self)
            elif thread_state().recording is not None:   # replayed, but no gradient
                out._rg = True
                _record(CASTNG, out, self, None, 0.0 if dt is D.bool_ else 1.0)
        return out

    def type(self, dtype=None):
        if dtype is None:
            return "tapegrad." + {"float32": "FloatTensor", "float64": "DoubleTensor",
                                  "int64": "LongTensor", "bool": "BoolTensor"}.get(
                self._dtype.name, self._dtype.name)
        return self.to(getattr(dtype, "dtype", dtype))    # tg.FloatTensor: its dtype

    def float(self):
        return self.to(D.float32)

    def double(self):
        return self.to(D.float64)

    def long(self):
        return self.to(D.int64)

    def int(self):
        return self.to(D.int32)

    def bool(self):
        return self.to(D.bool_)

    def clone(self):
        v = self._v
        out = _new(v if type(v) is _float else v.copy(), self._dtype)
        if _tracks(self._rg):
            out._rg = True
            _record(CLONE, out, self)
        return out

    def contiguous(self):
        """self when its values are C-ordered already, else a C-ordered copy (a clone), as
        PyTorch's: never a view of another layout (an in-place change of the result of
        ``x.t().contiguous()`` must leave x alone)."""
        v = self._v
        return self if type(v) is _float or v.flags.c_contiguous else self.clone()


face.Tensor = Tensor        # face makes every tensor as one
