"""``tg.nn.functional``: layers, activations and losses composed from tapegrad's
primitives, so their gradients come from the primitives' (node names are the primitives',
not PyTorch's fused ``AddmmBackward0``/``GeluBackward0``/``NllLossBackward0``).

The losses live in ``_losses.py``, most activations in ``_activations.py``, the
normalisations in ``normalization.py``; they are re-exported here."""
import math

from .. import dtypes as D
from ..factory import arange, full, rand
from ..grad_mode import no_grad
from ..indexing import cat, where
from ..base import TensorBase as Tensor
from ..face import _as_tensor
from ..shapes import _broadcast
from ._activations import (_apply, _softmax_dim, celu, elu, hardsigmoid, hardswish,  # noqa: F401
                           hardtanh, logsigmoid, mish, prelu, records_grad, relu6, selu,
                           silu, softmin, softsign, tanhshrink)
from ._losses import (_DTYPE_WORDS, binary_cross_entropy,  # noqa: F401
                      binary_cross_entropy_with_logits, cross_entropy, gaussian_nll_loss,
                      huber_loss, kl_div, l1_loss, margin_ranking_loss, mse_loss, nll_loss,
                      poisson_nll_loss, smooth_l1_loss, soft_margin_loss)
from .normalization import batch_norm, group_norm, layer_norm  # noqa: F401


# ----- layers --------------------------------------------------------------------------
def linear(input, weight, bias=None):
    """input @ weight^T + bias, over the last dim of input (any leading dims)."""
    if weight.ndim != 2:
        raise RuntimeError(f"mat2 must be a matrix, got {weight.ndim}-D tensor")
    out_features = weight.shape[0]
    lead = tuple(input.shape[:-1])
    flat = input.reshape(-1, input.shape[-1]) if input.ndim != 2 else input
    out = flat.mm(weight.t())                    # PyTorch's words for a size mismatch
    if bias is not None:
        if bias.ndim >= 1 and bias.shape[-1] not in (1, out_features):
            raise RuntimeError(
                f"The expanded size of the tensor ({out_features}) must match the existing "
                f"size ({bias.shape[-1]}) at non-singleton dimension {max(len(lead), 1)}.  "
                f"Target sizes: {[*lead, out_features] if lead else [1, out_features]}.  "
                f"Tensor sizes: {list(bias.shape)}")
        out = out + bias
    return out.reshape(*lead, out_features) if input.ndim != 2 else out


