"""Record once, run many: ``tg.compile(fn)`` replays a recorded tape at new inputs.

The first call for a signature (shapes, dtypes, which inputs require grad, Python
arguments) runs ``fn`` eagerly on a private tape that keeps every value and records every
operation on tensors (``state.recording_active``). That tape becomes a ``Program``
(``replay_program``): its values laid out in one arena, its tables pointing there. Later
calls allocate an arena, write the inputs into it (arguments and the tensors ``fn`` reads
from outside, read again at every call), recompute every record with one jitted forward
sweep, check the recording's guards, and hand out tensors whose ``backward()`` runs the
reverse sweep over that arena (``replay_tape``). Each call has its own arena, so a tensor
from an earlier call keeps its values and its graph.

Guards: when ``fn`` turns a tensor into a Python value while recording (``item()``,
``bool()``, ``float()``, ``int()``, ``tolist()``, ``numpy()``, a tensor used as an index,
max(dim)'s indices), the recording keeps the value; a replay that computes another value
records again instead of returning the result of a path the new values would not take
(CppAD's ``compare_change``, ADOL-C's retaping).
"""
import collections
import functools
import weakref
from operator import attrgetter, is_

import numpy as np

from .layout import CONST_A, CONST_B, GADDR, OPMASK, SCALAR, SHIFT
from .ops import BY_CODE, CONST, LEAF, LINK, NEEDS, node_name
from .recording import _INPLACE
from .state import thread_state
from .tape import Tape
from .tensor import Tensor, _array, _cell, _new, _shape

_node_of = attrgetter("_node")
_value_of = attrgetter("_v")
_float = float


