"""``tg.nn.functional``: losses and layers composed from tapegrad's primitives, so their
gradients come from the primitives' (node names are the primitives', not PyTorch's fused
``MseLossBackward0``/``NllLossBackward0``)."""
from ..tensor import Tensor, _as_tensor


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def mse_loss(input, target, reduction="mean"):
    """mean((input - target)^2)."""
    if tuple(input.shape) != tuple(_as_tensor(target).shape):
        import warnings
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due "
                      "to broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=2)
    return _reduce((input - target).pow(2), reduction)


def cross_entropy(input, target, reduction="mean"):
    """-log_softmax(input)[target] for (N, C) logits and N class indices, or class
    probabilities of the same shape as input."""
    logp = input.log_softmax(1 if input.ndim > 1 else 0)
    target = _as_tensor(target)
    if target.dtype.is_floating_point:               # class probabilities
        return _reduce(-(logp * target).sum(1 if input.ndim > 1 else 0), reduction)
    if input.ndim == 1:
        return _reduce(-logp[target], reduction)
    n, c = input.shape[0], input.shape[1]
    t = target.numpy() if not target.requires_grad else target.detach().numpy()
    if t.size and (t.max() >= c or t.min() < 0):
        raise IndexError(f"Target {int(t.max()) if t.max() >= c else int(t.min())} is out of "
                         "bounds.")
    picked = logp.gather(1, target.reshape(n, 1)).reshape(n)
    return _reduce(-picked, reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """-(t log s(x) + (1 - t) log(1 - s(x))), computed stably as
    max(x, 0) - x t + log(1 + exp(-|x|))."""
    loss = input.clamp(min=0) - input * target + (-input.abs()).exp().log1p()
    return _reduce(loss, reduction)


def linear(input, weight, bias=None):
    """input @ weight^T + bias."""
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def relu(input):
    return input.relu()


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()


def softmax(input, dim):
    return input.softmax(dim)


def log_softmax(input, dim):
    return input.log_softmax(dim)


__all__ = ["mse_loss", "cross_entropy", "binary_cross_entropy_with_logits", "linear", "relu",
           "sigmoid", "tanh", "softmax", "log_softmax", "Tensor"]
