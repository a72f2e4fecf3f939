"""The activations of ``tg.nn.functional`` beyond relu/gelu/softplus: silu, mish, the ELU
family (elu, selu, celu), the hard ones (hardtanh, relu6, hardsigmoid, hardswish),
logsigmoid, softsign, tanhshrink, softmin and prelu. Re-exported by ``functional``.

Each is composed from tapegrad's recorded primitives, so its gradient, its ``tg.compile``
replay and its errors are theirs; node names are the primitives' (``MulBackward0``,
``WhereBackward0`` ...), not PyTorch's fused ``SiluBackward0``, ``EluBackward0`` ... The
compositions follow PyTorch's kernels where it shows: which side of a kink the gradient
takes (ELU's x = 0 is on the exponential side, hardtanh's ends get 0, as PyTorch's
backward kernels decide), and each value computed in the kernel's order.

``inplace=True`` writes the result into the input (``inplace.write_back``, as ``exp_``
does, when a gradient is recorded): the input is returned, its version bumped, a leaf that
requires grad refused with PyTorch's error, and the result's record becomes the input's
node. The ELU family's PyTorch backward reads its result (``EluBackward1``), so there a
later in-place change of that result makes the backward raise, here too."""
import warnings

import numpy as np

from .. import dtypes as D
from ..face import _nd
from ..grad_mode import is_grad_enabled, no_grad
from ..indexing import where
from ..inplace import write_back
from ..recording import _kept
from ..state import thread_state
from ._losses import _DTYPE_WORDS, _softplus

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
# PyTorch's hardsigmoid backward multiplies by a float constant 1/6 in every dtype: in
# float64 its gradient is 0.1666666716337204, not 1/6
_SIXTH_F32 = 0.1666666716337204


def _word(dtype):
    return _DTYPE_WORDS.get(dtype.name, dtype.name)


def _float_only(input, kernel):
    """PyTorch's fused kernels take floating inputs only."""
    if not input.is_floating_point():
        raise NotImplementedError(f'"{kernel}_cpu" not implemented for '
                                  f"'{_word(input.dtype)}'")


def _apply(input, compute, inplace, name, saves_result=False):
    """compute(input); with ``inplace``, written into input and input returned. When a
    gradient is recorded, by ``inplace.write_back`` (the in-place form ``name``: PyTorch's
    leaf error, the result's record becomes input's node; it raises inside tg.compile);
    otherwise by ``copy_`` under no_grad (which a tg.compile replay repeats).
    ``saves_result``: PyTorch's backward of the in-place form reads its result, which is
    the input, so a later in-place change of the input makes the backward raise."""
    if not inplace:
        return compute(input)
    if not records_grad(input):
        result = compute(input)
        with no_grad():
            return input.copy_(result)
    # a Python-float scalar is read from its slot, not from a copy (write_back copies an
    # array): t * 1, whose backward does not read t, keeps the composition's reads off
    # the value the write replaces (they would raise PyTorch's version error otherwise)
    out = write_back(input, lambda t: compute(t if type(t._v) is _nd else t * 1), name)
    if saves_result and out._tape is not None and out._rg and type(out._v) is _nd:
        _kept(out._tape, out, out._slot, out._slot)   # ties the record to out's version
    return out


def records_grad(t):
    """Would a change of t be recorded for a gradient (grad mode on, t requiring grad)?
    Inside a tg.compile recording every result is tracked: there, whether t would
    require grad in an eager run."""
    if not (is_grad_enabled() and t.requires_grad):
        return False
    rec = thread_state().recording
    if rec is None:
        return True
    from ..replay_record import _outside, eager_requires
    return _outside(rec, t) or eager_requires(rec, t._slot)


def _clip(x, lo, hi):
    """min(max(x, lo), hi) whose gradient is 1 strictly between lo and hi and 0 at and
    beyond them, as PyTorch's hardtanh backward ((x <= lo) | (x >= hi) ? 0 : grad)."""
    return where(x <= lo, lo, where(x >= hi, hi, x))


def _elu(input, alpha, scale, input_scale, grad_scale=None):
    """PyTorch's ELU kernel: x scale where x > 0, expm1(x input_scale) alpha scale where
    x <= 0 (so x = 0 takes the exponential side's gradient). The gradient there is
    alpha scale grad_scale exp(x grad_scale), computed as exp (Expm1Backward0's
    expm1 + 1 would lose the low digits of a small exp: at x = -30 a relative 2e-4);
    ``grad_scale`` is input_scale unless PyTorch's backward rounds it (CELU's)."""
    neg_coef = alpha * scale
    grad_scale = input_scale if grad_scale is None else grad_scale
    # the branch not taken is clamped to x <= 0: its exp stays finite, its zero gradient too
    z = input.clamp(max=0)
    value = (z.detach() * input_scale).expm1() * neg_coef
    e = (z * grad_scale if grad_scale != 1 else z).exp()
    neg = value + (e - e.detach()) * neg_coef        # e - e is 0 exactly: the value is
    pos = input * scale if scale != 1 else input     # expm1's, the gradient exp's
    return where(input > 0, pos, neg)


def _silu(x):
    """x sigmoid(x) = x / (1 + exp(-x)), PyTorch's formula, for x >= 0, and
    x exp(x) / (1 + exp(x)) for x < 0, where exp(-x) would overflow."""
    neg = x < 0
    e = where(neg, x, -x).exp()                      # exp(-|x|): d/dx = -e at x = 0
    d = e + 1
    return where(neg, x * e / d, x / d)


