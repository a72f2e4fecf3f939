"""The hand-written parts of the generated Tensor methods (``codegen.py`` writes them into
``_generated/step_methods.py``, ``math_methods.py`` and ``methods.py`` around the methods it
makes from the op table's rows): helpers the methods call, and the methods of the binary
rows (atan2, hypot, logaddexp, fmod, remainder) and of %."""

STEPS_HEAD = '''import numpy as np

from ..dtypes import bool_ as _BOOL, scalar_name as _scalar_name
from ..face import _sconst
from ..quiet import hush as _hush, unhush as _unhush

_NO_DECIMALS = object()     # x.round() (RoundBackward0), not x.round(decimals=0)


def _unsupported(kernel, dt):
    """PyTorch's error for a dtype its CPU kernel has no loop for."""
    return NotImplementedError(f'"{kernel}" not implemented for \\'{_scalar_name(dt)}\\'')


def _round_decimals(x, d):
    """x.round(decimals=d) as ATen's round_decimals kernel (and NumPy's round), in x's
    dtype: rint(x * p) / p, or rint(x / p) * p for d < 0, p = 10 ** |d| (C's pow, cast to
    the dtype: inf past its range); recorded as ROUNDDEC, its constant d."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
        raise TypeError(f"round(): argument 'decimals' must be int, not {type(d).__name__}")
    d = int(d)
    dt = x._dtype
    if not dt.is_floating_point:
        raise _unsupported("round_cpu" if d else "round_vml_cpu", dt)
    p = 10.0 ** abs(d) if abs(d) < 309 else math.inf
    v = x._v
    if type(v) is float:                        # float32: each step rounded to float32
        q = _f32_number if dt is _F32 else float
        p = q(p)
        y = q(v * p) if d >= 0 else q(v / p)
        if y - y == 0.0:
            y = math.copysign(float(round(y)), y)
        return _sconst(ROUNDDEC | SCALAR, x, float(d), q(y / p) if d >= 0 else q(y * p))
    tok = _hush()
    try:
        p = np.asarray(p, v.dtype)
        y = np.empty(v.shape, v.dtype)          # (a 0-d array stays one)
        (np.multiply if d >= 0 else np.divide)(v, p, out=y)
        np.rint(y, out=y)
        (np.divide if d >= 0 else np.multiply)(y, p, out=y)
    finally:
        _unhush(tok)
    out = _face._new(y, dt)
    tape = _face._gate(x._rg, x)
    if tape is not None:
        out._rg = True
        _face._record(ROUNDDEC, out, x, None, float(d), tape=tape)
    return out
'''

METHODS_TAIL = '''
    def atan2(self, other):
        return _atan2(self, other, "atan2")

    def arctan2(self, other):
        return _atan2(self, other, "arctan2")
'''

ATAN2 = '''

def _atan2(x, other, name):
    if not isinstance(other, TensorBase):
        raise must_be_tensor(name, "other", 1, other)
    if not (x._dtype.is_floating_point or other._dtype.is_floating_point):
        x, other = x.to(_DEFAULT), other.to(_DEFAULT)    # as PyTorch's float ops
    return binary(ATAN2, x, other)
'''

MATH_HEAD = '''import numpy as np

from ..conversion import _type_name, must_be_tensor
from ..dtypes import bool_ as _BOOL
from ..forward_base import _exp2  # noqa: F401
from ..grad_mode import is_grad_enabled
from ..quiet import quietly
from .step_methods import _unsupported
from .tables import ARRAY_F as _ARRAY_F, SCALAR_F as _SCALAR_F

_NUMBERS = (bool, int, float, np.number)


def _floats(x, other, op, name):
    """hypot, logaddexp: of two tensors (a Python number is PyTorch's TypeError) in their
    result dtype, which must be floating point (ATen has no integer loop for them; an
    integer tensor with a float one is cast to it first)."""
    if not isinstance(other, TensorBase):
        raise must_be_tensor(name, "other", 1, other)
    dt = _face._result_dtype(x, other)
    if not dt.is_floating_point:
        raise _unsupported(name + "_cpu", dt)
    return binary(op, *(t if t._dtype.is_floating_point else t.to(dt) for t in (x, other)))


def _modulo(x, other, name, op, op_number):
    """fmod and remainder: of two tensors (FmodBackward1, RemainderBackward1), or of a tensor
    and a Python number (PyTorch's Scalar overloads, of one input: FmodBackward0,
    RemainderBackward0), in the result dtype. The number is cast to it first (float32's
    fmod(x, 0.1) divides by float32(0.1)), as is an integer tensor with a float operand;
    integers keep their dtype (a zero divisor is PyTorch's error), bool has no loop."""
    number = not isinstance(other, TensorBase)
    if number and not isinstance(other, _NUMBERS):
        raise TypeError(f"{name}() received an invalid combination of arguments - got "
                        f"({_type_name(other)}), but expected one of:\\n * (Tensor other)\\n"
                        " * (Number other)")
    dt = _face._result_dtype(x, other)
    if dt is _BOOL:
        raise _unsupported(name + "_cpu", dt)
    if not dt.is_floating_point and not (other != 0 if number else bool((other != 0).all())):
        raise RuntimeError("ZeroDivisionError")     # (a tensor's test: a tg.compile guard)
    if not number:
        return binary(op, *(t if t._dtype is dt or t._dtype.is_floating_point else t.to(dt)
                            for t in (x, other)))
    if x._dtype is not dt:
        x = x.to(dt)
    c = float(other) if dt.is_floating_point else int(other)
    if dt is _F32:
        c = _f32_number(c)
    v = x._v
    if type(v) is float:
        return _face._sconst(op_number | SCALAR, x, c, _SCALAR_F[op](v, c))
    out = _face._new(np.asarray(quietly(_ARRAY_F[op], v, c), dt.np), dt)
    tape = _face._gate(x._rg, x)
    if tape is not None:
        out._rg = True
        _face._record(op_number, out, x, None, float(c), tape=tape)
    return out


def _number_remainder(number, t):
    """number % t: PyTorch's remainder(Scalar, Tensor), which has no derivative. Where it
    would record one (t requires grad, in grad mode), PyTorch's error, raised here (PyTorch
    raises it at the backward that reaches its node)."""
    if not isinstance(number, _NUMBERS):
        return NotImplemented
    if t._rg and is_grad_enabled():
        raise RuntimeError("derivative for aten::remainder is not implemented")
    dt = _face._result_dtype(number, t)
    return _modulo(_face._from_array(np.asarray(number, dt.np), dt), t, "remainder",
                   REMAINDER, REMAINDERC)
'''

MATH_TAIL = '''
    def hypot(self, other):
        return _floats(self, other, HYPOT, "hypot")

    def logaddexp(self, other):
        return _floats(self, other, LOGADDEXP, "logaddexp")

    def fmod(self, other):
        return _modulo(self, other, "fmod", FMOD, FMODC)

    def remainder(self, other):
        return _modulo(self, other, "remainder", REMAINDER, REMAINDERC)

    __mod__ = remainder

    def __rmod__(self, other):
        return _number_remainder(other, self)

    def __imod__(self, other):
        return self.remainder_(other)
'''
