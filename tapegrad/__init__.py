"""tapegrad: PyTorch-style reverse-mode autodiff on a flat typed tape with a Numba sweep."""
from . import autograd, cuda, func, graph, indexing, linalg, nn, optim, reductions
from .device import device
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .grad_mode import no_grad as inference_mode   # (no tensors of a kind of their own)
from .dtypes import (bool_ as bool, dtype, float32, float64, int8, int16, int32,  # noqa: A004
                     int64, uint8)
from .factory import (arange, as_tensor, default_generator, empty, empty_like, eye, from_numpy,
                      full, full_like, initial_seed, linspace, seed,
                      logspace, manual_seed, ones, ones_like, rand, rand_like, randint, randn,
                      randn_like, randperm, tensor, zeros, zeros_like)
from .einsum import einsum
from .generator import Generator
from .indexing import cat, concat, concatenate, stack, where
from .stacking import (atleast_1d, atleast_2d, atleast_3d, broadcast_shapes,
                       broadcast_tensors, cartesian_prod, column_stack, dstack, hstack,
                       meshgrid, row_stack, vstack)
from .printing import set_printoptions
from .counting import (bincount, bucketize, histc, isin, isneginf, isposinf, searchsorted,
                       signbit, tril_indices, triu_indices)
from .reductions import std_mean, var_mean
from .reductions import vector_norm
from .replay import compile  # noqa: A004  (tg.compile, like torch.compile)
from .legacy import BoolTensor, ByteTensor, DoubleTensor, FloatTensor, IntTensor, LongTensor
from .serialization import load, save
from .tensor import Size, Tensor
from . import functions as _functions
from .tensor_api import is_tensor

float = float32      # noqa: A001  PyTorch's aliases
double = float64
long = int64
int = int32          # noqa: A001

__version__ = "0.1.0"


from ._generated.methods import NAMES as _UNARY_NAMES  # noqa: E402


# the elementwise ones come from the op table (_generated/methods.py)
for _name in _UNARY_NAMES + tuple(
        "add sub mul div pow mm matmul clamp clip sum mean reshape t unsqueeze squeeze "
        "permute square maximum minimum max min amax amin prod var std norm logsumexp softmax "
        "log_softmax transpose expand flatten index_select gather clone bmm dot mv argmax "
        "argmin allclose isclose equal numel eq ne lt le gt ge logical_and logical_or "
        "logical_xor logical_not isnan isinf isfinite all any masked_fill "
        "narrow split chunk tril triu outer cumsum cumprod sort argsort topk diag "
        "addmm flip roll select unbind movedim moveaxis swapaxes swapdims tile diff trace "
        "addcmul addcdiv lerp nansum nanmean masked_select nonzero argwhere count_nonzero "
        "unique broadcast_to unflatten tensor_split hsplit vsplit dsplit take_along_dim "
        "msort scatter scatter_add index_add index_copy index_fill diagonal rot90 aminmax".split()):
    globals()[_name] = _functions.function(_name)
del _name


def __getattr__(name):
    """``tg.utils`` (``tg.utils.data``'s datasets and ``DataLoader``) is imported on first
    use: importing it costs ~10 ms, which ``import tapegrad`` does not pay."""
    if name == "utils":
        import importlib
        return importlib.import_module(".utils", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
