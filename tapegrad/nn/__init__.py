"""``tg.nn``: modules, parameters, layers, activations and losses, as ``torch.nn``."""
from . import functional, init, utils
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .dropout import Dropout
from .flatten import Flatten
from .linear import Bilinear, Identity, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss,
                   NLLLoss, SmoothL1Loss)
from .module import Module
from .parameter import Parameter
from .sparse import Embedding

__all__ = ["functional", "init", "utils", "Module", "Parameter", "Linear", "Bilinear",
           "Identity", "Flatten", "Dropout", "Embedding", "Sequential", "ModuleList",
           "ModuleDict", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "Softplus", "Softmax",
           "LogSoftmax", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss",
           "NLLLoss", "BCELoss", "BCEWithLogitsLoss"]