# ----- smooth gates ----------------------------------------------------------------------
def silu(input, inplace=False):
    """x sigmoid(x); d/dx = sigmoid(x) (1 + x (1 - sigmoid(x)))."""
    _float_only(input, "silu")
    return _apply(input, _silu, inplace, "silu_")


def mish(input, inplace=False):
    """x tanh(softplus(x)); softplus(x) = log(1 + exp(x)) taken stably (its gradient is
    sigmoid(x) everywhere), as PyTorch's kernel takes log1p(exp(x))."""
    _float_only(input, "mish")
    return _apply(input, lambda t: t * _softplus(t).tanh(), inplace, "mish_")


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x); d/dx = sigmoid(-x)."""
    _float_only(input, "log_sigmoid")
    return -_softplus(-input)


def softsign(input):
    """x / (1 + |x|), as PyTorch's Python function."""
    return input / (input.abs() + 1)


def tanhshrink(input):
    """x - tanh(x), as PyTorch's Python function."""
    return input - input.tanh()


def _softmax_dim(name, ndim, stacklevel):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along dim."""
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim, _stacklevel)
    return (-input).softmax(dim, dtype=dtype)


# ----- the ELU family --------------------------------------------------------------------
def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, alpha (exp(x) - 1) where x <= 0; d/dx there = alpha exp(x)."""
    _float_only(input, "elu")
    return _apply(input, lambda t: _elu(t, alpha, 1.0, 1.0), inplace, "elu_", True)


def selu(input, inplace=False):
    """scale elu(x, alpha) with PyTorch's alpha = 1.6733 and scale = 1.0507."""
    _float_only(input, "elu")
    return _apply(input, lambda t: _elu(t, _SELU_ALPHA, _SELU_SCALE, 1.0), inplace, "selu_",
                  True)


def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1)): PyTorch's ELU kernel with input
    scale 1 / alpha."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    _float_only(input, "elu")
    # PyTorch's CeluBackward takes 1.0 / alpha.toFloat(): alpha rounded to float first
    grad_scale = 1.0 / float(np.float32(alpha))
    return _apply(input, lambda t: _elu(t, alpha, 1.0, 1.0 / alpha, grad_scale), inplace,
                  "celu_", True)


# ----- piecewise linear ------------------------------------------------------------------
def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clamped to [min_val, max_val]; gradient 1 strictly inside, 0 at the ends."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _hardtanh(input, min_val, max_val, inplace, "hardtanh_")


def _hardtanh(input, lo, hi, inplace, name):
    if input.dtype is D.bool_:
        raise RuntimeError("Bool inputs not supported for hardtanh")
    if not input.is_floating_point():              # no gradient: PyTorch's clamp
        return _apply(input, lambda t: t.clamp(lo, hi), inplace, name)
    return _apply(input, lambda t: _clip(t, lo, hi), inplace, name)


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh(x, 0, 6) (gradient 0 at 0 and at 6, as PyTorch's)."""
    return _hardtanh(input, 0.0, 6.0, inplace, "relu6_")


def hardsigmoid(input, inplace=False):
    """min(max(x + 3, 0), 6) / 6; gradient 1/6 for -3 < x < 3 (PyTorch's float 1/6 in
    every dtype: 0.1666666716337204), 0 elsewhere."""
    _float_only(input, "hardsigmoid")

    def compute(t):
        clipped = _clip(t + 3, 0.0, 6.0)
        s = clipped * _SIXTH_F32            # s - s is 0 exactly: the value is clipped / 6,
        return clipped.detach() / 6 + (s - s.detach())      # the slope PyTorch's float 1/6
    return _apply(input, compute, inplace, "hardsigmoid_")


def hardswish(input, inplace=False):
    """x min(max(x + 3, 0), 6) / 6, in PyTorch's order; gradient 0 for x <= -3,
    x / 3 + 1/2 for -3 < x < 3, 1 for x >= 3."""
    _float_only(input, "hardswish")
    # (x (x + 3) / 6 inside: d/dx = (2x + 3) / 6 = x / 3 + 1/2; the clip's ends give
    # 0 at x = -3 and 1 at x = 3, as PyTorch's backward)
    return _apply(input, lambda t: t * _clip(t + 3, 0.0, 6.0) / 6, inplace, "hardswish_")


def prelu(input, weight):
    """x where x > 0, a x elsewhere, with ``weight`` a of one element or one per channel
    (dim 1 of input); PyTorch's checks and words."""
    if input.dtype is not weight.dtype:
        raise RuntimeError(f"prelu: Type promoting not supported. Got {_word(input.dtype)} "
                           f"and {_word(weight.dtype)}")
    nd = input.ndim
    if weight.numel() != 1:
        if nd == 0:
            raise RuntimeError("Not allow zero-dim input tensor.")
        channels = input.shape[1] if nd > 1 else 1
        if channels != weight.numel():
            raise RuntimeError("Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {weight.numel()} and channel size = "
                               f"{channels}.")
    if weight.ndim > 1:
        raise RuntimeError("prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.ndim}")
    _float_only(input, "prelu")
    if nd != weight.ndim:
        shape = [1] * nd
        if nd > 1:
            shape[1] = weight.numel()
        weight = weight.reshape(*shape)
    # x = 0 takes the a x side: gradient a to x, x (= 0) to a, as PyTorch's kernel
    return where(input > 0, input, weight * input)


__all__ = ["silu", "mish", "logsigmoid", "softsign", "tanhshrink", "softmin", "elu", "selu",
           "celu", "hardtanh", "relu6", "hardsigmoid", "hardswish", "prelu"]
