"""``tg.autograd``: PyTorch's ``torch.autograd`` names (the engine is ``tapegrad.engine``)."""
from .. import engine
from ..gradcheck import GradcheckError, gradcheck  # noqa: F401
from ..grad_mode import (detect_anomaly, enable_grad, no_grad,  # noqa: F401
                         set_detect_anomaly, set_grad_enabled)
from .variable import Variable  # noqa: F401
from .function import Function, FunctionCtx, once_differentiable  # noqa: F401
from . import functional  # noqa: F401
from . import profiler  # noqa: F401


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """PyTorch's ``torch.autograd.backward`` (the engine's, looked up at each call)."""
    return engine.backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """PyTorch's ``torch.autograd.grad`` (the engine's, looked up at each call)."""
    return engine.grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                       only_inputs, allow_unused, is_grads_batched, materialize_grads)
