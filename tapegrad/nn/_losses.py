"""The loss functions of ``tg.nn.functional``, composed from tapegrad's primitives.

Each computes PyTorch's per-element loss, then reduces it: ``'none'`` keeps it, ``'sum'``
adds it up, ``'mean'`` averages it (the class-weighted losses divide by the total weight of
the targets, as PyTorch does)."""
import math
import warnings

from .. import dtypes as D
from ..indexing import where
from ..face import _as_tensor

_REDUCTIONS = ("none", "mean", "sum")
_DTYPE_WORDS = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "bool": "Bool", "int16": "Short", "int8": "Char", "uint8": "Byte"}


def _reduction(reduction, size_average=None, reduce=None):
    """The reduction asked for, from ``reduction`` or the legacy size_average/reduce flags
    (with PyTorch's deprecation warning); PyTorch's error for an unknown one."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      f"reduction='{reduction}' instead.", stacklevel=3)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _weighted_reduce(loss, weight, reduction):
    """Elementwise ``weight`` (same shape as input); 'mean' divides by the weights' sum."""
    if weight is None:
        return _reduce(loss, reduction)
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def _warn_size(input, target):
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due "
                      "to broadcasting. Please ensure they have the same size.", stacklevel=3)


def _check_weight_size(input, weight):
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")


def _softplus(z):
    """log(1 + exp(z)) without overflow, as max(z, 0) + log1p(exp(-|z|)), written with a
    constant mask m = [z > 0] so that the gradient is sigmoid(z) everywhere, 0 included:
    m z + log1p(exp((1 - 2m) z))."""
    m = (z > 0).to(z.dtype)
    return m * z + ((1 - 2 * m) * z).exp().log1p()


# ----- regression ----------------------------------------------------------------------
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)^2."""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    _warn_size(input, target)
    _check_weight_size(input, weight)
    return _weighted_reduce((input - target).pow(2), weight, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|."""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    _warn_size(input, target)
    _check_weight_size(input, weight)
    return _weighted_reduce((input - target).abs(), weight, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0):
    """z = |input - target|: z^2 / (2 beta) where z < beta, z - beta / 2 elsewhere."""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    _warn_size(input, target)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    z = (input - target).abs()
    if beta == 0:
        return _reduce(z, reduction)
    return _reduce(where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """z = |input - target|: z^2 / 2 where z < delta, delta (z - delta / 2) elsewhere."""
    reduction = _reduction(reduction)
    target = _as_tensor(target)
    _warn_size(input, target)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _check_weight_size(input, weight)
    z = (input - target).abs()
    loss = where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))
    if weight is None:
        return _reduce(loss, reduction)
    return _reduce(loss * weight, reduction)      # PyTorch: a plain mean here


