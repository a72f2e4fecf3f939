"""PyTorch's fused in-place updates that tapegrad's Tensor lacks, written with public Tensor
operations (called under ``no_grad``), in the order of PyTorch's CPU kernels so that
roundings agree (PyTorch's vectorized kernels fuse some multiply-adds, so the last bit may
still differ).

Scalars that follow the step count (bias corrections, step sizes) are kept as 0-d float64
tensors: their arithmetic is Python's float arithmetic (the scalar fast path), the same
roundings as PyTorch's Python floats, and a recording of ``step()`` can recompute them."""
from .. import dtypes as D
from ..factory import tensor
from ..tensor import Tensor


def scalar(x):
    """``x`` (a Python number or 0-d tensor) as a 0-d float64 tensor."""
    return x.to(D.float64) if isinstance(x, Tensor) else tensor(float(x), dtype=D.float64)


def addcmul_(t, tensor1, tensor2, value=1):
    """t += value * tensor1 * tensor2."""
    return t.add_(tensor1 * value * tensor2)


def addcdiv_(t, tensor1, tensor2, value=1):
    """t += value * tensor1 / tensor2 (the product first, as PyTorch's kernel)."""
    return t.add_(tensor1 * value / tensor2)


def lerp_(t, end, weight):
    """t += weight * (end - t), written as PyTorch writes it for weights >= 0.5:
    end - (end - t) * (1 - weight)."""
    if weight < 0.5:
        return t.add_((end - t) * weight)
    return t.copy_(end - (end - t) * (1 - weight))