def bilinear(input1, input2, weight, bias=None):
    """y_k = x1^T A_k x2 + b_k for weight A of shape (out, in1, in2)."""
    out_f, in1, in2 = weight.shape
    if input1.shape[-1] != in1:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got "
                           f"{input1.shape[-1]} but expected {in1}")
    if input2.shape[-1] != in2:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got "
                           f"{input2.shape[-1]} but expected {in2}")
    for d, (a, b) in enumerate(zip(input1.shape[:-1], input2.shape[:-1])):
        if a != b:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {d}: "
                               f"got {a} and {b}")
    lead = tuple(input1.shape[:-1])
    x1, x2 = input1.reshape(-1, in1), input2.reshape(-1, in2)
    # (x1 A)[n, k, j] = sum_i x1[n, i] A[k, i, j]; then y[n, k] = sum_j (x1 A)[n, k, j] x2[n, j]
    x1a = x1.mm(weight.permute(1, 0, 2).reshape(in1, out_f * in2)).reshape(-1, out_f, in2)
    out = (x1a * x2.unsqueeze(1)).sum(2)
    if bias is not None:
        out = out + bias
    return out.reshape(*lead, out_f)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability p and scales the rest by 1 / (1 - p)
    (an identity when not training)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        mask = input.detach() * 0.0               # every element dropped
    else:
        keep = rand(*input.shape, dtype=D.float64) < 1 - p
        mask = keep.to(input.dtype) / (1 - p)
    return _apply(input, lambda t: t * mask, inplace, "dropout_")


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by the integer tensor ``input``: out[..., :] =
    weight[input[...], :]. Rows at ``padding_idx`` get no gradient."""
    input = _as_tensor(input)
    if input.is_floating_point():
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the "
                           "following scalar types: Long, Int; but got "
                           f"{input.type()} instead (while checking arguments for embedding)")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    if ((input < 0).long() + (input >= n).long()).sum().item():   # 0 for every valid input
        raise IndexError("index out of range in self")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("tapegrad: embedding supports neither scale_grad_by_freq "
                                  "nor sparse gradients")
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    rows = weight.index_select(0, input.reshape(-1)).reshape(*input.shape, weight.shape[1])
    if padding_idx is None:
        return rows
    keep = (input != padding_idx).unsqueeze(-1)
    return where(keep, rows, rows.detach())         # same values; no gradient at padding


def _embedding_renorm_(weight, input, max_norm, norm_type):
    """Rows of weight that input picks and whose norm exceeds max_norm are scaled in place
    to norm max_norm (PyTorch's max_norm/(norm + 1e-7) factor)."""
    with no_grad():
        picked = _as_tensor(sorted(set(input.reshape(-1).tolist())))
        rows = weight.index_select(0, picked)
        norms = rows.norm(norm_type, 1, keepdim=True)
        scale = where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[picked] = rows * scale


def one_hot(tensor, num_classes=-1):
    """(..., num_classes) int64 tensor: 1 at each entry's class, 0 elsewhere."""
    if tensor.is_floating_point():
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if tensor.numel() and tensor.min().item() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if not tensor.numel():
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = tensor.max().item() + 1
    elif tensor.numel() and tensor.max().item() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return (tensor.unsqueeze(-1) == arange(num_classes)).long()


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p over dim, eps)."""
    if out is not None:
        raise NotImplementedError("tapegrad: normalize(out=...) is not supported")
    denom = input.norm(p, dim, keepdim=True).clamp(min=eps).expand_as(input)
    return input / denom


# ----- activations ---------------------------------------------------------------------
def relu(input, inplace=False):
    if inplace and records_grad(input):
        return input.relu_()                        # the primitive: ReluBackward0
    return _apply(input, lambda t: t.relu(), inplace, "relu_")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, negative_slope * x elsewhere."""
    # (PyTorch's in-place form's backward reads its result: LeakyReluBackward1)
    return _apply(input, lambda t: where(t > 0, t, t * negative_slope), inplace,
                  "leaky_relu_", True)


def gelu(input, approximate="none"):
    """x Phi(x) = x (1 + erf(x / sqrt 2)) / 2; approximate='tanh':
    x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2."""
    if approximate == "none":
        return input * 0.5 * (1 + (input * math.sqrt(0.5)).erf())
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1 + inner.tanh())
    raise RuntimeError("approximate argument must be either none or tanh.")


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    z = input * beta
    # the exp of the branch not taken is bounded too, so its zero gradient stays finite
    soft = z.clamp(max=threshold).exp().log1p() / beta
    return where(z > threshold, input, soft)


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim, _stacklevel)
    return input.softmax(dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim, _stacklevel)
    return input.log_softmax(dim, dtype=dtype)