class Recording:
    """One recorded call made a program: where its inputs and outputs sit, its guards."""

    def __init__(self):
        self.tape = Tape()
        self.tape.keep_all = True
        self.guards = []        # (slot, kind, value) of tensor values fn turned into Python
        self.program = None
        self.names = []         # (namespace, key, tensor): how fn reached captured tensors

    # ----- recording ---------------------------------------------------------------------
    def record(self, fn, args, kwargs):
        self.fn = fn
        st = thread_state()
        saved_tape, saved_rec = st._tape, st.recording
        st.tape, st.recording = self.tape, self
        try:
            result = fn(*args, **kwargs)
        finally:
            st.recording = saved_rec
            st.tape = saved_tape() if saved_tape is not None else None
        self._compile(args, result)
        # The first call's results are built as every replay's are: inside the recording
        # every tensor was tracked, but only what depends on a real leaf requires grad.
        out = self.replay(args)
        return result if out is None else out

    def _compile(self, args, result):
        from .replay_program import Program
        tape = self.tape
        P = self.program = Program(tape)
        heads = P.rec.view(np.int64)[0::3]
        # every source: an argument, a tensor fn reached itself (captured: read again at
        # every call), or a constant (a tensor fn made, gone since: its recorded value)
        by_slot = {}
        for s in P.sources.tolist():
            op = int(heads[s]) & OPMASK
            if op == LEAF:
                by_slot[s] = tape.leaf_nodes[int(heads[s]) >> SHIFT].variable
            else:
                by_slot[s] = tape.consts.get(s)
        tape.consts = {}
        arg_of = {id(a): i for i, a in enumerate(args) if isinstance(a, Tensor)}
        arg_in, cap_in, const_in = [], [], []
        for s, t in by_slot.items():
            if t is not None and id(t) in arg_of:
                arg_in.append((s, arg_of[id(t)]))
            elif t is not None:
                cap_in.append((s, t))
            elif not heads[s] & SCALAR:
                const_in.append((s, P.kept_sources[s]))
        del by_slot
        self.arg_in = [i for _, i in arg_in]
        self.cap_in = [t for _, t in cap_in]
        self.const_vals = [v for _, v in const_in]
        self.islot = np.array([s for s, _ in arg_in] + [s for s, _ in cap_in]
                              + [s for s, _ in const_in], np.int64)
        self.n_in = len(arg_in) + len(cap_in)
        ins = [args[i] for i in self.arg_in] + self.cap_in
        self.scalar_in = [type(t._v) is _float for t in ins]
        self.arr_pos = [j for j, sc in enumerate(self.scalar_in) if not sc]
        self.in_shape = [None if sc else t._v.shape for t, sc in zip(ins, self.scalar_in)]
        self.in_dtype = [t._v.dtype if not sc else None for t, sc in zip(ins, self.scalar_in)]
        self.types = [type(t._v) for t in ins]
        self.leaf_pos = [j for j, s in enumerate(self.islot[:self.n_in].tolist())
                         if int(heads[s]) & OPMASK == LEAF]
        self.link_pos = [j for j, s in enumerate(self.islot[:self.n_in].tolist())
                         if int(heads[s]) & OPMASK == LINK and j < len(arg_in)]
        self.links = dict(tape.links)
        self.leaf_nodes = list(tape.leaf_nodes)
        from .replay_call import CODES
        self.icode = np.array([0 if sc else CODES[d] for sc, d in
                               zip(self.scalar_in, self.in_dtype)]
                              + [CODES[v.dtype] for v in self.const_vals], np.int64)
        # eager keeps these (consumer, input slot) values for backward: a call checks
        # that the user did not change them in place before backward, as eager does
        pos_of = {s: j for j, s in enumerate(self.islot[:self.n_in].tolist())}
        self.saved_in = [(c, s, pos_of[s]) for c, s in P.saved_pairs if s in pos_of]
        self.names = _named_captures(self.fn, {id(t) for t in self.cap_in})
        self.requires = P.requires(np.nonzero((heads & OPMASK == LEAF)
                                              | (heads & OPMASK == LINK))[0])
        self.output = _mark_outputs(result, tape, {id(a): i for i, a in enumerate(args)},
                                    self.requires)
        self.out_saved = {s for _, s in P.saved_pairs}
        self._guard_tables()
        self.binding = None
        self.scalar_rec = bool((heads & SCALAR).any())

    def _guard_tables(self):
        slots, kinds, pars, offs, vals = [], [], [], [], []
        at = 0
        for slot, kind, value in self.guards:
            if kind == "argext":
                largest, d, shape, arg = value
                outer = int(np.prod(shape[:d])) if shape else 1
                n = shape[d] if shape else 1
                inner = int(np.prod(shape[d + 1:])) if shape else 1
                v = np.ravel(arg).astype(np.float64)
                kinds.append(1 if largest else 2)
                pars.append((outer, n, inner))
            else:
                v = np.ravel(np.asarray(value)).astype(np.float64)
                kinds.append(0)
                pars.append((0, 0, 0))
            slots.append(slot)
            offs.append(at)
            vals.append(v)
            at += v.size
        self.gslot = np.array(slots, np.int64)
        self.gkind = np.array(kinds, np.int64)
        self.gpar = np.array(pars, np.int64).reshape(-1, 3)
        self.goff = np.array(offs, np.int64)
        self.gvals = np.concatenate(vals) if vals else np.zeros(0)

    # ----- replaying ---------------------------------------------------------------------
    def replay(self, args):
        """The outputs at new input values, or None when the inputs no longer fit the
        recording (a captured tensor changed shape) or a guard fails."""
        from .replay_call import DIRECT, guards_hold, store_inputs, store_inputs_py
        P = self.program
        ins = [args[i] for i in self.arg_in]
        ins += self.cap_in
        b = self.binding
        if b is None or not (all(map(is_, ins, b.ins))
                             and all(map(is_, map(_node_of, ins), b.nodes))):
            b = self._bind(ins)
        vals = list(map(_value_of, ins))
        if list(map(type, vals)) != self.types:
            return None
        last = b.vals
        for j in self.arr_pos:
            v = vals[j]
            if v is not last[j]:
                if v.shape != self.in_shape[j] or v.dtype != self.in_dtype[j]:
                    return None
                if not v.flags.c_contiguous:
                    vals[j] = np.ascontiguousarray(v)
                else:
                    last[j] = v
        vals += self.const_vals
        arena = np.empty(P.arena_size)
        rec = b.rec.copy() if self.scalar_rec else b.rec
        ptrs = P.pointers(arena)
        rq, rd = rec.view(np.int64), rec.view(np.float64)
        if DIRECT:
            store_inputs(rq, rd, P.ms, ptrs, np.fromiter(map(id, vals), np.int64, len(vals)),
                         self.islot, self.icode)
        else:
            store_inputs_py(rq, rd, P.ms, ptrs, arena, vals, self.islot)
        P.forward(rec, arena, ptrs)
        if len(self.gslot) and not guards_hold(rq, rd, P.ms, ptrs, self.gslot, self.gkind,
                                               self.gpar, self.goff, self.gvals):
            return None
        tape = None
        if self.output.requires:
            links = self.links
            if self.link_pos:
                links = dict(links)
                for j in self.link_pos:
                    t = ins[j]
                    links[int(self.islot[j])] = _TapeNode(t._tape, t._slot)
            saved = [(c, s, b.cells[j], b.cells[j][0], P.nptrs + n, None)
                     for n, (c, s, j) in enumerate(self.saved_in)]
            shown = [vals[j] for _, _, j in self.saved_in]
            tape = _replay_tape(P, b, rec, arena, ptrs, links, saved, shown, _INPLACE[0])
        return self.output.build(P, arena, rec, tape, args)

    def _bind(self, ins):
        """The leaves of these inputs: their grad cells and buffers written into copies
        of the records and dynamic rows, their nodes into the tape's leaf list."""
        from .engine import _leaf_node
        P = self.program
        b = _Binding()
        b.ins = list(ins)
        b.rec = P.rec.copy()
        b.dyn = P.dyn.copy()
        b.leaf_nodes = list(self.leaf_nodes)
        rq, rd = b.rec.view(np.int64), b.rec.view(np.float64)
        md = b.dyn.reshape(P.md.shape)
        for j in self.leaf_pos:
            t = ins[j]
            s = int(self.islot[j])
            node = _leaf_node(t)
            rd[3 * s + 1] = float(node.addr)
            k = P.row_of[s]
            if k >= 0:
                md[k, GADDR] = node.buf_addr
            b.leaf_nodes[int(rq[3 * s]) >> SHIFT] = node
        b.nodes = list(map(_node_of, ins))
        b.vals = [None] * len(ins)
        b.cells = [_cell(t) for t in ins]
        self.binding = b
        return b

    def valid(self):
        """False when a name fn read a captured tensor from now holds another object:
        the recording would use the old tensor, so record again."""
        for space, key, t in self.names:
            try:
                now = space.cell_contents if key is None else space[key]
            except (ValueError, KeyError):
                return False
            if now is not t:
                return False
        return True

    def listing(self):
        """The recorded tape, one record a line (like jax.make_jaxpr)."""
        return _listing(self)


