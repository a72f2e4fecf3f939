"""PyTorch-compatible ``repr`` for tapegrad tensors, and PyTorch's print options.

``format_tensor`` reproduces what PyTorch 2.x's ``repr(tensor)`` prints
(torch/_tensor_str.py) under the print options in force, except that dtypes print as
``tapegrad.<name>`` instead of ``torch.<name>``. ``set_printoptions`` (``tg.``) sets them
as ``torch.set_printoptions`` does: ``precision``, ``threshold``, ``edgeitems``,
``linewidth``, ``profile`` ("default", "short", "full") and ``sci_mode`` (True, False, or
None: chosen from the values); ``get_printoptions`` and the ``printoptions`` context
manager are torch._tensor_str's.
"""

import contextlib
import math

import numpy as np


class _PrintOptions:
    """PyTorch's PRINT_OPTS: the options every repr reads."""
    __slots__ = ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")

    def __init__(self):
        self.precision = 4      # digits after the point (fixed) or in the mantissa (sci)
        self.threshold = 1000   # summarize with "..." when numel > threshold
        self.edgeitems = 3      # items kept at each end of a summarized dimension
        self.linewidth = 80
        self.sci_mode = None    # None: chosen from the values


PRINT_OPTS = _PrintOptions()

_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80),
             "full": (4, math.inf, 3, 80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """Options for printing tensors, as ``torch.set_printoptions``: a ``profile`` first
    ("default", "short", "full"; another name changes nothing), then the options given;
    ``sci_mode`` is set at every call (None: chosen from the values)."""
    o = PRINT_OPTS
    if profile in _PROFILES:
        o.precision, o.threshold, o.edgeitems, o.linewidth = _PROFILES[profile]
    if precision is not None:
        o.precision = precision
    if threshold is not None:
        o.threshold = threshold
    if edgeitems is not None:
        o.edgeitems = edgeitems
    if linewidth is not None:
        o.linewidth = linewidth
    o.sci_mode = sci_mode


def get_printoptions():
    """The options as a dict that ``set_printoptions(**d)`` takes."""
    return {k: getattr(PRINT_OPTS, k) for k in _PrintOptions.__slots__}


@contextlib.contextmanager
def printoptions(**kwargs):
    """Print options set for a ``with`` block, restored after it."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


_PREFIX = "tensor("

# Dtype meant by dtype_name=None, per NumPy kind.
_DEFAULT_DTYPES = {"f": "float32", "i": "int64", "b": "bool"}


def format_tensor(values, dtype_name=None, suffixes=()):
    """Return PyTorch's repr of a tensor holding ``values`` (a NumPy array).

    ``dtype_name`` is None for the default dtype of the values' kind
    (float32, int64, bool), else e.g. "float64". ``suffixes`` are extra
    "key=value" strings appended in order, e.g. ("grad_fn=<MulBackward0>",).
    """
    values = np.asarray(values)
    indent = len(_PREFIX)
    extra = []
    if values.size == 0:
        # Empty: the shape is shown unless 1-d, and the dtype unless it is
        # float32 (even int64/bool: no element reveals the kind).
        if values.ndim != 1:
            extra.append("size=" + str(tuple(int(n) for n in values.shape)))
        name = dtype_name or _DEFAULT_DTYPES.get(values.dtype.kind, values.dtype.name)
        if name != "float32":
            extra.append("dtype=tapegrad." + name)
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:        # (torch shows the size when it shows no item)
            extra.append("size=" + str(tuple(int(n) for n in values.shape)))
        # Non-empty: the dtype is shown unless float32, int64 or bool.
        if dtype_name not in (None, "float32", "int64", "bool"):
            extra.append("dtype=tapegrad." + dtype_name)
        summarize = values.size > PRINT_OPTS.threshold
        formatter = _Formatter(_summarized(values) if summarize else values)
        body = _tensor_str(values, indent, summarize, formatter)
    return _add_suffixes(_PREFIX + body, extra + list(suffixes), indent)


def _shown_indices(n):
    """Indices along a summarized dimension: all, or the edge items."""
    e = PRINT_OPTS.edgeitems
    if n > 2 * e:
        return list(range(e)) + list(range(n - e, n))
    return list(range(n))


def _summarized(values):
    """The elements that a summarized print shows (they set the formatting)."""
    if values.ndim == 0:
        return values
    if values.ndim == 1 and not PRINT_OPTS.edgeitems:
        return values           # torch's self[-0:]: every element (none is shown)
    return values[np.ix_(*[_shown_indices(n) for n in values.shape])]


class _Formatter:
    """One number format shared by every element, so that columns align."""

    def __init__(self, values):
        self.floating = values.dtype.kind == "f"
        self.int_mode = True  # floats that are all whole print as "2."
        self.sci_mode = False
        self.width = 1
        self.precision = PRINT_OPTS.precision
        flat = values.reshape(-1)
        if not self.floating:
            # ints and bools: width of the longest str(), e.g. "False"
            self.width = max([1] + [len(str(v)) for v in flat.tolist()])
            return
        # Modes and width are decided by the nonzero finite values only.
        nonzero = flat[np.isfinite(flat) & (flat != 0)]
        if nonzero.size == 0:
            return
        self.int_mode = bool(np.all(nonzero == np.ceil(nonzero)))
        magnitudes = np.abs(nonzero).astype(np.float64)
        lo, hi = float(magnitudes.min()), float(magnitudes.max())
        # Scientific when the range is wide, or values very large or very small (or as
        # the print options say).
        self.sci_mode = (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) \
            if PRINT_OPTS.sci_mode is None else bool(PRINT_OPTS.sci_mode)
        for v in nonzero.tolist():  # float32 -> exact Python float, as torch's .item()
            if self.sci_mode:
                text = f"{v:.{self.precision}e}"
            elif self.int_mode:
                text = f"{v:.0f}."
            else:
                text = f"{v:.{self.precision}f}"
            self.width = max(self.width, len(text))

    def format(self, v):
        """Format one Python scalar, right-aligned to the common width."""
        if not self.floating:
            text = str(v)
        elif self.sci_mode:
            text = f"{v:.{self.precision}e}"
        elif self.int_mode:
            # whole numbers get a trailing "." ("-0." too); nan/inf do not
            text = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            text = f"{v:.{self.precision}f}"
        return text.rjust(self.width)


def _tensor_str(values, indent, summarize, formatter):
    """Nested brackets; ``indent`` is the column the opening "[" is at."""
    if values.ndim == 0:
        return formatter.format(values.item())
    n = values.shape[0]
    e = PRINT_OPTS.edgeitems
    cut = summarize and n > 2 * e
    if values.ndim == 1:
        fmt = formatter.format
        if summarize and not e:
            data = ["..."]
        elif cut:
            data = [fmt(v) for v in values[:e].tolist()] + [" ..."]
            data += [fmt(v) for v in values[-e:].tolist()]
        else:
            data = [fmt(v) for v in values.tolist()]
        # Wrap so a line holds floor((linewidth - indent) / (width + ", ")) items
        # (" ..." counts as an item); continuation lines align after the "[".
        per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / (formatter.width + 2)))
        lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = [_tensor_str(values[i], indent + 1, summarize, formatter)
            for i in (_shown_indices(n) if cut else range(n))]
    if cut:
        rows.insert(e, "...")
    # Sub-tensors are separated by ndim-1 newlines (a blank line between 2-d
    # blocks of a 3-d tensor) and indented one column past the "[".
    return "[" + ("," + "\n" * (values.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _add_suffixes(text, suffixes, indent):
    """Append ", key=value" items; one that does not fit goes on a new line."""
    # PyTorch measures the last line as two more than its real length
    # (len - rfind("\n") + 1); kept so that lines break exactly where torch's do.
    last_line_len = len(text) - text.rfind("\n") + 1
    parts = [text]
    for suffix in suffixes:
        # Measure "dtype=tapegrad.X" as torch's "dtype=torch.X", so the output
        # is torch's repr with only the dtype prefix renamed.
        size = len(suffix.replace("dtype=tapegrad.", "dtype=torch.", 1))
        if last_line_len + size + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + size
        else:
            parts.append(", " + suffix)
            last_line_len += size + 2
    return "".join(parts) + ")"