# ----- shapes and distances ------------------------------------------------------------
def pad(input, pad, mode="constant", value=None):
    """``pad`` = (left, right) for the last dim, then for the one before ...: that many
    elements of ``value`` (0 by default) added on each side (mode 'constant'); a negative
    number removes elements. Built from ``narrow`` and ``cat``."""
    if mode != "constant":
        if mode not in ("reflect", "replicate", "circular"):
            raise NotImplementedError(f"Unrecognised padding mode {mode}")
        if value is not None:
            raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
        raise NotImplementedError(f"tapegrad: F.pad supports mode='constant' only, not "
                                  f"{mode!r}")
    for i, p in enumerate(pad):
        if isinstance(p, bool) or not isinstance(p, int):
            raise TypeError("pad(): argument 'pad' failed to unpack the object at pos "
                            f'{i + 1} with error "type must be tuple of ints,but got '
                            f'{type(p).__name__}"')
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    nd = input.ndim
    if len(pad) // 2 > nd:
        raise RuntimeError("Padding length should be less than or equal to two times the "
                           f"input dimension but got padding length {len(pad)} and input of "
                           f"dimension {nd}")
    out = input
    for i in range(len(pad) // 2):                 # the negative pads first: narrow
        dim, left, right = nd - 1 - i, pad[2 * i], pad[2 * i + 1]
        size = out.shape[dim]
        start, stop = max(-left, 0), size - max(-right, 0)
        if stop - start < 0:
            raise RuntimeError("narrow(): length must be non-negative.")
        if start or stop != size:
            out = out.narrow(dim, start, stop - start)
    fill = 0 if value is None else value
    for i in range(len(pad) // 2):                 # then the positive ones: cat
        dim, left, right = nd - 1 - i, max(pad[2 * i], 0), max(pad[2 * i + 1], 0)
        if left or right:
            parts = [out]
            shape = list(out.shape)
            if left:
                shape[dim] = left
                parts.insert(0, full(shape, fill, dtype=out.dtype))
            if right:
                shape[dim] = right
                parts.append(full(shape, fill, dtype=out.dtype))
            out = cat(parts, dim)
    return input.clone() if out is input else out


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum over dim of (x1 / max(||x1||, eps)) (x2 / max(||x2||, eps)), the two broadcast
    to one shape first, as PyTorch's; the clamp at eps is made under no_grad there, so the
    gradient reaches the norms as if unclamped (here: (norm - norm) + eps, 0 + eps
    exactly, carries it)."""
    x1, x2 = _as_tensor(x1), _as_tensor(x2)
    if not (x1.is_floating_point() or x2.is_floating_point()):
        common = (x1 + x2).dtype if x1.dtype is not x2.dtype else x1.dtype
        raise RuntimeError("expected common dtype to be floating point, yet common dtype is "
                           + _DTYPE_WORDS.get(common.name, common.name))
    if not x1.is_floating_point():                 # integers and bools: the other's dtype
        x1 = x1.to(x2.dtype)
    if not x2.is_floating_point():
        x2 = x2.to(x1.dtype)
    shape = _broadcast(tuple(x1.shape), tuple(x2.shape))
    x1 = x1.expand(*shape) if tuple(x1.shape) != shape else x1
    x2 = x2.expand(*shape) if tuple(x2.shape) != shape else x2

    def clamped_norm(x):
        n = x.norm(2, dim, keepdim=True)
        flat = n.detach()
        return where(flat < eps, (n - flat) + eps, n)   # max(n, eps), gradient of n

    return ((x1 / clamped_norm(x1)) * (x2 / clamped_norm(x2))).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim (of the larger of the two)."""
    x1, x2 = _as_tensor(x1), _as_tensor(x2)
    innermost = max(x1.ndim, x2.ndim) - 1
    return (x1 - x2 + eps).norm(p, innermost, keepdim=keepdim)


__all__ = ["linear", "bilinear", "dropout", "embedding", "one_hot", "normalize", "relu",
           "leaky_relu", "gelu", "softplus", "sigmoid", "tanh", "softmax", "log_softmax",
           "silu", "mish", "logsigmoid", "softsign", "tanhshrink", "softmin", "elu", "selu",
           "celu", "hardtanh", "relu6", "hardsigmoid", "hardswish", "prelu",
           "layer_norm", "batch_norm", "group_norm", "pad", "cosine_similarity",
           "pairwise_distance", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "nll_loss", "cross_entropy", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "margin_ranking_loss",
           "soft_margin_loss", "gaussian_nll_loss", "poisson_nll_loss", "Tensor"]
