"""``tg.autograd.profiler``: how many times each operation ran and how long it took.

    with tg.autograd.profiler.profile() as prof:
        loss = model(x)
        loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

While a profile is active, the Tensor methods and the functions of ``tg``,
``tg.nn.functional``, ``tg.linalg`` and ``tg.autograd`` (``backward``, ``grad``) are
replaced by timing wrappers; leaving the ``with`` block puts the originals back. The core
knows nothing of the profiler, so it costs nothing when no profile runs. Events are
recorded on the thread that entered the profile; an operation called inside another (``matmul``
calling ``mm``) is its child: its time counts in the parent's total, not in its self time.
A backward is one event (``tapegrad::backward``): tapegrad runs it as one jitted sweep,
not node by node.

Names are ``tapegrad::<op>`` (PyTorch's are ``aten::<op>``); the table is laid out as
PyTorch's.
"""
import contextlib
import functools
import threading
import time
import types

_active = [None]           # the running profile (one at a time)

# Operators, by the name of the operation they run (reflected ones run the same operation)
_DUNDER = {
    "__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub",
    "__rsub__": "rsub", "__isub__": "sub_", "__mul__": "mul", "__rmul__": "mul",
    "__imul__": "mul_", "__truediv__": "div", "__rtruediv__": "div", "__itruediv__": "div_",
    "__pow__": "pow", "__rpow__": "pow", "__matmul__": "matmul", "__rmatmul__": "matmul",
    "__neg__": "neg", "__abs__": "abs", "__getitem__": "index", "__setitem__": "index_put_",
    "__eq__": "eq", "__ne__": "ne", "__lt__": "lt", "__le__": "le", "__gt__": "gt",
    "__ge__": "ge",
}
# Functions of the tg namespace that are not operations
_NOT_OPS = {"compile", "manual_seed", "is_grad_enabled", "is_tensor"}


class FunctionEvent:
    """One timed call (times in microseconds, as PyTorch's)."""

    def __init__(self, name, start_us, end_us, children_us, input_shapes=None):
        self.key = self.name = name
        self.count = 1
        self.cpu_time_total = end_us - start_us
        self.self_cpu_time_total = self.cpu_time_total - children_us
        self.input_shapes = input_shapes
        self.time_range = (start_us, end_us)

    @property
    def cpu_time(self):
        """The average time of a call."""
        return self.cpu_time_total / self.count if self.count else 0.0

    # PyTorch's device and memory columns: there is no device, and memory is not measured
    device_time_total = self_device_time_total = device_time = 0.0
    cpu_memory_usage = self_cpu_memory_usage = 0
    cuda_time_total = self_cuda_time_total = 0.0

    def __repr__(self):
        return (f"<FunctionEvent {self.key} count={self.count} "
                f"cpu_time_total={_format_time(self.cpu_time_total)}>")


class FunctionEventAvg(FunctionEvent):
    """The events of one name (and input shapes, when grouped by them) added up."""

    def __init__(self, key, input_shapes=None):
        self.key = self.name = key
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0
        self.input_shapes = input_shapes

    def add(self, event):
        self.count += event.count
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        return self


class EventList(list):
    """A list of events that prints as PyTorch's profiler table."""

    def key_averages(self, group_by_input_shape=False):
        groups = {}
        for e in self:
            shapes = str(e.input_shapes) if group_by_input_shape else None
            key = (e.key, shapes)
            if key not in groups:
                groups[key] = FunctionEventAvg(e.key, e.input_shapes if shapes else None)
            groups[key].add(e)
        return EventList(groups.values())

    def total_average(self):
        total = FunctionEventAvg("Total")
        for e in self:
            total.add(e)
        return total

    @property
    def self_cpu_time_total(self):
        return sum(e.self_cpu_time_total for e in self)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75,
              max_name_column_width=55, max_shapes_column_width=80, header=None,
              top_level_events_only=False, time_unit=None):
        return _table(self, sort_by, row_limit, max_name_column_width,
                      max_shapes_column_width, header, time_unit)

    def __str__(self):
        return self.table()


