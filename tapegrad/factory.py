"""Creating tensors: ``tensor``, ``ones``, ``zeros``, ``full``, ``randn``, ``rand`` ..."""
import numpy as np

from . import dtypes as D
from .conversion import from_python
from .state import refuse_while_recording
from .tensor import Tensor, _array, _from_array, _new, _sizes

_rng = [np.random.default_rng()]


def manual_seed(seed):
    """Seeds tapegrad's random generator (NumPy's PCG64: the numbers differ from PyTorch's)."""
    refuse_while_recording("tg.manual_seed()")
    _rng[0] = np.random.default_rng(int(seed))


def _infer(data, dtype=None):
    """A NumPy array from Python data, typed as PyTorch would type it (or as ``dtype``)."""
    if isinstance(data, np.ndarray):
        D.from_numpy(data.dtype)    # PyTorch's TypeError for the dtypes tapegrad has not
        if dtype is not None and data.dtype != dtype.np:
            with np.errstate(all="ignore"):     # an array is cast silently, as PyTorch's
                return data.astype(dtype.np)
        return data
    # numbers and nested sequences: read as torch.tensor reads them, with its errors
    return from_python(data, dtype)


def _nonnegative(shape):
    """``shape``, after PyTorch's check that no size is negative."""
    for n in shape:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: "
                               f"{list(shape)}")
    return shape


def _grad_leaf(t, requires_grad):
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require "
                               "gradients")
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf tensor holding a copy of ``data`` (a number, nested lists, an array)."""
    if isinstance(data, Tensor):
        data = _array(data).copy()
    dt = D.as_dtype(dtype)
    a = _infer(data, dt)
    dt = dt or D.from_numpy(a.dtype)
    t = _from_array(np.array(a, dtype=dt.np, order="C"), dt)
    return _grad_leaf(t, requires_grad)


def _filled(fill, size, dtype, requires_grad):
    dt = D.as_dtype(dtype) or D.DEFAULT_FLOAT
    t = _from_array(np.full(_nonnegative(_sizes(size)), fill, dt.np), dt)
    return _grad_leaf(t, requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return _filled(1, size, dtype, requires_grad)


def zeros(*size, dtype=None, requires_grad=False):
    return _filled(0, size, dtype, requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    return _filled(0, size, dtype, requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    if dtype is None and isinstance(fill_value, (bool, int, np.integer)):
        dtype = D.bool_ if isinstance(fill_value, bool) else D.int64
    return _filled(fill_value, (size,), dtype, requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def _random(draw, size, dtype, requires_grad, kernel="normal_kernel_cpu"):
    refuse_while_recording("a random draw (a replay would reuse the recorded numbers)")
    dt = D.as_dtype(dtype) or D.DEFAULT_FLOAT
    shape = _nonnegative(_sizes(size))
    if not dt.is_floating_point:    # PyTorch's words, naming its kernel and its dtype name
        raise NotImplementedError(f'"{kernel}" not implemented for \'{D.scalar_name(dt)}\'')
    a = draw(_rng[0], shape, dt.np)
    t = _from_array(np.asarray(a, dt.np), dt)
    return _grad_leaf(t, requires_grad)


def randn(*size, dtype=None, requires_grad=False):
    """Standard normal samples (seed with ``tg.manual_seed``)."""
    return _random(lambda g, s, d: g.standard_normal(s, dtype=d), size, dtype, requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    """Uniform samples on [0, 1) (seed with ``tg.manual_seed``)."""
    return _random(lambda g, s, d: g.random(s, dtype=d), size, dtype, requires_grad,
                   kernel="check_uniform_bounds")


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    floats = any(isinstance(v, float) for v in (start, end, step))
    dt = D.as_dtype(dtype) or (D.DEFAULT_FLOAT if floats else D.int64)
    t = _from_array(np.arange(start, end, step).astype(dt.np), dt)
    return _grad_leaf(t, requires_grad)


def from_numpy(a):
    """A tensor sharing memory with NumPy array ``a``."""
    return _new(a, D.from_numpy(a.dtype)) if a.ndim else _from_array(a)
