"""What the generated create_graph formulas call (``_generated/formulas.py``): where(),
sign() and floordiv() on tensors, Python numbers or both, and math on constants."""
import math

import numpy as np

from .base import TensorBase
from .face import _array, _from_array, _result_dtype
from .indexing import where
from .quiet import quietly


def _where(cond, a, b):
    """a where cond holds, b elsewhere (cond a bool tensor, or a Python bool). A 0-d
    condition between Python-float scalars that both require grad or both do not picks its
    branch: the derivative of the pick is the derivative of where (1 for the branch taken,
    0 for the other), and the result stays on the scalar fast path."""
    if not isinstance(cond, TensorBase):
        return a if cond else b
    if cond.ndim == 0 and _scalar(a) and _scalar(b) and _rg(a) == _rg(b):
        return a if bool(cond._v) else b
    # (a branch that requires grad where the other does not: a recorded where, whose
    # result requires grad whichever it picks, as PyTorch's)
    return where(cond, a, b)


def _rg(v):
    return isinstance(v, TensorBase) and v.requires_grad


def _scalar(v):
    return type(v._v) is float if isinstance(v, TensorBase) else isinstance(v, (int, float))


def _sign(x):
    """sign(x), 0 at 0 and for NaN. Its derivative is 0, but on a tensor that requires grad
    it is recorded (SignBackward0), as PyTorch's sgn is in abs's backward: a gradient
    g * sign(x) then requires grad, and differentiating it again gives zeros, not an
    error."""
    if not isinstance(x, TensorBase):
        return float(np.sign(x))
    if x.requires_grad:
        return x.sign()
    return (x > 0).to(x.dtype) - (x < 0).to(x.dtype)


def _floordiv(x, y):
    """x // y as ATen's div(rounding_mode="floor") (NumPy's floor_divide takes the same
    steps: C's fmod, then the quotient corrected), in the operands' result dtype: a step
    function, so a constant (its derivative is 0 everywhere it has one)."""
    dt = _result_dtype(x, y)
    a, b = (_array(v) if isinstance(v, TensorBase) else v for v in (x, y))
    return _from_array(np.asarray(quietly(np.floor_divide, np.asarray(a, dt.np),
                                          np.asarray(b, dt.np))), dt)


class _cmath:
    """exp, log, sqrt, sin, cos, tanh of constants (Python numbers), with the results the
    sweep's NumPy functions give at the edges of their domains (log(0) = -inf, log(-1) =
    nan) instead of Python's ValueError."""

    @staticmethod
    def _np(f, v):
        with np.errstate(all="ignore"):
            return float(f(np.float64(v)))

    exp = staticmethod(lambda v: _cmath._np(np.exp, v))
    log = staticmethod(lambda v: math.log(v) if v > 0 else _cmath._np(np.log, v))
    sqrt = staticmethod(lambda v: math.sqrt(v) if v >= 0 else math.nan)
    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    tanh = staticmethod(math.tanh)
