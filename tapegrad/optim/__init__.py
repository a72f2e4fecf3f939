"""``tg.optim``: optimizers and learning-rate schedulers, as ``torch.optim``.

Every update is written with tapegrad Tensor operations under ``no_grad`` (no NumPy, no
Python per element); the state (momentum buffers, running averages, step counts) is held
in tapegrad tensors."""
from . import lr_scheduler  # noqa: F401
from .adagrad import Adagrad  # noqa: F401
from .adam import Adam  # noqa: F401
from .adamw import AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .rmsprop import RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401
