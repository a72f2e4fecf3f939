"""Normalisation: ``layer_norm``/``LayerNorm``, ``batch_norm``/``BatchNorm1d``/``BatchNorm2d``
and ``group_norm``/``GroupNorm``, as PyTorch's.

Each normalises x by the mean and the biased variance of a group of its elements,
y = (x - mean) / sqrt(var + eps), then scales and shifts it per element (layer norm) or
per channel (batch and group norm). The functions are composed from tapegrad's recorded
primitives (``mean``, ``sum``, ``rsqrt``, ``mul``, ``add``), so their gradients come from
those: the graph shows ``AddBackward0``/``MulBackward0`` ... where PyTorch has one fused
``NativeLayerNormBackward0``/``NativeBatchNormBackward0``/``NativeGroupNormBackward0``.
The output is computed in the order of PyTorch's CPU kernels: a scale and a shift per
group, y = x * scale + shift (scale = rstd * weight, shift = bias - mean * scale).

Batch norm in training also updates the running statistics in place, under ``no_grad``
(never part of the graph): running = (1 - momentum) running + momentum batch, the batch's
variance unbiased (divided by n - 1) as PyTorch's; in eval mode it normalises by them."""
import numbers

from .. import dtypes as D
from ..factory import empty, ones, tensor, zeros
from ..grad_mode import no_grad
from . import init
from .linear import _factory_dtype
from .module import Module
from .parameter import Parameter


def _check_same_dtype(input, *params):
    """PyTorch's CPU kernels take parameters of the input's dtype only."""
    for p in params:
        if p is not None and p.dtype is not input.dtype:
            if input.dtype is D.float32:
                raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type "
                                   "of Float")
            raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")


def _verify_batch_size(size):
    """PyTorch's refusal to normalise single values in training."""
    size_prods = size[0]
    for i in range(len(size) - 2):
        size_prods *= size[i + 2]
    if size_prods == 1:
        raise ValueError("Expected more than 1 value per channel when training, got input "
                         f"size {size}")


def _moments(x, dims):
    """(mean, biased variance, sum of squared deviations) of x over dims, keeping them."""
    mean = x.mean(dims, keepdim=True)
    xc = x - mean
    sq = (xc * xc).sum(dims, keepdim=True)
    n = 1
    for d in dims:
        n *= x.shape[d]
    return mean, sq / n, sq


# ----- layer norm ----------------------------------------------------------------------
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the last len(normalized_shape) dims; weight and bias (of
    normalized_shape) scale and shift each of those elements."""
    if isinstance(normalized_shape, numbers.Integral):
        raise TypeError("layer_norm(): argument 'normalized_shape' (position 2) must be "
                        f"tuple of ints, not {type(normalized_shape).__name__}")
    shape = [int(s) for s in normalized_shape]
    if not shape:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., "
                           "containing at least one element, but got normalized_shape = []")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and list(p.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but "
                               f"got {name} of shape {list(p.shape)} and normalized_shape = "
                               f"{shape}")
    k = len(shape)
    if input.ndim < k or list(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={shape}, expected input with shape "
                           f"[*{''.join(f', {s}' for s in shape)}], but got input of size"
                           f"{list(input.shape)}")
    _check_same_dtype(input, weight, bias)
    mean, var, _ = _moments(input, tuple(range(input.ndim - k, input.ndim)))
    rstd = (var + eps).rsqrt()
    # PyTorch's kernel: (x * rstd + (-rstd * mean)) * weight + bias
    out = input * rstd + (-rstd * mean)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


# ----- batch norm ----------------------------------------------------------------------
def _channel_view(t, ndim):
    """A per-channel (C,) tensor shaped to broadcast along dim 1 of an ndim-dim input."""
    return t.reshape(-1, *([1] * (ndim - 2)))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalises each channel (dim 1) over the batch and the dims after the channel:
    by the batch's statistics when ``training`` (updating the running ones, if given,
    with ``momentum``), else by ``running_mean``/``running_var``."""
    if training:
        _verify_batch_size(input.size())
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if training and (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither "
                         "be None")
    channels = input.shape[1] if input.ndim > 1 else 0
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.numel() != channels:
            raise RuntimeError(f"{name} should contain {channels} elements not {t.numel()}")
        if t is None and not training:
            raise RuntimeError(f"{name} must be defined in evaluation mode")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != channels:
            raise RuntimeError(f"{name} should contain {channels} elements not {t.numel()}")
    if input.ndim < 2:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but "
                         "got 1)")
    _check_same_dtype(input, weight, bias, running_mean, running_var)
    nd = input.ndim
    if training:
        dims = (0,) + tuple(range(2, nd))
        mean, var, sq = _moments(input, dims)
        mean, var = mean.reshape(-1), var.reshape(-1)
        if running_mean is not None:
            n = input.numel() // channels
            with no_grad():                       # the buffers: never in the graph
                running_mean.copy_(mean.detach() * momentum
                                   + running_mean * (1 - momentum))
                running_var.copy_(sq.detach().reshape(-1) / (n - 1) * momentum
                                  + running_var * (1 - momentum))
    else:
        mean, var = running_mean, running_var
    # PyTorch's kernel: alpha = rstd * weight, beta = bias - mean * alpha, y = x alpha + beta
    alpha = (var + eps).rsqrt()
    if weight is not None:
        alpha = alpha * weight
    beta = -(mean * alpha) if bias is None else bias - mean * alpha
    return input * _channel_view(alpha, nd) + _channel_view(beta, nd)


