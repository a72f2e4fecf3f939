"""``tg.optim``: optimizers and learning-rate schedulers, as ``torch.optim``.

Every update is written with tapegrad Tensor operations under ``no_grad`` (no NumPy, no
Python per element); the state (momentum buffers, running averages, step counts) is held
in tapegrad tensors."""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["lr_scheduler", "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