# ----- binary classification ------------------------------------------------------------
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)), each log clamped to >= -100 as PyTorch does. (At
    x = 0 or 1 exactly the gradient is 0, not PyTorch's +-t * 1e12.)"""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the "
                         f"input size ({input.shape}) is deprecated. Please ensure they have "
                         "the same size.")
    outside = (input < 0).long() + (input > 1).long()    # counted: 0 for every valid input
    if outside.sum().item():
        raise RuntimeError("all elements of input should be between 0 and 1")
    tiny = 1e-45 if input.dtype is D.float32 else 5e-324     # the least subnormal

    def clamped_log(p):                  # max(log p, -100), finite everywhere
        return p.clamp(min=tiny).log().clamp(min=-100)

    loss = -(target * clamped_log(input) + (1 - target) * clamped_log(1 - input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """BCE of sigmoid(x), stably: (1 - t) x + (1 + (pos_weight - 1) t) log(1 + exp(-x))."""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    log_term = _softplus(-input)
    if pos_weight is not None:
        log_term = ((pos_weight - 1) * target + 1) * log_term
    loss = (1 - target) * input + log_term
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ----- multi-class classification ------------------------------------------------------
def _class_weights(weight, n_classes, prefix=""):
    if weight is not None and (weight.ndim != 1 or weight.numel() != n_classes):
        raise RuntimeError(f"{prefix}weight tensor should be defined either for all "
                           f"{n_classes} classes or no classes but got weight tensor of "
                           f"shape: {list(weight.shape)}")


def _check_targets(input, target, ignore_index):
    """PyTorch's checks of class-index targets; returns (class dim, ignored mask)."""
    nd = input.ndim
    if nd < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {nd})")
    if nd != 1 and input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0]}).")
    if target.is_floating_point() or target.dtype is D.bool_:
        raise RuntimeError("expected target dtype to be Long or Byte, but got "
                           f"{_DTYPE_WORDS.get(target.dtype.name, target.dtype.name)}")
    if nd <= 2 and target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if nd > 2 and tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"Expected target size {[input.shape[0], *input.shape[2:]]}, got "
                           f"{list(target.shape)}")
    class_dim = 0 if nd == 1 else 1
    n_classes = input.shape[class_dim]
    ignored = target == ignore_index
    bad = ((target < 0).long() + (target >= n_classes).long()) * (target != ignore_index).long()
    if bad.sum().item():
        first = next(t for t, b in zip(target.reshape(-1).tolist(), bad.reshape(-1).tolist())
                     if b)
        raise IndexError(f"Target {first} is out of bounds.")
    return class_dim, ignored


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """-w[t] input[n, t] for the class t of each sample; 'mean' divides by the sum of
    the w[t] of the samples not ignored."""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    class_dim, ignored = _check_targets(input, target, ignore_index)
    _class_weights(weight, input.shape[class_dim])
    safe = where(ignored, 0, target)                # an ignored target picks class 0 ...
    picked = input.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim)
    w = (target != ignore_index).to(input.dtype)    # ... with weight 0
    if weight is not None:
        w = w * weight.index_select(0, safe.reshape(-1)).reshape(tuple(safe.shape))
    loss = -picked * w
    if reduction == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss, reduction)


def _class_view(weight, nd, class_dim):
    """weight (C,) shaped to broadcast along the class dim of an nd-dim input."""
    shape = [1] * nd
    shape[class_dim] = weight.shape[0]
    return weight.reshape(*shape)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """nll_loss(log_softmax(input)) for class indices; -sum_c t_c log_softmax(input)_c for
    class probabilities t (a target of input's shape). label_smoothing e mixes the target
    with the uniform distribution: (1 - e) target + e / C."""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    class_dim = 0 if input.ndim == 1 else 1
    if tuple(input.shape) == tuple(target.shape):
        return _cross_entropy_probabilities(input, target, weight, ignore_index, reduction,
                                            label_smoothing, class_dim)
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError("label_smoothing must be between 0.0 and 1.0. Got: "
                               f"{label_smoothing}")
        return _cross_entropy_smoothed(input, target, weight, ignore_index, reduction,
                                       label_smoothing, class_dim)
    return nll_loss(input.log_softmax(class_dim), target, weight, ignore_index=ignore_index,
                    reduction=reduction)


def _cross_entropy_probabilities(input, target, weight, ignore_index, reduction,
                                 label_smoothing, class_dim):
    if not target.is_floating_point():
        raise RuntimeError("Expected floating point type for target with class "
                           f"probabilities, got {_DTYPE_WORDS.get(target.dtype.name)}")
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    n_classes = input.shape[class_dim]
    _class_weights(weight, n_classes, "cross_entropy: ")
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError("label_smoothing must be between 0.0 and 1.0. Got: "
                               f"{label_smoothing}")
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    terms = input.log_softmax(class_dim) * target
    if weight is not None:
        terms = terms * (_class_view(weight, input.ndim, class_dim) if input.ndim > 1
                         else weight)
    if reduction == "mean":
        n = input.numel() // n_classes
        return -terms.sum() / n if n else -terms.sum() * math.nan
    if reduction == "sum":
        return -terms.sum()
    return -terms.sum(class_dim)