# ----- group norm ----------------------------------------------------------------------
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Splits the channels (dim 1) into num_groups groups and normalises each group of
    each sample over its channels and the dims after them; weight and bias (C,) scale
    and shift each channel."""
    if input.ndim < 2:
        raise RuntimeError("Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    _verify_batch_size([input.size(0) * input.size(1) // num_groups, num_groups]
                       + list(input.size()[2:]))
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise RuntimeError("Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.numel() != c):
            # (PyTorch's message for the bias shows the weight's shape, [0] without one)
            shown = list(weight.shape) if weight is not None else [0]
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of "
                               f"channels in input, but got {name} of shape {shown} and input "
                               f"of shape {list(input.shape)}")
    _check_same_dtype(input, weight, bias)
    x = input.reshape(n, num_groups, c // num_groups, -1)
    mean, var, _ = _moments(x, (2, 3))                    # (N, G, 1, 1)
    rstd = (var + eps).rsqrt()
    # PyTorch's kernel: scale = rstd * gamma[c], shift = -scale * mean + beta[c]
    scale = rstd if weight is None else rstd * weight.reshape(num_groups, -1, 1)
    shift = -scale * mean
    if bias is not None:
        shift = shift + bias.reshape(num_groups, -1, 1)
    return (x * scale + shift).reshape(tuple(input.shape))


# ----- modules -------------------------------------------------------------------------

def _affine(module, affine, bias, shape, dt):
    """A normalisation's weight and bias (``bias=False``: None) of ``shape`` when ``affine``,
    else both registered as None, as PyTorch's modules register them."""
    if affine:
        module.weight = Parameter(empty(*shape, dtype=dt))
        if bias:
            module.bias = Parameter(empty(*shape, dtype=dt))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module, affine):
    """weight ones, bias zeros (the identity transform)."""
    if affine:
        init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)

class LayerNorm(Module):
    """layer_norm over the last dims (``normalized_shape``: an int or a tuple), with a
    weight (ones) and bias (zeros) of that shape when ``elementwise_affine``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        dt = _factory_dtype(device, dtype)
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine(self, self.elementwise_affine, bias, self.normalized_shape, dt)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self, self.elementwise_affine)

    def forward(self, input):
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class _NormBase(Module):
    """num_features channels: weight (ones) and bias (zeros) when ``affine``; the buffers
    running_mean (zeros), running_var (ones) and num_batches_tracked (0, int64) when
    ``track_running_stats``, else those three registered as None."""

    _version = 2              # PyTorch's: num_batches_tracked came with version 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        dt = _factory_dtype(device, dtype)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine(self, affine, bias, (num_features,), dt)
        if self.track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dt))
            self.register_buffer("running_var", ones(num_features, dtype=dt))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=D.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self, self.affine)

    def _check_input_dim(self, input):
        raise NotImplementedError

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # PyTorch's, for a state dict without version metadata (tapegrad passes none): a
        # missing num_batches_tracked keeps the module's
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and key not in state_dict:
            state_dict[key] = (self.num_batches_tracked if self.num_batches_tracked is not None
                               else tensor(0, dtype=D.int64))
        super()._load_from_state_dict(state_dict, prefix, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class _BatchNorm(_NormBase):
    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:               # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        bn_training = self.training or (self.running_mean is None
                                        and self.running_var is None)
        track = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if track else None,
                          self.running_var if track else None, self.weight, self.bias,
                          bn_training, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """batch_norm of (N, C) or (N, C, L) input, per channel C."""

    def _check_input_dim(self, input):
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    """batch_norm of (N, C, H, W) input, per channel C."""

    def _check_input_dim(self, input):
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


class GroupNorm(Module):
    """group_norm with ``num_groups`` groups of the ``num_channels`` channels; a weight
    (ones) and bias (zeros) per channel when ``affine``."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        dt = _factory_dtype(device, dtype)
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine(self, affine, bias, (num_channels,), dt)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self, self.affine)

    def forward(self, input):
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


__all__ = ["layer_norm", "batch_norm", "group_norm", "LayerNorm", "BatchNorm1d", "BatchNorm2d",
           "GroupNorm"]
