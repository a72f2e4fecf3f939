"""Creating tensors: ``tensor``, ``ones``, ``zeros``, ``full``, ``randn``, ``rand`` ..."""
import math

import numpy as np

from . import dtypes as D
from .conversion import checked_fill, must_be_tensor
from .device import on_cpu
from .state import refuse_while_recording
from .base import TensorBase as Tensor
from .face import _from_array, _new, _tensor_from
from .generator import Generator
from .shapes import _sizes

# tapegrad's global generator (``tg.default_generator``): as PyTorch's, it starts from a
# non-deterministic seed (``tg.initial_seed()`` tells it) until ``tg.manual_seed``
default_generator = Generator()
default_generator.seed()


def _rng_of(generator, name):
    """The NumPy generator a ``generator=`` argument draws from: tapegrad's global one for
    None, a ``tg.Generator``'s own otherwise; anything else raises PyTorch's TypeError."""
    if generator is None:
        return default_generator._np
    if isinstance(generator, Generator):
        return generator._np
    raise TypeError(f"{name}() received an invalid combination of arguments - got "
                    f"generator={type(generator).__name__}, but expected a Generator")


def manual_seed(seed):
    """Seeds tapegrad's global generator (NumPy's PCG64: the numbers differ from PyTorch's)
    and returns it, as PyTorch's (negative seeds taken modulo 2**64, as there)."""
    refuse_while_recording("tg.manual_seed()")
    return default_generator.manual_seed(int(seed))        # (1.5 is 1, as PyTorch's)


def seed():
    """Seeds the global generator with a fresh non-deterministic seed; returns it."""
    refuse_while_recording("tg.seed()")
    return default_generator.seed()


def initial_seed():
    """The seed the global generator was last started from."""
    return default_generator.initial_seed()


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


@on_cpu
def tensor(data, dtype=None, requires_grad=False):
    """A new leaf tensor holding a copy of ``data`` (a number, nested lists, an array)."""
    return _grad_leaf(_tensor_from(data, dtype), requires_grad)


def _filled(fill, size, dtype, requires_grad):
    dt = D.as_dtype(dtype) or D.DEFAULT_FLOAT
    t = _from_array(np.full(_nonnegative(_sizes(size)), checked_fill(fill, dt), dt.np), dt)
    return _grad_leaf(t, requires_grad)


def _size(name, sizes, size):
    """The shape of ``ones(2, 3)``, ``ones((2, 3))`` or ``ones(size=(2, 3))``."""
    if size is None:
        return sizes
    if sizes:
        raise TypeError(f"{name}() got multiple values for argument 'size'")
    return (size,)


@on_cpu
def ones(*sizes, size=None, dtype=None, requires_grad=False):
    return _filled(1, _size("ones", sizes, size), dtype, requires_grad)


@on_cpu
def zeros(*sizes, size=None, dtype=None, requires_grad=False):
    return _filled(0, _size("zeros", sizes, size), dtype, requires_grad)


@on_cpu
def empty(*sizes, size=None, dtype=None, requires_grad=False):
    """PyTorch leaves the values uninitialized; here they are zeros."""
    return _filled(0, _size("empty", sizes, size), dtype, requires_grad)


@on_cpu
def full(size, fill_value, dtype=None, requires_grad=False):
    if dtype is None and isinstance(fill_value, (bool, int, np.integer)):
        dtype = D.bool_ if isinstance(fill_value, bool) else D.int64
    return _filled(fill_value, (size,), dtype, requires_grad)


def _like(name, t):
    if not isinstance(t, Tensor):
        raise must_be_tensor(name, "input", 1, t)
    return t.shape


@on_cpu
def ones_like(input, dtype=None, requires_grad=False):
    return ones(_like("ones_like", input), dtype=dtype or input.dtype,
                requires_grad=requires_grad)


@on_cpu
def zeros_like(input, dtype=None, requires_grad=False):
    return zeros(_like("zeros_like", input), dtype=dtype or input.dtype,
                 requires_grad=requires_grad)


@on_cpu
def empty_like(input, dtype=None, requires_grad=False):
    return empty(_like("empty_like", input), dtype=dtype or input.dtype,
                 requires_grad=requires_grad)


