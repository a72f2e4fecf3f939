"""Nonlinear reductions and softmaxes: max/min/amax/amin, prod, var/std, norm, logsumexp,
softmax, log_softmax. Each is one 'lane' record: the sweep maps every input element to its
lane (its reduced output) and applies the op's formula (see ``kernels._lane``)."""
import math
from collections import namedtuple

import numpy as np

from . import dtypes as D
from .ops import (AMAX, AMIN, LOGSOFTMAX, LOGSUMEXP, MAXALL, MAXDIM, MAXIMUM, MINALL, MINDIM,
                  MINIMUM, NORM, PROD, PRODDIM, SOFTMAX, STD, VAR)
from .face import (TensorBase as Tensor, _array, _binary, _c_array, _guard_extremes, _new, _record,
                   _reduce, _shape, _tracks)
from .ops import MEAN, MEANDIM, SUM, SUMDIM
from .ordering import return_type
from .quiet import quietly
from .shapes import _dim, _lane_aux, _reduced_dims

# torch.return_types.max / min
ValuesIndices = namedtuple("ValuesIndices", "values indices")
MinMax = return_type("aminmax", "min max")


def _lane_op(op, x, dims, value, c=0.0, keepdim=True):
    """Wraps NumPy result ``value`` (keepdim-shaped; ``keepdim=False`` drops the reduced dims)
    and records lane op ``op`` over ``dims`` of x."""
    dt = x._dtype if x._dtype.is_floating_point or op in (MAXALL, MINALL, AMAX, AMIN, PROD,
                                                          PRODDIM) else D.DEFAULT_FLOAT
    value = np.asarray(value, dt.np)
    if not keepdim:
        value = np.asarray(np.squeeze(value, axis=dims))
    out = _new(value, dt)
    if _tracks(x._rg):
        out._rg = True
        _record(op, out, x, None, c, _lane_aux(_shape(x), dims))
    return out


def _float_input(x, name):
    if not x._dtype.is_floating_point:
        raise RuntimeError(f"{name}(): expected a floating point input, got "
                           f"{x._dtype.name}")


def _extreme(x, dim, keepdim, largest, other):
    if isinstance(dim, Tensor) or other is not None:      # max(a, b): elementwise
        return _binary(MAXIMUM if largest else MINIMUM, x, dim if other is None else other)
    v = _c_array(x)
    name = "max" if largest else "min"
    if dim is None:
        if v.size == 0:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                               "input.numel() == 0. Specify the reduction dim with the 'dim' "
                               "argument.")
        value = v.max() if largest else v.min()
        return _lane_op(MAXALL if largest else MINALL, x, tuple(range(v.ndim)), value)
    d = _dim(dim, v.ndim)
    if v.ndim and v.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    arg = (np.argmax if largest else np.argmin)(v, axis=d, keepdims=True) if v.ndim else \
        np.zeros((), np.int64)
    flat = np.take_along_axis(np.arange(v.size).reshape(v.shape), arg, d) if v.ndim else arg
    values = np.take(v.ravel(), flat)
    if not keepdim and v.ndim:
        values, arg = np.squeeze(values, d), np.squeeze(arg, d)
    out = _new(np.asarray(values), x._dtype)
    if _tracks(x._rg):
        _guard_extremes(x, largest, d, v.shape, arg)    # inside a tg.compile recording
        out._rg = True
        # the lane map lets a replay find the new arg-extreme of each lane
        _record(MAXDIM if largest else MINDIM, out, x, aux=_lane_aux(v.shape, (d,)), ints=flat)
    return ValuesIndices(out, _new(np.asarray(arg, np.int64), D.int64))


def max(input, dim=None, keepdim=False, other=None):  # noqa: A001 (PyTorch's name)
    """max(): the largest element; max(dim): (values, indices); max(other): elementwise."""
    return _extreme(input, dim, keepdim, True, other)


def min(input, dim=None, keepdim=False, other=None):  # noqa: A001
    return _extreme(input, dim, keepdim, False, other)


def _amax(x, dim, keepdim, largest):
    dims = _reduced_dims(_shape(x), dim)
    v = _c_array(x)
    name = "amax" if largest else "amin"
    if v.size == 0 and (dim is None or dim == () or any(v.shape[d] == 0 for d in dims)):
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                           "input.numel() == 0. Specify the reduction dim with the 'dim' "
                           "argument.")
    value = (np.max if largest else np.min)(v, axis=dims, keepdims=True)
    return _lane_op(AMAX if largest else AMIN, x, dims, value, keepdim=keepdim)


def amax(input, dim=(), keepdim=False):
    return _amax(input, dim, keepdim, True)


def amin(input, dim=(), keepdim=False):
    return _amax(input, dim, keepdim, False)


def prod(input, dim=None, keepdim=False):
    dims = _reduced_dims(_shape(input), dim)
    value = quietly(np.prod, _c_array(input), axis=dims, keepdims=True)   # (inf, NaN: silently)
    return _lane_op(PROD if dim is None else PRODDIM, input, dims, value, keepdim=bool(keepdim))


def _correction(unbiased, correction):
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased in (None, True) else 0.0


