"""``tg.device``, the ``device=`` keyword, and the check that keeps everything on the CPU.

tapegrad computes on the CPU only. A device object names any of PyTorch's device types
(``tg.device("cuda")`` is made as in PyTorch, so that ``device = tg.device("cuda" if
tg.cuda.is_available() else "cpu")`` runs), but putting a tensor anywhere else than the CPU
raises an error that says so.
"""
import functools

from .base import TensorBase as Tensor

_type_of = type      # device's first argument is called ``type``, as in PyTorch

# PyTorch's device types, in the order its parse error lists them
TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
         "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
         "privateuseone")


class device:
    """Where a tensor lives: ``device("cpu")``, ``device("cpu", 0)``, ``device("cpu:0")``."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002 (PyTorch's argument name)
        if isinstance(type, device):
            type, index = type.type, type.index
        elif isinstance(type, int) and not isinstance(type, bool):
            raise RuntimeError("Cannot access accelerator device when none is available.")
        elif isinstance(type, str):
            name, _, idx = type.partition(":")
            if name not in TYPES:
                raise RuntimeError(f"Expected one of {', '.join(TYPES)} device type at start "
                                   f"of device string: {type}")
            if idx:
                if not idx.isdigit() or index is not None:
                    raise RuntimeError(f"Invalid device string: '{type}'")
                index = int(idx)
            type = name
        else:
            raise TypeError("device() received an invalid combination of arguments - got "
                            f"({_type_of(type).__name__})")
        if index is not None and index < 0:
            raise RuntimeError("Device index must not be negative")
        self.type = type
        self.index = index

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        # PyTorch compares devices with devices only: device("cpu") == "cpu" is False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")


def check(where):
    """Raises unless ``where`` (None, a string, a ``tg.device``) is the CPU. PyTorch without
    CUDA raises AssertionError for CUDA and RuntimeError for the other devices."""
    if where is None:
        return
    d = where if isinstance(where, device) else device(where)
    if d.type == "cpu":
        return
    error = AssertionError if d.type == "cuda" else RuntimeError
    raise error(f"tapegrad runs on the CPU only: there is no '{d}' device (use 'cpu', or "
                "tg.device('cpu'))")


def is_device(x):
    """True for what PyTorch takes as a device argument: a ``tg.device`` or a device string."""
    if isinstance(x, device):
        return True
    return isinstance(x, str) and x.partition(":")[0] in TYPES


def on_cpu(factory):
    """Gives a factory function PyTorch's ``device=`` keyword (checked: the CPU only)."""
    @functools.wraps(factory)
    def make(*args, device=None, **kwargs):
        check(device)
        return factory(*args, **kwargs)
    return make


def to_args(args, kwargs):
    """PyTorch's forms of ``Tensor.to``: ``to(dtype)``, ``to(device, dtype)``, ``to(other)``,
    each with ``non_blocking`` and ``copy``, and the keywords. Checks the device; returns
    (the dtype asked for, or None; copy)."""
    args = list(args)
    where, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
    first = args.pop(0) if args else None
    if isinstance(first, (str, device)) or (isinstance(first, int) and
                                             not isinstance(first, bool)):
        where = first
        if args and not isinstance(args[0], bool):
            dtype = args.pop(0)
    elif isinstance(first, Tensor):
        dtype = first.dtype
    elif first is not None:
        dtype = first
    if len(args) > 1:
        copy = args[1]                  # (non_blocking, copy)
    check(where)
    return dtype, bool(copy)