def _cross_entropy_smoothed(input, target, weight, ignore_index, reduction, label_smoothing,
                            class_dim):
    """(1 - e) nll + e / C * smooth, where smooth = -sum_c w_c log p_c per sample (0 for
    ignored samples), reduced as nll is."""
    logp = input.log_softmax(class_dim)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    n_classes = input.shape[class_dim]
    if weight is not None:
        smooth = -(logp * _class_view(weight, input.ndim, class_dim)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    ignored = target == ignore_index
    smooth = where(ignored, 0.0, smooth)
    if reduction == "mean":
        kept = (target != ignore_index).to(input.dtype)
        if weight is not None:
            safe = where(ignored, 0, target)
            kept = kept * weight.index_select(0, safe.reshape(-1)).reshape(tuple(safe.shape))
        smooth = smooth.sum() / kept.sum()
    else:
        smooth = _reduce(smooth, reduction)
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


# ----- divergences, ranking, likelihoods -------------------------------------------------
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target (log target - input), for log-probabilities ``input``: xlogy(t, t) - t x
    (0 where t = 0), or exp(t) (t - x) with ``log_target``. 'batchmean' divides the sum
    by the batch size (the KL divergence), 'mean' by the number of elements (with
    PyTorch's warning)."""
    if size_average is not None or reduce is not None:
        reduced_as = _reduction("mean", size_average, reduce)
    else:
        if reduction == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size "
                          "and the support size.'batchmean' divides only by the batch size, "
                          "and aligns with the KL div math definition.'mean' will be changed "
                          "to behave the same as 'batchmean' in the next major release.",
                          stacklevel=2)
        reduced_as = _reduction("sum" if reduction == "batchmean" else reduction)
    target = _as_tensor(target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # xlogy(t, t): t log t, 0 where t = 0 (its gradient there NaN, as PyTorch's t / t)
        loss = where(target == 0, 0.0, target * target.log()) - target * input
    reduced = _reduce(loss, reduced_as)
    if reduction == "batchmean" and input.ndim != 0:
        reduced = reduced / input.shape[0]
    return reduced


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, -target (input1 - input2) + margin), target +-1 saying which should rank
    higher (gradient passed at 0, as PyTorch's clamp_min)."""
    reduction = _reduction(reduction, size_average, reduce)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError("margin_ranking_loss : All input tensors should have same dimension "
                           f"but got sizes: input1: {input1.size()}, input2: {input2.size()}, "
                           f"target: {target.size()} ")
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target input)), as PyTorch's kernel (log1p of exp)."""
    reduction = _reduction(reduction, size_average, reduce)
    target = _as_tensor(target)
    return _reduce((-input * target).exp().log1p(), reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """(log(max(var, eps)) + (input - target)^2 / max(var, eps)) / 2 (+ log(2 pi) / 2 with
    ``full``); ``var`` per element, or one dim short / one size-1 dim (a shared variance),
    or a float. The clamp at eps is PyTorch's, made under no_grad: the gradient reaches
    var as if unclamped."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * input.new_ones(tuple(input.shape))
    elif (var < 0).any():
        raise ValueError("var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif input.ndim == var.ndim and \
                sum(y for x, y in zip(input.shape, var.shape) if x != y) == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in _REDUCTIONS:
        raise ValueError(reduction + " is not valid")
    # max(var, eps) with the gradient of var: (var - var) is 0 exactly
    flat = var.detach()
    var = where(flat < eps, (var - flat) + eps, var)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """exp(input) - target input for a log-rate ``input`` (``log_input``), else
    input - target log(input + eps); ``full`` adds Stirling's approximation of
    log(target!), t log t - t + log(2 pi t) / 2, where target > 1."""
    if size_average is not None or reduce is not None:
        reduction = _reduction(reduction, size_average, reduce)
    if reduction not in _REDUCTIONS:
        raise ValueError(reduction + " is not a valid value for reduction")
    target = _as_tensor(target)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        stirling = target * target.log() - target + 0.5 * (2 * math.pi * target).log()
        loss = loss + stirling.masked_fill(target <= 1, 0)
    return _reduce(loss, reduction)
