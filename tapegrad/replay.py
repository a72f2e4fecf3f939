"""Record once, run many: ``tg.compile(fn)`` replays a recorded tape at new inputs.

The first call for a signature (shapes, dtypes, which inputs require grad, Python
arguments) runs ``fn`` eagerly on a private tape that keeps every value. Later calls write
the new input values into a copy of the tape's value buffers, recompute every record with
one jitted forward sweep, check the recording's guards, and hand out tensors whose
``backward()`` runs the reverse sweep over those buffers. Each call has its own buffers, so
a tensor from an earlier call keeps its values and its graph.

Guards: when ``fn`` turns a tensor into a Python value while recording (``item()``,
``bool()``, ``float()``, ``int()``, ``tolist()``, ``numpy()``, a tensor used as an index),
the recording keeps the value; a replay that computes another value records again instead
of returning the result of a path the new values would not take (CppAD's
``compare_change``, ADOL-C's retaping).
"""
import collections
import functools

import numpy as np

from .layout import ND, SHAPE, value_of
from .ops import BY_CODE, SCALAR, node_name
from .state import thread_state
from .tape import Tape
from .tensor import Tensor, _array, _cell, _new, _shape


class Recording:
    """One recorded call: the frozen tape, where the inputs and outputs sit on it, guards."""

    def __init__(self):
        self.tape = Tape()
        self.tape.keep_all = True
        self.inputs = []        # (argument index, slot) of each tensor argument
        self.captured = []      # (tensor, slot, version) of tensors fn reached by itself
        self.guards = []        # (slot, kind, value) of tensor values fn turned into Python
        self.output = None      # fn's return value, with tensors replaced by _Out markers
        self.requires = None    # per record: does a gradient reach it from a real leaf
        self.names = []         # (namespace, key, tensor): how fn reached captured tensors
        self.scalar_inputs = None   # (argument indices, rows) of Python-float inputs
        self.arrays = None      # R, sv, m, M, av, gsize after recording

    # ----- recording ---------------------------------------------------------------------
    def record(self, fn, args, kwargs):
        st = thread_state()
        saved_tape, saved_rec = st.tape, st.recording
        st.tape, st.recording = self.tape, self
        try:
            call_args = [_proxy(a) for a in args]
            result = fn(*call_args, **kwargs)
        finally:
            st.tape, st.recording = saved_tape, saved_rec
        tape = self.tape
        for i, (a, p) in enumerate(zip(args, call_args)):
            if isinstance(a, Tensor):
                slot = _slot_of(p, tape)
                if slot >= 0:
                    self.inputs.append((i, slot))
        arg_ids = {id(a) for a in args} | {id(p) for p in call_args}
        for slot, node in list(tape.leaves.items()):
            t = node.variable
            if t is not None and id(t) not in arg_ids:
                self.captured.append((t, slot, _cell(t)[0]))
        for slot, t in tape.consts.items():
            if id(t) not in arg_ids:
                self.captured.append((t, slot, _cell(t)[0]))
        tape.consts = {}
        self.names = _named_captures(fn, {id(t) for t, _, _ in self.captured})
        self.output = _mark_outputs(result, tape)
        self.arrays = tape.freeze()
        self.requires = _real_requires(tape, self.arrays[0],
                                       {s for i, s in self.inputs if args[i].requires_grad}
                                       | {s for t, s, _ in self.captured if t._rg})
        # The first call's results are built as every replay's are: inside the recording
        # every tensor was tracked, but only what depends on a real leaf requires grad.
        out = self.replay(args)
        return result if out is None else out

    # ----- replaying ---------------------------------------------------------------------
    def replay(self, args):
        """The outputs at new input values, or None when a guard fails."""
        from .replay_kernels import forward
        R, sv0, m, M, av0, gsize = self.arrays
        sv, av = sv0.copy(), av0.copy()
        if self.scalar_inputs is None:
            self._split_inputs(m)
        idx, rows = self.scalar_inputs          # Python-float inputs: one vectorized write
        if idx:
            sv[rows] = [args[i]._v for i in idx]
        leaves = {}
        for i, slot in self.inputs:
            a = args[i]
            if m[slot // 5] >= 0:
                _write(a, slot, m, M, sv, av)
            if a._rg and a._tape is None:
                node = a._node
                leaves[slot] = node if node is not None else _leaf_node(a)
        for t, slot, _ in self.captured:
            _write(t, slot, m, M, sv, av)
            if t._rg and t._tape is None:
                leaves[slot] = _leaf_node(t)
        forward(R, sv, m, M, av, 0, R.shape[0])
        for slot, kind, value in self.guards:
            if not _same(value_of(slot, m, M, sv, av), kind, value):
                return None
        tape = ReplayTape(self, (R, sv, m, M, av, gsize), leaves)
        for i, slot in self.inputs:             # an input changed in place before backward
            a = args[i]
            if m[slot // 5] >= 0:
                tape.saved.append((slot, slot, _cell(a), _cell(a)[0], a._v, None))
        return _build_outputs(self.output, tape, self.requires, m, M, sv, av)

    def _split_inputs(self, m):
        """Which inputs are Python-float scalars (written together) and their rows."""
        pairs = [(i, slot // 5) for i, slot in self.inputs if m[slot // 5] < 0]
        self.scalar_inputs = ([i for i, _ in pairs], np.array([r for _, r in pairs], np.int64))

    def valid(self):
        """False when a name fn read a captured tensor from now holds another object:
        the recording would use the old tensor, so record again."""
        for space, key, t in self.names:
            now = space.cell_contents if key is None else space.get(key)
            if now is not t:
                return False
        return True

    def listing(self):
        """The recorded tape, one record a line (like jax.make_jaxpr)."""
        R, sv, m, M, av, _ = self.arrays
        names = {s: f"in{i}" for i, s in self.inputs}
        names.update({s: f"cap{j}" for j, (_, s, _) in enumerate(self.captured)})
        lines = []
        for r in range(R.shape[0]):
            op = int(R[r, 0]) % SCALAR
            a, b = int(R[r, 1]), R[r, 2]
            shape = tuple(int(d) for d in M[m[r], SHAPE:SHAPE + M[m[r], ND]]) if m[r] >= 0 else ()
            row = BY_CODE[op]
            if row.family == "source":
                what = f"{row.name} {names.get(5 * r, '')}".rstrip()
            else:
                args_ = [f"%{a // 5}" if a >= 0 else repr(R[r, 3])]
                if row.arity == 2:
                    args_.append(f"%{int(b) // 5}" if b >= 0 else repr(R[r, 3]))
                what = f"{row.name}({', '.join(args_)})"
                if node_name(op, a, -1):
                    what += f"  # {node_name(op, a, -1)}"
            lines.append(f"%{r} = {what} : {list(shape)}")
        return "\n".join(lines)


class ReplayTape(Tape):
    """The tape of one replayed call: the recording's records with this call's values."""

    def __init__(self, recording, arrays, leaves):
        super().__init__()
        src = recording.tape
        self.rec, self.multi, self.links = src.rec, src.multi, src.links
        self.leaves = leaves
        self._arrays = arrays

    def freeze(self):
        R, sv, m, M, av, gsize = self._arrays
        return R, sv, m, M, av, gsize

    def free(self, reach, R):
        super().free(reach, R)
        if self.freed is True:
            self._arrays = None


class _Out:
    """Where a tensor of fn's result sits: its slot and dtype."""
    __slots__ = ("slot", "dtype", "scalar", "shape", "value")

    def __init__(self, t, tape):
        self.slot = _slot_of(t, tape)
        self.dtype = t._dtype
        self.scalar = type(t._v) is float
        self.shape = _shape(t)
        self.value = None if self.slot >= 0 else _array(t).copy()   # made from no input


def _mark_outputs(result, tape):
    if isinstance(result, Tensor):
        return _Out(result, tape)
    if isinstance(result, (tuple, list)):
        return type(result)(_mark_outputs(r, tape) for r in result)
    if isinstance(result, dict):
        return {k: _mark_outputs(v, tape) for k, v in result.items()}
    return result


def _build_outputs(marked, tape, requires, m, M, sv, av):
    if isinstance(marked, _Out):
        if marked.slot < 0:
            return _new(marked.value.copy() if not marked.scalar else float(marked.value),
                        marked.dtype)
        value = value_of(marked.slot, m, M, sv, av)
        if marked.scalar:
            v = float(value[0])
        else:
            v = np.array(value.reshape(marked.shape), marked.dtype.np)
        out = _new(v, marked.dtype)
        r = marked.slot // 5
        if requires[r]:
            out._rg = True
            out._tape = tape
            out._slot = marked.slot
        return out
    if isinstance(marked, (tuple, list)):
        return type(marked)(_build_outputs(x, tape, requires, m, M, sv, av) for x in marked)
    if isinstance(marked, dict):
        return {k: _build_outputs(v, tape, requires, m, M, sv, av) for k, v in marked.items()}
    return marked


def _proxy(a):
    """A tensor argument as fn sees it while recording: leaves that require grad as they
    are; any other tensor as a stand-in leaf, so the ops on it are recorded too."""
    if not isinstance(a, Tensor):
        return a
    if a._rg and a._tape is None:
        return a
    p = _new(a._v, a._dtype, a._dtype.is_floating_point)
    p._ver = _cell(a)
    return p


def _slot_of(t, tape):
    if t._tape is tape:
        return t._slot
    node = t._node
    if t._tape is None and node is not None and node.tape_id == tape.id:
        return node.slot
    return -1


def _leaf_node(t):
    from .engine import _leaf_node as make
    return make(t)


def _write(t, slot, m, M, sv, av):
    """Writes tensor t's current value into its source record."""
    value_of(slot, m, M, sv, av)[:] = np.ravel(_array(t))


def _same(value, kind, recorded):
    if kind == "argext":                   # the arg-extremes of max(dim)/min(dim)
        largest, d, shape, arg = recorded
        v = value.reshape(shape)
        return np.array_equal((np.argmax if largest else np.argmin)(v, axis=d, keepdims=True)
                              if v.ndim else np.zeros((), np.int64), arg)
    if kind == "bool":
        return bool(value[0]) == recorded
    return np.array_equal(value, recorded)


def _real_requires(tape, R, sources):
    """Per record: does it depend on a leaf that really requires grad (not a stand-in)?"""
    n = R.shape[0]
    req = np.zeros(n, bool)
    for s in sources:
        req[s // 5] = True
    ops = (R[:, 0] % SCALAR).astype(np.int64)
    for r in range(n):
        row = BY_CODE[ops[r]]
        if row.family in ("source", "compare"):
            continue
        if row.arity < 0:
            req[r] = any(req[s // 5] for s in tape.multi[5 * r])
            continue
        a = int(R[r, 1])
        hit = a >= 0 and req[a // 5]
        if row.arity == 2:
            b = int(R[r, 2])
            hit = hit or (b >= 0 and req[b // 5])
        req[r] = hit
    return req


class Compiled:
    """``tg.compile(fn)``: call it as fn; see the module docstring."""

    def __init__(self, fn, cache_size=8):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.cache_size = cache_size
        self.recordings = collections.OrderedDict()
        self.counts = collections.Counter()

    def __call__(self, *args, **kwargs):
        st = thread_state()
        key = _signature(args, kwargs, st.enabled)
        if key is None or not st.enabled or st.recording is not None:
            self.counts["eager"] += 1
            return self.fn(*args, **kwargs)     # nothing to replay: run it as it is
        rec = self.recordings.get(key)
        if rec is not None and rec.valid():
            out = rec.replay(args)
            if out is not None:
                self.recordings.move_to_end(key)
                self.counts["replays"] += 1
                return out
            self.counts["guard_failures"] += 1
        rec = Recording()
        result = rec.record(self.fn, args, kwargs)
        self.counts["recordings"] += 1
        self.recordings[key] = rec
        self.recordings.move_to_end(key)
        while len(self.recordings) > self.cache_size:
            self.recordings.popitem(last=False)
        return result

    def stats(self):
        """Recordings made, replays, guard failures, and per kept recording its records,
        guards and bytes of tape (records + values)."""
        kept = []
        for rec in self.recordings.values():
            R, sv, m, M, av, gsize = rec.arrays
            kept.append({"records": R.shape[0], "guards": len(rec.guards),
                         "inputs": len(rec.inputs), "captured": len(rec.captured),
                         "bytes": R.nbytes + sv.nbytes + m.nbytes + M.nbytes + av.nbytes
                         + 8 * gsize})
        return {"recordings": self.counts["recordings"], "replays": self.counts["replays"],
                "guard_failures": self.counts["guard_failures"],
                "eager_calls": self.counts["eager"], "kept": kept}

    def listing(self, index=-1):
        """The tape of a kept recording (the latest by default), one record a line."""
        return list(self.recordings.values())[index].listing()


def _named_captures(fn, ids):
    """The closure cells and globals of fn that hold captured tensors."""
    found = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if id(v) in ids:
            found.append((cell, None, v))
    g = getattr(fn, "__globals__", {})
    for name in getattr(getattr(fn, "__code__", None), "co_names", ()):
        v = g.get(name)
        if id(v) in ids:
            found.append((g, name, v))
    return found


def _signature(args, kwargs, enabled):
    """What a recording is specific to; None when an argument cannot be keyed."""
    parts = []
    try:
        for a in list(args) + sorted(kwargs.items()):
            if isinstance(a, Tensor):
                parts.append(("T", _shape(a), a._dtype.name, a._rg, a._tape is None,
                              type(a._v) is float))
            else:
                hash(a)
                parts.append(("V", type(a).__name__, a))
    except TypeError:
        return None
    return (enabled, tuple(parts))


def compile(fn=None, *, cache_size=8):  # noqa: A001 (the name users expect, like torch)
    """Record ``fn`` once per signature and replay it at new inputs (see tapegrad.replay)."""
    if fn is None:
        return lambda f: Compiled(f, cache_size)
    return Compiled(fn, cache_size)