@on_cpu
def full_like(input, fill_value, dtype=None, requires_grad=False):
    return _filled(fill_value, (_like("full_like", input),), dtype or input.dtype,
                   requires_grad)


def _random(draw, size, dtype, requires_grad, kernel="normal_kernel_cpu", generator=None,
            name="randn"):
    refuse_while_recording("a random draw (a replay would reuse the recorded numbers)")
    rng = _rng_of(generator, name)
    dt = D.as_dtype(dtype) or D.DEFAULT_FLOAT
    shape = _nonnegative(_sizes(size))
    if not dt.is_floating_point:    # PyTorch's words, naming its kernel and its dtype name
        raise NotImplementedError(f'"{kernel}" not implemented for \'{D.scalar_name(dt)}\'')
    a = draw(rng, shape, dt.np)
    t = _from_array(np.asarray(a, dt.np), dt)
    return _grad_leaf(t, requires_grad)


def _normal(g, s, d):
    return g.standard_normal(s, dtype=d)


def _uniform(g, s, d):
    return g.random(s, dtype=d)


@on_cpu
def randn(*sizes, size=None, dtype=None, requires_grad=False, generator=None):
    """Standard normal samples (seed with ``tg.manual_seed``, or from ``generator``)."""
    return _random(_normal, _size("randn", sizes, size), dtype, requires_grad,
                   generator=generator)


@on_cpu
def rand(*sizes, size=None, dtype=None, requires_grad=False, generator=None):
    """Uniform samples on [0, 1) (seed with ``tg.manual_seed``, or from ``generator``)."""
    return _random(_uniform, _size("rand", sizes, size), dtype, requires_grad,
                   kernel="check_uniform_bounds", generator=generator, name="rand")


@on_cpu
def randint(*args, size=None, dtype=None, requires_grad=False, generator=None):
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)`` (int64 unless ``dtype`` says otherwise)."""
    if size is not None:
        args = args + (size,)
    if len(args) == 2:
        args = (0,) + args
    if len(args) != 3:
        raise TypeError("randint() received an invalid combination of arguments: give "
                        "(high, size) or (low, high, size)")
    low, high, size = args
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint(): argument 'size' (position {len(args) - 1}) must be "
                        f"tuple of ints, not {type(size).__name__}")
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got "
                           f"from={low} >= to={high}")
    refuse_while_recording("a random draw (a replay would reuse the recorded numbers)")
    dt = D.as_dtype(dtype) or D.int64
    a = _rng_of(generator, "randint").integers(low, high, _nonnegative(_sizes((tuple(size),))))
    return _grad_leaf(_from_array(np.asarray(a, dt.np), dt), requires_grad)


@on_cpu
def randperm(n, dtype=None, requires_grad=False, *, generator=None):
    """A random permutation of 0, ..., n - 1 (int64 unless ``dtype`` says otherwise), drawn
    from ``generator`` (a ``tg.Generator``) or, without one, tapegrad's global generator."""
    rng = _rng_of(generator, "randperm")
    _nonnegative((n,))
    refuse_while_recording("a random draw (a replay would reuse the recorded numbers)")
    dt = D.as_dtype(dtype) or D.int64
    return _grad_leaf(_from_array(np.asarray(rng.permutation(n), dt.np), dt), requires_grad)


@on_cpu
def randn_like(input, dtype=None, requires_grad=False):
    return _random(_normal, _like("randn_like", input), dtype or input.dtype, requires_grad)


@on_cpu
def rand_like(input, dtype=None, requires_grad=False):
    return _random(_uniform, _like("rand_like", input), dtype or input.dtype, requires_grad,
                   kernel="check_uniform_bounds")


# ----- ranges ---------------------------------------------------------------------------
def _number(x):
    """A Python number from a number or a one-element tensor."""
    return x.item() if isinstance(x, Tensor) else x


