"""``nn.Parameter``: a leaf tensor that a ``Module`` registers as one of its parameters."""
from ..factory import empty
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that, assigned as a Module attribute, is registered as a parameter.

    ``Parameter(data)`` shares ``data``'s memory and version counter (it is ``data.detach()``
    seen as a Parameter) and requires grad unless ``requires_grad=False``. Operations on a
    Parameter give plain Tensors, as in PyTorch.
    """
    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        param = data.detach()       # same memory and version counter, no graph
        param.__class__ = cls       # same slots as Tensor: only the type changes
        param.requires_grad_(requires_grad)
        return param

    def __init__(self, data=None, requires_grad=True):
        pass                        # everything happens in __new__

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.detach().clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol):
        return type(self), (self.detach().clone(), self.requires_grad)
