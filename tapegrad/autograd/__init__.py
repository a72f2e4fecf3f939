"""``tg.autograd``: PyTorch's ``torch.autograd`` names (the engine is ``tapegrad.engine``)."""
from ..engine import backward, grad  # noqa: F401
from ..gradcheck import GradcheckError, gradcheck  # noqa: F401
from ..grad_mode import (detect_anomaly, enable_grad, no_grad,  # noqa: F401
                         set_detect_anomaly, set_grad_enabled)
from .variable import Variable  # noqa: F401
from .function import Function, FunctionCtx, once_differentiable  # noqa: F401
from . import functional  # noqa: F401
from . import profiler  # noqa: F401