def _moment(x, dim, unbiased, keepdim, correction, op):
    _float_input(x, "var" if op == VAR else "std")
    if isinstance(dim, bool):            # var(True): the old positional `unbiased`
        dim, unbiased = None, dim
    shape = _shape(x)
    dims = _reduced_dims(shape, dim)
    corr = _correction(unbiased, correction)
    n = math.prod(shape[d] for d in dims)
    a = _c_array(x)
    with np.errstate(all="ignore"):
        if n > corr:
            v = np.asarray(np.var(a, axis=dims, ddof=corr, keepdims=True))
            # A lane of equal finite values has variance exactly 0, as PyTorch's Welford mean
            # gives; a two-pass mean an ulp off would make std's gradient (x - mean) / std blow up.
            top = np.max(a, axis=dims, keepdims=True)
            v[(top == np.min(a, axis=dims, keepdims=True)) & np.isfinite(top)] = 0.0
        else:
            v = np.full(np.var(a, axis=dims, keepdims=True).shape, np.nan)
        if op == STD:
            v = np.sqrt(v)
    return _lane_op(op, x, dims, v, c=n - corr, keepdim=keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` with Bessel's correction (``unbiased``/``correction``)."""
    return _moment(input, dim, unbiased, keepdim, correction, VAR)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _moment(input, dim, unbiased, keepdim, correction, STD)


def norm(input, p=2, dim=None, keepdim=False):
    """The vector p-norm over ``dim`` (all elements by default), p > 0 finite or inf."""
    return vector_norm(input, p, dim, keepdim)


def vector_norm(x, ord=2, dim=None, keepdim=False):  # noqa: A002 (PyTorch's name)
    _float_input(x, "linalg.vector_norm")
    if ord in (math.inf, -math.inf):
        return (x.abs().amax if ord > 0 else x.abs().amin)(dim=dim or (), keepdim=keepdim)
    if ord <= 0:
        raise NotImplementedError("tapegrad: vector_norm supports ord > 0 and +-inf")
    dims = _reduced_dims(_shape(x), dim)
    a = np.abs(_c_array(x, np.float64))
    with np.errstate(all="ignore"):                     # (an overflow is inf, silently)
        value = np.sqrt((a * a).sum(axis=dims, keepdims=True)) if ord == 2 else \
            (a ** ord).sum(axis=dims, keepdims=True) ** (1.0 / ord)
    return _lane_op(NORM, x, dims, value, c=float(ord), keepdim=keepdim)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) over ``dim``, computed stably (shifted by the lane's max)."""
    dims = _reduced_dims(_shape(input), dim)
    v = _c_array(input, np.float64)
    m = np.max(v, axis=dims, keepdims=True) if v.size else np.zeros(())
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(all="ignore"):
        value = m + np.log(np.sum(np.exp(v - m), axis=dims, keepdims=True))
    return _lane_op(LOGSUMEXP, input, dims, value, keepdim=keepdim)


def _softmax(x, dim, op):
    shape = _shape(x)
    d = _dim(dim, len(shape))
    v = _c_array(x, np.float64)
    if len(shape) == 0:
        v = v.reshape(1)
    if v.size == 0:
        return _lane_op(op, x, (d,) if shape else (), v.reshape(shape))
    m = np.max(v, axis=d if shape else 0, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(all="ignore"):
        e = np.exp(v - m)
        s = e.sum(axis=d if shape else 0, keepdims=True)
        value = e / s if op == SOFTMAX else (v - m) - np.log(s)
    return _lane_op(op, x, (d,) if shape else (), value.reshape(shape))


def aminmax(input, *, dim=None, keepdim=False):
    """(min, max) over ``dim`` (all elements by default): amin's and amax's records (one
    AminmaxBackward0 in PyTorch)."""
    dims = () if dim is None else dim
    return MinMax(amin(input, dims, keepdim), amax(input, dims, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over ``dim``: std's and mean's records (one StdMeanBackward0 in
    PyTorch)."""
    return (std(input, dim, unbiased, keepdim, correction=correction),
            input.mean() if dim is None else input.mean(dim, keepdim))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return (var(input, dim, unbiased, keepdim, correction=correction),
            input.mean() if dim is None else input.mean(dim, keepdim))


def softmax(input, dim, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (shifted by the max: no overflow)."""
    x = input.to(dtype) if dtype is not None else input
    return _softmax(x, dim, SOFTMAX)


def log_softmax(input, dim, dtype=None):
    x = input.to(dtype) if dtype is not None else input
    return _softmax(x, dim, LOGSOFTMAX)


class ReductionMethods:
    """The reduction methods of Tensor: sums and means (linear), and the lane ops."""
    __slots__ = ()

    def sum(self, dim=None, keepdim=False):
        return _reduce(SUM if dim is None else SUMDIM, self, dim, keepdim, False)

    def mean(self, dim=None, keepdim=False):
        return _reduce(MEAN if dim is None else MEANDIM, self, dim, keepdim, True)

    max = max
    min = min
    amax = amax
    amin = amin
    prod = prod
    var = var
    std = std
    norm = norm
    logsumexp = logsumexp
    aminmax = aminmax
    softmax = softmax
    log_softmax = log_softmax
