"""``tg.<name>(input, ...)``: the torch.* functions that are Tensor methods (``tg.exp(t)``
is ``t.exp()``), with PyTorch's ``out=`` (tensor_api.write_out).

``input`` must be a tensor, as in PyTorch, save for the six functions PyTorch also takes a
Python number first in: ``tg.add(2.0, t, alpha=3)`` is ``2.0 + 3 * t``, and ``sub``,
``mul``, ``div``, ``pow`` and ``remainder`` (``2.0 % t``, which has no derivative) alike. The number is the first operand of the same record as
``2.0 - t`` would make with the number second (face._binary takes a number on either
side; ``sub``'s a wrapped 0-d tensor, for PyTorch's node name), so ``tg.div(3.0, t)`` divides (PyTorch's DivBackward0), where the operator ``3.0 / t``
is ``reciprocal(t) * 3.0`` in both libraries. Anything else is PyTorch's TypeError.
"""
import numpy as np

from . import tensor_api
from .base import TensorBase
from .conversion import must_be_tensor
from .face import _binary, _result_dtype
from .factory import tensor
from .inplace import scaled
from .ops import ADD, DIV, MUL, SUB

# the functions whose input may be a Python number, and their op
NUMBER_FIRST = {"add": ADD, "sub": SUB, "mul": MUL, "div": DIV, "pow": None, "remainder": None}
_NUMBERS = (bool, int, float, np.number)


def function(name):
    """``tg.<name>``: t.<name>(...) of its first argument."""
    def f(input, *args, out=None, **kwargs):
        if isinstance(input, TensorBase):
            result = getattr(input, name)(*args, **kwargs)
        else:
            result = _number_first(name, input, args, kwargs)
        return result if out is None else tensor_api.write_out(name, out, result)
    f.__name__ = f.__qualname__ = name
    f.__module__ = "tapegrad"
    f.__doc__ = f"tg.{name}(t, ...) is t.{name}(...)."
    return f


def _number_first(name, x, args, kwargs):
    """tg.<name>(x, ...) for an x that is not a tensor: a number first in add, sub, mul,
    div or pow (the tensor second), else PyTorch's TypeError."""
    key = "exponent" if name == "pow" else "other"
    other = args[0] if args else kwargs.pop(key, None)
    alpha = kwargs.pop("alpha", 1) if name in ("add", "sub") else 1
    if name not in NUMBER_FIRST or not isinstance(x, _NUMBERS) or \
            not isinstance(other, TensorBase) or len(args) > 1:
        raise must_be_tensor(name, "input", 1, x)
    if kwargs:
        raise TypeError(f"{name}() got an unexpected keyword argument '{next(iter(kwargs))}'")
    if name == "pow":
        return other.__rpow__(x)            # x ** t: PowBackward2, as PyTorch's
    if name == "remainder":
        return other.__rmod__(x)
    if name == "sub":           # SubBackward0 of a wrapped number (2.0 - t is RsubBackward1)
        x = tensor(x, dtype=_result_dtype(x, other))
    return _binary(NUMBER_FIRST[name], x, other if alpha == 1 else scaled(other, alpha))
