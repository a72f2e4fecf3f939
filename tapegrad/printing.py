"""PyTorch-compatible ``repr`` for tapegrad tensors.

``format_tensor`` reproduces what PyTorch 2.x's ``repr(tensor)`` prints with the
default print options (torch/_tensor_str.py), except that dtypes print as
``tapegrad.<name>`` instead of ``torch.<name>``.
"""

import math

import numpy as np

_PRECISION = 4  # digits after the point (fixed) or in the mantissa (scientific)
_THRESHOLD = 1000  # summarize with "..." when numel > threshold
_EDGEITEMS = 3  # items kept at each end of a summarized dimension
_LINEWIDTH = 80
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
        # Non-empty: the dtype is shown unless float32, int64 or bool.
        if dtype_name not in (None, "float32", "int64", "bool"):
            extra.append("dtype=tapegrad." + dtype_name)
        summarize = values.size > _THRESHOLD
        formatter = _Formatter(_summarized(values) if summarize else values)
        body = _tensor_str(values, indent, summarize, formatter)
    return _add_suffixes(_PREFIX + body, extra + list(suffixes), indent)


def _shown_indices(n):
    """Indices along a summarized dimension: all, or the edge items."""
    if n > 2 * _EDGEITEMS:
        return list(range(_EDGEITEMS)) + list(range(n - _EDGEITEMS, n))
    return list(range(n))


def _summarized(values):
    """The elements that a summarized print shows (they set the formatting)."""
    if values.ndim == 0:
        return values
    return values[np.ix_(*[_shown_indices(n) for n in values.shape])]


class _Formatter:
    """One number format shared by every element, so that columns align."""

    def __init__(self, values):
        self.floating = values.dtype.kind == "f"
        self.int_mode = True  # floats that are all whole print as "2."
        self.sci_mode = False
        self.width = 1
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
        # Scientific when the range is wide, or values very large or very small.
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        for v in nonzero.tolist():  # float32 -> exact Python float, as torch's .item()
            if self.sci_mode:
                text = f"{v:.{_PRECISION}e}"
            elif self.int_mode:
                text = f"{v:.0f}."
            else:
                text = f"{v:.{_PRECISION}f}"
            self.width = max(self.width, len(text))

    def format(self, v):
        """Format one Python scalar, right-aligned to the common width."""
        if not self.floating:
            text = str(v)
        elif self.sci_mode:
            text = f"{v:.{_PRECISION}e}"
        elif self.int_mode:
            # whole numbers get a trailing "." ("-0." too); nan/inf do not
            text = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            text = f"{v:.{_PRECISION}f}"
        return text.rjust(self.width)


def _tensor_str(values, indent, summarize, formatter):
    """Nested brackets; ``indent`` is the column the opening "[" is at."""
    if values.ndim == 0:
        return formatter.format(values.item())
    n = values.shape[0]
    cut = summarize and n > 2 * _EDGEITEMS
    if values.ndim == 1:
        fmt = formatter.format
        if cut:
            data = [fmt(v) for v in values[:_EDGEITEMS].tolist()] + [" ..."]
            data += [fmt(v) for v in values[-_EDGEITEMS:].tolist()]
        else:
            data = [fmt(v) for v in values.tolist()]
        # Wrap so a line holds floor((linewidth - indent) / (width + ", ")) items
        # (" ..." counts as an item); continuation lines align after the "[".
        per_line = max(1, (_LINEWIDTH - indent) // (formatter.width + 2))
        lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = [_tensor_str(values[i], indent + 1, summarize, formatter)
            for i in (_shown_indices(n) if cut else range(n))]
    if cut:
        rows.insert(_EDGEITEMS, "...")
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
        if last_line_len + size + 2 > _LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + size
        else:
            parts.append(", " + suffix)
            last_line_len += size + 2
    return "".join(parts) + ")"
