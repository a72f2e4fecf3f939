"""``tg.nn``: modules, parameters, layers, activations, normalisations and losses, as
``torch.nn``."""
from . import functional, init, utils
from .activation import (CELU, ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU,
                         LogSigmoid, LogSoftmax, Mish, PReLU, ReLU, ReLU6, Sigmoid, SiLU,
                         Softmax, Softmin, Softplus, Softsign, Tanh, Tanhshrink)
from .container import ModuleDict, ModuleList, Sequential
from .distance import CosineSimilarity, PairwiseDistance
from .dropout import Dropout
from .flatten import Flatten, Unflatten
from .linear import Bilinear, Identity, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, GaussianNLLLoss, HuberLoss,
                   KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, NLLLoss, PoissonNLLLoss,
                   SmoothL1Loss, SoftMarginLoss)
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .parameter import Parameter
from .sparse import Embedding

__all__ = ["functional", "init", "utils", "Module", "Parameter", "Linear", "Bilinear",
           "Identity", "Flatten", "Unflatten", "Dropout", "Embedding", "Sequential",
           "ModuleList", "ModuleDict", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU",
           "Softplus", "Softmax", "LogSoftmax", "SiLU", "Mish", "ELU", "SELU", "CELU",
           "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish", "LogSigmoid", "Softsign",
           "Tanhshrink", "Softmin", "PReLU", "LayerNorm", "BatchNorm1d", "BatchNorm2d",
           "GroupNorm", "CosineSimilarity", "PairwiseDistance", "MSELoss", "L1Loss",
           "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss", "MarginRankingLoss", "SoftMarginLoss",
           "GaussianNLLLoss", "PoissonNLLLoss"]