@on_cpu
def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """start, start + step, ... up to end (excluded): ceil((end - start) / step) values,
    each start + i * step computed in float64 (in int64 for an integer dtype), as PyTorch."""
    start, end, step = (_number(v) for v in (start, end, step))
    if end is None:
        start, end = 0, start
    floats = any(isinstance(v, float) for v in (start, end, step))
    dt = D.as_dtype(dtype) or (D.DEFAULT_FLOAT if floats else D.int64)
    acc = float if dt.is_floating_point else int     # PyTorch's accumulate type
    if step == 0:
        raise RuntimeError("step must be nonzero")
    step = acc(step) if math.isfinite(step) else step
    if step == 0:                                   # an integer dtype truncated it to 0
        raise ValueError("step must be nonzero")
    if not (math.isfinite(start) and math.isfinite(end)):
        raise RuntimeError(f"unsupported range: {start:g} -> {end:g}")
    start, end = acc(start), acc(end)
    if not ((step > 0 and end >= start) or (step < 0 and end <= start)):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    n = math.ceil((end - start) / step)
    values = start + step * np.arange(n, dtype=np.float64 if acc is float else np.int64)
    t = _from_array(values.astype(dt.np), dt)
    return _grad_leaf(t, requires_grad)


def _spaced(start, end, steps, dtype):
    """PyTorch's linspace values (and logspace's exponents): the first half counted up from
    start, the second half down from end, with step (end - start) / (steps - 1) computed in
    the dtype (in float64 for integer dtypes)."""
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool):
        raise TypeError(f"linspace(): argument 'steps' (position 3) must be int, not "
                        f"{type(steps).__name__}")
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    if dtype.is_floating_point:
        ft = dtype.np.type
        start, end = ft(_number(start)), ft(_number(end))
    else:                           # start and end in the dtype, the step in float64
        ft = np.float64
        start, end = ft(int(_number(start))), ft(int(_number(end)))
    if steps == 1:
        return np.array([start], ft)
    step = (end - start) / ft(steps - 1)
    idx = np.arange(steps, dtype=ft)
    half = steps // 2
    with np.errstate(all="ignore"):
        return np.where(idx < half, start + step * idx, end - step * (ft(steps - 1) - idx))


@on_cpu
def linspace(start, end, steps, dtype=None, requires_grad=False):
    """``steps`` values evenly spaced from start to end (both included)."""
    dt = D.as_dtype(dtype) or D.DEFAULT_FLOAT
    checked_fill(start, dt), checked_fill(end, dt)
    t = _from_array(_spaced(start, end, steps, dt).astype(dt.np), dt)
    return _grad_leaf(t, requires_grad)


@on_cpu
def logspace(start, end, steps, base=10.0, dtype=None, requires_grad=False):
    """base ** linspace(start, end, steps)."""
    dt = D.as_dtype(dtype) or D.DEFAULT_FLOAT
    exponents = _spaced(start, end, steps, dt).astype(np.float64)
    t = _from_array(np.power(float(base), exponents).astype(dt.np), dt)
    return _grad_leaf(t, requires_grad)


@on_cpu
def eye(n, m=None, dtype=None, requires_grad=False):
    """The n x m identity matrix (m = n by default)."""
    for name, k in (("n", n), ("m", m)):
        if k is not None and k < 0:
            raise RuntimeError(f"{name} must be greater or equal to 0, got {k}")
    dt = D.as_dtype(dtype) or D.DEFAULT_FLOAT
    t = _from_array(np.eye(n, n if m is None else m, dtype=dt.np), dt)
    return _grad_leaf(t, requires_grad)


@on_cpu
def as_tensor(data, dtype=None):
    """``data`` as a tensor, copying only when it must (``torch.as_tensor``): a tensor of
    that dtype is itself (in another dtype, ``to(dtype)``, its graph kept), a NumPy array
    of that dtype is shared (``from_numpy``), anything else a new tensor."""
    dt = D.as_dtype(dtype)
    if isinstance(data, Tensor):
        return data if dt is None or dt is data._dtype else data.to(dt)
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf" and \
            (dt is None or data.dtype == dt.np):
        return from_numpy(data)
    return _tensor_from(data, dt)


def from_numpy(a):
    """A tensor sharing memory with NumPy array ``a``."""
    return _new(a, D.from_numpy(a.dtype)) if a.ndim else _from_array(a)
