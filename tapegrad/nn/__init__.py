"""``tg.nn``: modules, parameters, layers, activations and losses, as ``torch.nn``."""
from . import functional, init, utils  # noqa: F401
from .activation import (GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax,  # noqa: F401
                         Softplus, Tanh)
from .container import ModuleDict, ModuleList, Sequential  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .flatten import Flatten  # noqa: F401
from .linear import Bilinear, Identity, Linear  # noqa: F401
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss,  # noqa: F401
                   L1Loss, MSELoss, NLLLoss, SmoothL1Loss)
from .module import Module  # noqa: F401
from .parameter import Parameter  # noqa: F401
from .sparse import Embedding  # noqa: F401