class _Binding:
    """The leaves and inputs one run of calls is made with (see Recording._bind)."""
    __slots__ = ("ins", "nodes", "vals", "cells", "rec", "dyn", "leaf_nodes")


def _replay_tape(P, b, rec, arena, ptrs, links, saved, shown, epoch):
    from .replay_tape import ReplayTape
    return ReplayTape(P, b, rec, arena, ptrs, links, saved, shown, epoch)


def _TapeNode(tape, slot):
    from .graph import Node
    return Node(tape, slot)


# ----- outputs ---------------------------------------------------------------------------
class _Outputs:
    """fn's return value, with its tensors replaced by what a call gives back: a record's
    value (a view of the call's arena; a copy in its dtype when that is not float64), an
    argument (the call's), a tensor fn reached from outside (itself), or a tensor fn made
    from no input (a fresh copy of its value)."""

    def __init__(self, marked, requires):
        self.marked = marked
        self.requires = requires

    def build(self, P, arena, rec, tape, args):
        return _build(self.marked, P, arena, rec, tape, args, {})


def _mark_outputs(result, tape, arg_of, requires):
    any_grad = [False]

    def mark(x):
        if isinstance(x, Tensor):
            if x._tape is tape:
                rg = bool(requires[x._slot])
                any_grad[0] |= rg
                return ("slot", x._slot, x._dtype, rg)
            if id(x) in arg_of:
                return ("arg", arg_of[id(x)])
            node = x._node
            if x._tape is not None or (node is not None and node.tape_id == tape.id):
                return ("obj", x)
            return ("fresh", _array(x).copy(), x._dtype, type(x._v) is _float)
        if isinstance(x, (tuple, list)):
            return type(x)(mark(y) for y in x) if type(x) in (tuple, list) else \
                type(x)(*[mark(y) for y in x])
        if isinstance(x, dict):
            return {k: mark(v) for k, v in x.items()}
        return x
    marked = mark(result)
    return _Outputs(marked, any_grad[0])


def _build(m, P, arena, rec, tape, args, memo):
    if type(m) is tuple and m and type(m[0]) is str and m[0] in _KINDS:
        kind = m[0]
        if kind == "slot":
            _, slot, dt, rg = m
            out = memo.get(slot)
            if out is not None:
                return out
            v = P.value(arena, rec, slot)
            if type(v) is not _float and v.dtype != dt.np:
                v = v.astype(dt.np)
            elif type(v) is _float and not dt.is_floating_point:
                v = np.array(v, dt.np)
            out = _new(v, dt)
            if rg:
                out._rg = True
                out._tape = tape
                out._slot = slot
            memo[slot] = out
            return out
        if kind == "arg":
            return args[m[1]]
        if kind == "obj":
            return m[1]
        _, value, dt, scalar = m
        return _new(float(value) if scalar else value.copy(), dt)
    if isinstance(m, (tuple, list)):
        if type(m) in (tuple, list):
            return type(m)(_build(x, P, arena, rec, tape, args, memo) for x in m)
        return type(m)(*[_build(x, P, arena, rec, tape, args, memo) for x in m])
    if isinstance(m, dict):
        return {k: _build(v, P, arena, rec, tape, args, memo) for k, v in m.items()}
    return m