class profile:
    """Records the operations run inside ``with profile() as prof:`` (PyTorch's
    ``torch.autograd.profiler.profile``; CUDA, memory and FLOP options record nothing)."""

    def __init__(self, enabled=True, *, use_cuda=False, use_device=None, record_shapes=False,
                 with_flops=False, profile_memory=False, with_stack=False, with_modules=False,
                 use_kineto=False, use_cpu=True, **kwargs):
        self.enabled = enabled
        self.record_shapes = record_shapes
        self.function_events = EventList()
        self._thread = None
        self._stack = []           # [name, children time] of the calls running now
        self._patches = []         # (owner, name, original or _MISSING)

    def __enter__(self):
        if not self.enabled:
            return self
        if _active[0] is not None:
            raise RuntimeError("tapegrad: a profile is already running (profiles do not nest)")
        _active[0] = self
        self._thread = threading.current_thread()
        self._patch()
        return self

    def __exit__(self, *exc):
        if self.enabled and _active[0] is self:
            for owner, name, original in reversed(self._patches):
                if original is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self._patches = []
            _active[0] = None
        return False

    # ----- what the user reads -------------------------------------------------------
    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        return self.function_events.key_averages(group_by_input_shape)

    def total_average(self):
        return self.function_events.total_average()

    @property
    def self_cpu_time_total(self):
        return self.function_events.self_cpu_time_total

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75,
              max_name_column_width=55, max_shapes_column_width=80, header=None,
              top_level_events_only=False):
        return self.function_events.table(sort_by, row_limit, max_src_column_width,
                                          max_name_column_width, max_shapes_column_width,
                                          header, top_level_events_only)

    def __str__(self):
        return str(self.function_events)

    # ----- recording ------------------------------------------------------------------
    def _record(self, name, fn, args, kwargs):
        """Calls fn, timing it as an event named ``name`` (not when it runs inside a call
        of the same name: tg.exp(x) calling x.exp() is one event)."""
        stack = self._stack
        if threading.current_thread() is not self._thread or (stack and stack[-1][0] == name):
            return fn(*args, **kwargs)
        frame = [name, 0.0]
        stack.append(frame)
        start = time.perf_counter_ns() / 1000.0
        try:
            return fn(*args, **kwargs)
        finally:
            end = time.perf_counter_ns() / 1000.0
            stack.pop()
            if stack:
                stack[-1][1] += end - start
            shapes = _shapes(args) if self.record_shapes else None
            self.function_events.append(FunctionEvent(name, start, end, frame[1], shapes))

    def _wrap(self, owner, attr, name, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            return self._record(name, fn, args, kwargs)
        self._patches.append((owner, attr, owner.__dict__.get(attr, _MISSING)))
        setattr(owner, attr, timed)

    def _patch(self):
        import tapegrad
        from ..nn import functional as nnf
        from ..tensor import Tensor
        from .. import engine, linalg
        seen = {}
        for klass in reversed(Tensor.__mro__[:-1]):     # a method Tensor overrides: its own
            for attr, fn in vars(klass).items():
                if isinstance(fn, types.FunctionType):
                    seen[attr] = fn
        for attr, fn in seen.items():
            name = _DUNDER.get(attr, None if attr.startswith("_") else attr)
            if name is not None:
                self._wrap(Tensor, attr, "tapegrad::" + name, fn)
        for module, prefix in ((tapegrad, ""), (nnf, "nn.functional."), (linalg, "linalg.")):
            for attr, fn in list(vars(module).items()):
                if isinstance(fn, types.FunctionType) and not attr.startswith("_") \
                        and attr not in _NOT_OPS and (module is tapegrad or
                                                      fn.__module__ == module.__name__):
                    self._wrap(module, attr, f"tapegrad::{prefix}{attr}", fn)
        for attr in ("backward", "grad"):     # tg.autograd's and Tensor.backward's engine
            self._wrap(engine, attr, f"tapegrad::autograd.{attr}", getattr(engine, attr))


class _Missing:
    """Marks an attribute the class inherited (deleted again on exit, not set)."""


_MISSING = _Missing()


class record_function(contextlib.ContextDecorator):
    """A user-named event around a block (or a decorated function) in the running profile."""

    def __init__(self, name, args=None):
        self.name = name
        self._start = None

    def __enter__(self):
        prof = _active[0]
        if prof is not None and threading.current_thread() is prof._thread:
            prof._stack.append([self.name, 0.0])
            self._start = time.perf_counter_ns() / 1000.0
        return self

    def __exit__(self, *exc):
        prof = _active[0]
        if self._start is not None and prof is not None:
            end = time.perf_counter_ns() / 1000.0
            name, children = prof._stack.pop()
            if prof._stack:
                prof._stack[-1][1] += end - self._start
            prof.function_events.append(FunctionEvent(name, self._start, end, children))
            self._start = None
        return False


def _shapes(args):
    return [list(a.shape) if hasattr(a, "shape") and hasattr(a, "_v") else [] for a in args]


# ----- the table, as PyTorch prints it ----------------------------------------------------------
def _format_time(us):
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _format_time_in(us, unit):
    if unit == "s":
        return f"{us / 1e6:.3f}s"
    if unit == "ms":
        return f"{us / 1e3:.3f}ms"
    if unit == "us":
        return f"{us:.3f}us"
    return _format_time(us)


def _share(us, total):
    return "NaN" if total == 0 else f"{us * 100.0 / total:.2f}%"


def _table(events, sort_by, row_limit, max_name, max_shapes, header, time_unit):
    """Name, Self CPU %, Self CPU, CPU total %, CPU total, CPU time avg, # of Calls (and
    Input Shapes when recorded), then the total self time."""
    if not events:
        return ""
    if sort_by is not None:
        attr = sort_by.replace("cuda", "device").replace("xpu", "device")
        events = sorted(events, key=lambda e: getattr(e, attr), reverse=True)
    name_width = min(max(len(e.key) for e in events) + 4, max_name)
    shapes = any(e.input_shapes for e in events)
    widths = [name_width] + [12] * 6
    headers = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg",
               "# of Calls"]
    if shapes:
        widths.append(min(max(len(str(e.input_shapes)) for e in events) + 4, max_shapes))
        headers.append("Input Shapes")
    row = "".join("{: >" + str(w) + "}  " for w in widths)
    sep = "".join("-" * w + "  " for w in widths)
    total = sum(e.self_cpu_time_total for e in events)
    lines = []
    if header is not None:
        lines += ["=" * (sum(widths) + 2 * len(widths) - 2), header]
    lines += [sep, row.format(*headers), sep]
    for e in events[:row_limit]:
        name = e.key if len(e.key) < max_name - 3 else e.key[:max_name - 3] + "..."
        values = [name, _share(e.self_cpu_time_total, total),
                  _format_time_in(e.self_cpu_time_total, time_unit),
                  _share(e.cpu_time_total, total), _format_time_in(e.cpu_time_total, time_unit),
                  _format_time_in(e.cpu_time, time_unit), e.count]
        if shapes:
            values.append(str(e.input_shapes)[:max_shapes])
        lines.append(row.format(*values))
    lines += [sep, f"Self CPU time total: {_format_time_in(total, time_unit)}"]
    return "\n".join(lines) + "\n"
