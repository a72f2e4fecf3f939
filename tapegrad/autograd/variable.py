"""``tg.autograd.Variable``: PyTorch's legacy wrapper, today an alias for making a tensor.

``Variable(t, requires_grad=True)`` returns a new leaf that shares ``t``'s memory (and its
version counter), as PyTorch's does; ``isinstance(x, Variable)`` is true for every tensor.
"""
from ..tensor import Tensor


class _VariableMeta(type):
    def __instancecheck__(cls, other):
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    def __new__(cls, data=None, requires_grad=False, volatile=False):
        if data is None:
            from ..factory import empty
            return empty(0).requires_grad_(requires_grad)
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        return data.detach().requires_grad_(requires_grad)