_KINDS = ("slot", "arg", "obj", "fresh")


# ----- the listing -----------------------------------------------------------------------
def _listing(recording):
    P = recording.program
    rq, rd = P.rec.view(np.int64), P.rec.view(np.float64)
    names = {}
    for j, s in enumerate(recording.islot.tolist()):
        if j < len(recording.arg_in):
            names[s] = f"in{recording.arg_in[j]}"
        elif j < recording.n_in:
            names[s] = f"cap{j - len(recording.arg_in)}"
    lines = []
    for r in range(P.nrec):
        h = int(rq[3 * r])
        op = h & OPMASK
        row = BY_CODE[op]
        a, c = h >> SHIFT, float(rd[3 * r + 1])
        if row.family == "source":
            what = f"{row.name} {names.get(r, '')}".rstrip()
        else:
            if row.arity < 0:
                args = [f"%{s}" for s in P.multi.get(r, ())]
            elif h & CONST_A:
                args = [repr(c), f"%{a}"]
            elif h & CONST_B or row.arity == 1:
                args = [f"%{a}"] + ([repr(c)] if row.arity == 2 or row.family ==
                                    "compare" else [])
            else:
                args = [f"%{a}", f"%{int(c)}"]
            what = f"{row.name}({', '.join(args)})"
            if row.node:
                what += f"  # {node_name(op, bool(h & CONST_A))}"
        lines.append(f"%{r} = {what} : {list(P.shape(r))}")
    return "\n".join(lines)


# ----- tg.compile ------------------------------------------------------------------------
class Compiled:
    """``tg.compile(fn)``: call it as fn; see the module docstring."""

    def __init__(self, fn, cache_size=8):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.cache_size = cache_size
        self.recordings = collections.OrderedDict()
        self.counts = collections.Counter()
        self._last = None       # (args, kwargs, key) of the last call: identity shortcut

    def __call__(self, *args, **kwargs):
        st = thread_state()
        if not st.enabled or st.recording is not None:
            self.counts["eager"] += 1
            return self.fn(*args, **kwargs)     # nothing to replay: run it as it is
        # the same tensors as the last call, in the same state: the same signature
        state = [(a._node, a._tape, a._rg) if isinstance(a, Tensor) else a for a in args]
        last = self._last
        if last is not None and not kwargs and len(args) == len(last[0]) \
                and all(map(is_, args, last[0])) and state == last[1]:
            key = last[2]
        else:
            key = _signature(args, kwargs)
            if key is None:
                self.counts["eager"] += 1
                return self.fn(*args, **kwargs)
        rec = self.recordings.get(key)
        if rec is not None and rec.valid():
            out = rec.replay(args)
            if out is not None:
                if next(reversed(self.recordings)) is not key:
                    self.recordings.move_to_end(key)
                self.counts["replays"] += 1
                self._last = (args, state, key) if not kwargs else None
                return out
            self.counts["guard_failures"] += 1
            key = _signature(args, kwargs)
        rec = Recording()
        result = rec.record(self.fn, args, kwargs)
        self.counts["recordings"] += 1
        self.recordings[key] = rec
        self.recordings.move_to_end(key)
        while len(self.recordings) > self.cache_size:
            self.recordings.popitem(last=False)
        self._last = (args, state, key) if not kwargs else None
        return result

    def stats(self):
        """Recordings made, replays, guard failures, and per kept recording its records,
        guards and bytes (records, metadata and the values of one call)."""
        kept = []
        for rec in self.recordings.values():
            P = rec.program
            kept.append({"records": P.nrec, "guards": len(rec.guards),
                         "inputs": len(rec.arg_in), "captured": len(rec.cap_in),
                         "bytes": P.rec.nbytes + P.static.nbytes + P.dyn.nbytes
                         + 8 * P.arena_size})
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


def _signature(args, kwargs):
    """What a recording is specific to; None when an argument cannot be keyed."""
    parts = []
    try:
        for a in list(args) + sorted(kwargs.items()):
            if isinstance(a, Tensor):
                parts.append(("T", _shape(a), a._dtype.name, a._rg, a._tape is None,
                              type(a._v) is _float))
            else:
                hash(a)
                parts.append(("V", type(a).__name__, a))
    except TypeError:
        return None
    return tuple(parts)


def compile(fn=None, *, cache_size=8):  # noqa: A001 (the name users expect, like torch)
    """Record ``fn`` once per signature and replay it at new inputs (see tapegrad.replay)."""
    if fn is None:
        return lambda f: Compiled(f, cache_size)
    return Compiled(fn, cache_size)
