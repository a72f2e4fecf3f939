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
import itertools
import weakref
from operator import add, attrgetter, getitem, is_, setitem

import numpy as np

from .layout import CONST_A, CONST_B, GADDR, OPMASK, SCALAR, SHIFT
from .ops import BY_CODE, CONST, LEAF, LINK, NEEDS, node_name
from .engine import _DEFERRED
from .recording import _INPLACE
from .state import _var, thread_state
from .tape import Tape
from .tensor import Tensor, _array, _cell, _new, _shape

_node_of = attrgetter("_node")
_V, _GRAD = itertools.repeat("_v"), itertools.repeat("_grad")
_NONES, _ZEROS = itertools.repeat(None), itertools.repeat(0)
_state_of = attrgetter("_node", "_tape", "_rg", "_dtype")
_tape_of = attrgetter("_tape")
_value_of = attrgetter("_v")
_float = float


class Recording:
    """One recorded call made a program: where its inputs and outputs sit, its guards,
    its effects (``replay_record``: backward, in-place changes, grads set to None)."""

    def __init__(self):
        self.tape = Tape()
        self.tape.keep_all = True
        self.guards = []        # (slot, kind, value) of tensor values fn turned into Python
        self.effects = []       # see replay_record
        self.freed = np.zeros(0, np.uint8)   # what the recorded backwards freed (eagerly)
        self.owners = {}        # slot of a grad read -> its leaf (known before grad = None)
        self.stale_views = []   # (position, view slots) of views taken before a change
        self.watches = []       # (fn, value): see watch
        self.program = None
        self.plan = None
        self.names = []         # (namespace, key, tensor): how fn reached captured tensors
        self.binding = None

    # ----- what happens inside fn besides operations (tensor.py and engine.py call these)
    def backward(self, tensors, grad_tensors, retain_graph, create_graph, inputs):
        from .replay_record import backward
        return backward(self, tensors, grad_tensors, retain_graph, create_graph, inputs)

    def inplace(self, t, op, other):
        from .replay_record import inplace
        return inplace(self, t, op, other)

    def fill(self, t, value, name):
        from .replay_record import fill
        return fill(self, t, value, name)

    def copy(self, t, src):
        from .replay_record import copy
        return copy(self, t, src)

    def set_grad(self, t, value):
        from .replay_record import set_grad
        return set_grad(self, t, value)

    # ----- recording ---------------------------------------------------------------------
    def record(self, fn, args, kwargs):
        self.fn = fn
        st = thread_state()
        saved_tape, saved_rec, enabled = st._tape, st.recording, st.enabled
        st.tape, st.recording = self.tape, self
        try:
            result = fn(*args, **kwargs)
        finally:
            st.recording = saved_rec
            st.tape = saved_tape() if saved_tape is not None else None
        # grad mode fn left switched (set_grad_enabled(False) and no way back): each
        # replay leaves it so too
        self.end_mode = None if st.enabled == enabled else st.enabled
        self._compile(args, result)
        # The first call's results are built as every replay's are: inside the recording
        # every tensor was tracked, but only what depends on a real leaf requires grad.
        if self.effects:
            return self.output.build(self.program, self._values(), self.program.rec,
                                     self._output_tape(None, None, None, None), args)
        out = self.replay(args)
        return result if out is None else out

    def _compile(self, args, result):
        from .replay_plan import ARG, CAP, GRAD, Plan
        from .replay_program import Program
        from .replay_record import grad_owner
        tape = self.tape
        P = self.program = Program(tape)
        heads = P.rec.view(np.int64)[0::3]
        arg_of = {id(a): i for i, a in enumerate(args) if isinstance(a, Tensor)}
        self.arg_tensors = [a if isinstance(a, Tensor) else None for a in args]

        def leaf_key(t):
            return (ARG, arg_of[id(t)]) if id(t) in arg_of else (CAP, t)

        def key_of(t, owner=None):
            """An external's key: an argument, a leaf's grad storage, a captured tensor."""
            if t is None:
                return None if owner is None else (GRAD, leaf_key(owner))
            if id(t) in arg_of:
                return (ARG, arg_of[id(t)])
            if owner is not None:
                return (GRAD, leaf_key(owner))
            return (CAP, t)
        # sources: the constants' tensors are classified while the tape still holds them
        # (a grad read inside fn and dropped since is still its leaf's grad storage), then
        # let go: one that is gone afterwards was made inside fn (a constant)
        owners = {s: self.owners[s] if s in self.owners else grad_owner(tape, t)
                  for s, t in tape.consts.items()}
        consts = {s: weakref.ref(t) for s, t in tape.consts.items()}
        tape.consts = {}
        by_slot = {}
        for s in P.sources.tolist():
            op = int(heads[s]) & OPMASK
            if op == LEAF:
                by_slot[s] = key_of(tape.leaf_nodes[int(heads[s]) >> SHIFT].variable)
            else:
                ref = consts.get(s)
                by_slot[s] = key_of(ref() if ref is not None else None, owners.get(s))
        del owners
        effects = []
        for e in self.effects:
            if e[0] == "store" or e[0] == "fill":
                effects.append(e[:3] + (key_of(e[3][0](), e[3][1]),))
            elif e[0] == "clear":
                t = e[2]()
                effects.append(("clear", e[1], None if t is None else leaf_key(t), e[3]))
            else:
                effects.append(e)
        self._guard_tables()
        self.output_slots = [(t._slot, 0) for t in _tensors_in(result) if t._tape is tape]
        self.plan = plan = Plan(self, P, by_slot, effects, leaf_key)
        del by_slot, effects, consts
        self.cap_in = [k[1] for k in plan.keys if k[0] == CAP]
        self.arg_in = [k[1] for k in plan.keys if k[0] == ARG]
        ins = [args[i] for i in self.arg_in] + self.cap_in
        self.types = [type(t._v) for t in ins]
        self.arr_pos = [j for j, t in enumerate(ins) if type(t._v) is not _float]
        self.in_shape = [None if type(t._v) is _float else t._v.shape for t in ins]
        self.in_dtype = [None if type(t._v) is _float else t._v.dtype for t in ins]
        self.leaf_slots = [(s, k) for s, k in
                           ((s, plan.keys[j]) for s, j in enumerate(plan.src_ext.tolist())
                            if j >= 0) if int(heads[s]) & OPMASK == LEAF
                           and k[0] in (ARG, CAP)]
        self.links = dict(tape.links)
        self.link_pos = [(s, self.arg_in.index(k[1]))
                         for s, k in ((s, plan.keys[j])
                                      for s, j in enumerate(plan.src_ext.tolist()) if j >= 0)
                         if int(heads[s]) & OPMASK == LINK and k[0] == ARG]
        self.leaf_nodes = list(tape.leaf_nodes)
        self.wb = [j for j in range(plan.n_obj) if j in plan.stores and
                   type(ins[j]._v) is _float]           # Python floats a call changes
        self.bumps = [(j, n) for j, n in plan.stores.items() if j < plan.n_obj]
        pos_of = {s: int(plan.src_ext[s]) for s in P.sources.tolist()
                  if plan.src_ext[s] >= 0 and plan.src_ext[s] < plan.n_obj}
        self.saved_in = [(c, s, pos_of[s]) for c, s in P.saved_pairs if s in pos_of]
        self.names = _named_captures(self.fn, {id(t) for t in self.cap_in})
        self.requires = P.requires(np.nonzero((heads & OPMASK == LEAF)
                                              | (heads & OPMASK == LINK))[0])
        self.output = _mark_outputs(result, tape, {id(a): i for i, a in enumerate(args)},
                                    self.requires)
        self.scalar_rec = bool((heads & SCALAR).any())
        from .replay_record import stale_view_read
        # a branch on a value after a change, a view read after its base changed: the
        # replays could not follow eager execution; such a function runs eagerly
        self.eager_only = plan.guards_late or stale_view_read(self)
        # A step (backward, in-place changes) replays once a second recording confirms
        # it: the first call may take other Python paths (an optimizer making its state)
        self.step = bool(self.effects)
        self.escaped = self._escapes(result) if self.step else False
        self.confirmed = not self.step
        # a step whose outputs' graphs its backward freed: its calls share their buffers
        # (the outputs get copies of their values; a backward on one raises as eagerly)
        self.shared = self.step and not self.link_pos and \
            all(not rg or self._freed_from(slot) for slot, rg in self.output.slots)
        self.output.prepare(P)
        self.pick_arrays = _picker(self.arr_pos)
        self.after = bool(self.wb or self.bumps or plan.cleared or self.end_mode is not None)
        self.arrays_only = len(self.arr_pos) == len(self.types)    # no Python floats
        self.wb_idx = np.array(self.wb, np.int64)

    def _freed_from(self, slot):
        """Does every backward from slot meet a record the step's backward freed?"""
        from .replay_record import reach_of
        reach = reach_of(self.tape, [slot])
        return bool((reach[:len(self.plan.freed)] & self.plan.freed).any())

    def _escapes(self, result):
        """Does a tensor computed here live on outside the result (kept in Python state:
        an optimizer's momentum made by the first step)? A replay would not update it.
        One computed under no_grad is made a plain tensor, as eagerly."""
        import gc
        outs = {id(t) for t in _tensors_in(result)}
        tape = self.tape
        found = [o for o in gc.get_referrers(tape)
                 if isinstance(o, Tensor) and o._tape is tape and id(o) not in outs]
        for t in found:
            if not self.requires[t._slot]:
                t._tape, t._slot, t._rg, t._node = None, -1, False, None
        return bool(found)

    def fingerprint(self):
        """What two recordings of a step must share to be the same program: records and
        rows (not values, grad cells), effects, externals (captured ones by identity)."""
        P, plan = self.program, self.plan
        rq = P.rec.view(np.int64).reshape(-1, 3).copy()
        heads = rq[:, 0]
        rq[(heads & OPMASK) == LEAF, 1] = 0
        rq[(heads & SCALAR) != 0, 2] = 0
        md = P.md.copy()
        md[:, GADDR] = 0
        return (rq.tobytes(), P.static.tobytes(), md.tobytes(), plan.eff.tobytes(),
                plan.effv.tobytes(), self.gslot.tobytes(), self.gkind.tobytes(),
                tuple(_hashable(k) for k in plan.keys),
                tuple(map(id, self.cap_in)))

    def _values(self):
        """The recording's values laid out as a call's (the first call's outputs)."""
        P = self.program
        arena = np.empty(P.arena_size)
        for k in range(P.nrows):
            s = P.row_slot[k]
            o = P.voff[k]
            v = self.tape.objs[int(np.frombuffer(self.tape.dyn, np.int64)[6 * k + 2])]
            arena[o:o + P.ms[k, 0]] = np.ravel(v)
        return arena

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
        run = _run or _kernels()
        P, plan = self.program, self.plan
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
        pick = self.pick_arrays
        if not all(map(is_, pick(vals), pick(last))):   # new arrays: check them
            for j in self.arr_pos:
                v = vals[j]
                if v is not last[j]:
                    if v.shape != self.in_shape[j] or v.dtype != self.in_dtype[j]:
                        return None
                    if not v.flags.c_contiguous:
                        if j in plan.stores:
                            return None
                        vals[j] = np.ascontiguousarray(v)
                    else:
                        last[j] = v
        defer = _NO_DEFER
        if _DEFERRED.data and len(plan.lv):
            defer = self._deferred(b)
            if defer is None:
                return _EAGER
        ids = np.fromiter(map(id, vals), np.int64, len(vals))
        if self.arrays_only:
            b.ids = ids                 # the arrays Recording.fast finds again
        if self.shared and b.lock.acquire(False):
            try:                        # the binding's buffers: no output keeps them
                status = run(b.rec, P.static, b.dyn, b.ptrs, P.cond, P.c2s, P.fx,
                             plan.src_ext, b.ext, ids, b.xs, b.addr, plan.eff, plan.effv,
                             plan.bw_reach, plan.bw_off, plan.bw_meta, plan.roots, plan.lv,
                             defer, b.sg, b.work, self.gslot, self.gkind, self.gpar,
                             self.goff, self.gvals)
                if status:
                    return _EAGER if status == 2 else None
                one = self.output.one
                if one is not None:     # one tensor: its value copied out
                    slot, o, n, shape, dt, rg = one
                    if o >= 0:
                        out = _new(b.arena[o:o + n].reshape(shape).astype(dt.np), dt)
                    else:
                        out = _new(float(b.rec.view(np.float64)[3 * slot + 2]), dt)
                    if rg:
                        out._rg = True
                        out._tape = b.tape
                        out._slot = slot
                else:
                    out = self.output.build(P, b.arena, b.rec, b.tape, args, True)
            finally:
                b.lock.release()
            if self.after:
                self._after(b, ins, b.xs)
            return out
        arena = np.empty(P.arena_size)
        rec = b.rec.copy() if self.scalar_rec else b.rec
        ptrs = P.pointers(arena)
        xs = np.empty(max(len(plan.keys), 1))
        addr = np.empty(max(len(plan.keys), 1), np.int64)
        sg = np.empty(plan.sg_size)
        work = np.empty(plan.work_size)
        status = run(rec, P.static, b.dyn, ptrs, P.cond, P.c2s, P.fx, plan.src_ext, b.ext, ids,
                     xs, addr, plan.eff, plan.effv, plan.bw_reach, plan.bw_off, plan.bw_meta,
                     plan.roots, plan.lv, defer, sg, work, self.gslot, self.gkind, self.gpar,
                     self.goff, self.gvals)
        if status:
            return _EAGER if status == 2 else None
        self._after(b, ins, xs)
        tape = self._output_tape(b, rec, arena, ptrs, ins, vals)
        return self.output.build(P, arena, rec, tape, args)

    def fast(self, args):
        """A call with the very tensors of the last one, in the same state (nodes, tapes,
        requires_grad, types, the same arrays): the whole step in one kernel call and a
        constant number of Python calls. None when anything differs (the caller then goes
        the general way, which checks and rebinds)."""
        b = self.binding
        ins = b.ins
        if len(args) != len(b.args) or not all(map(is_, args, b.args)):
            return None
        st = _var.get(None)
        if st is None or not st._enabled or st.recording is not None or \
                not all(map(is_, map(_node_of, ins), b.nodes)) or any(map(_tape_of, ins)):
            return None
        vals = list(map(_value_of, ins))
        pick = self.pick_arrays
        if list(map(type, vals)) != self.types or not all(map(is_, pick(vals), pick(b.vals))) \
                or ((self.names or self.watches) and not self.valid()) or \
                not b.lock.acquire(False):
            return None
        P, plan = self.program, self.plan
        try:
            ids = b.ids if self.arrays_only else np.fromiter(map(id, vals), np.int64,
                                                              len(vals))
            if _run(b.rec, P.static, b.dyn, b.ptrs, P.cond, P.c2s, P.fx, plan.src_ext, b.ext,
                    ids, b.xs, b.addr, plan.eff,
                    plan.effv, plan.bw_reach, plan.bw_off, plan.bw_meta, plan.roots, plan.lv,
                    _NO_DEFER, b.sg, b.work, self.gslot, self.gkind, self.gpar, self.goff,
                    self.gvals):
                return None             # a guard failed (nothing changed): the general way
            one = self.output.one
            if one is not None:
                slot, o, n, shape, dt, rg = one
                if o < 0:
                    out = _new(float(b.rec.view(np.float64)[3 * slot + 2]), dt)
                elif not shape:
                    out = _new(np.array(b.arena.item(o), dt.np), dt)
                else:
                    out = _new(b.arena[o:o + n].reshape(shape).astype(dt.np), dt)
                if rg:
                    out._rg = True
                    out._tape = b.tape
                    out._slot = slot
            else:
                out = self.output.build(P, b.arena, b.rec, b.tape, args, True)
        finally:
            b.lock.release()
        if self.after:
            self._after(b, ins, b.xs)
        return out

    def _after(self, b, ins, xs):
        """What a call changed outside the kernel's reach, in a constant number of calls
        (maps of builtins, no Python per tensor): Python floats changed in place (their new
        values), versions of tensors changed in place, grads set to None."""
        if self.wb:
            list(map(setattr, [ins[j] for j in self.wb], _V, xs[self.wb_idx].tolist()))
        if self.bumps:
            cells, counts = b.bump_cells, b.bump_counts
            list(map(setitem, cells, _ZEROS, map(add, map(getitem, cells, _ZEROS), counts)))
            _INPLACE[0] += 1
        if b.cleared:
            list(map(setattr, b.cleared, _GRAD, _NONES))
            if _DEFERRED.data:          # a grad the user had assigned: the engine lets go
                for ref in _DEFERRED.data & b.cleared_refs:
                    node = ref()
                    if node is not None:
                        _DEFERRED.discard(node)
        if self.end_mode is not None:
            thread_state().enabled = self.end_mode

    def _output_tape(self, b, rec, arena, ptrs, ins=None, vals=None):
        """The tape the outputs that require grad are results of: this call's."""
        if not self.output.requires:
            return None
        P = self.program
        if b is None:                   # the recording's own call
            b = self._bind([a for a in (self.arg_tensors[i] for i in self.arg_in)]
                           + self.cap_in)
            rec = P.rec.copy() if rec is None else rec
            arena = self._values()
            ptrs = P.pointers(arena)
            ins = b.ins
            vals = [t._v for t in ins]
        links = self.links
        if self.link_pos:
            links = dict(links)
            for s, j in self.link_pos:
                t = ins[j]
                links[s] = _TapeNode(t._tape, t._slot)
        saved = [(c, s, b.cells[j], b.cells[j][0], P.nptrs + n, None)
                 for n, (c, s, j) in enumerate(self.saved_in)]
        shown = [vals[j] for _, _, j in self.saved_in]
        tape = _replay_tape(P, b, rec, arena, ptrs, links, saved, shown, _INPLACE[0])
        if self.plan.freed.any():
            tape.freed = self.plan.freed.copy()
        return tape

    def _deferred(self, b):
        """Leaves whose grad the engine keeps (a grad the user assigned: the call adds into
        it; hooks: None, the call runs eagerly)."""
        from .replay_step_kernels import deferred_leaves
        plan = self.plan
        marks = np.zeros(plan.n_leaves, np.int64)
        rec = b.rec
        if not deferred_leaves(rec.view(np.int64), rec.view(np.float64), plan.lv, marks):
            return _NO_DEFER
        defer = np.zeros(plan.n_leaves, np.int64)
        for i in np.nonzero(marks)[0].tolist():
            node = b.leaf_nodes[i]
            t = node.variable
            if t is None or node.hooks or node.post_hooks or t._grad is None:
                return None
            g = t._grad._v
            if type(g) is not np.ndarray or not g.flags.c_contiguous or \
                    g.dtype != t._dtype.np:
                return None
            defer[i] = g.ctypes.data
        return defer

    def _bind(self, ins):
        """The leaves of these inputs: their grad cells and buffers written into copies
        of the records and dynamic rows, their nodes into the tape's leaf list, the
        addresses of their grad storages into the table of externals."""
        from .engine import _leaf_node
        from .replay_plan import ARG
        P, plan = self.program, self.plan
        b = _Binding()
        b.ins = list(ins)
        b.rec = P.rec.copy()
        b.dyn = P.dyn.copy()
        b.leaf_nodes = list(self.leaf_nodes)
        rq, rd = b.rec.view(np.int64), b.rec.view(np.float64)
        md = b.dyn.reshape(P.md.shape)
        arg_pos = {i: j for j, i in enumerate(self.arg_in)}
        cap_pos = {id(t): len(self.arg_in) + j for j, t in enumerate(self.cap_in)}

        def tensor_of(key):
            return ins[arg_pos[key[1]]] if key[0] == ARG else ins[cap_pos[id(key[1])]]
        for s, key in self.leaf_slots:
            t = tensor_of(key)
            if not t._rg or t._tape is not None:
                continue
            node = _leaf_node(t)
            rd[3 * s + 1] = float(node.addr)
            k = P.row_of[s]
            if k >= 0:
                md[k, GADDR] = node.buf_addr
            b.leaf_nodes[int(rq[3 * s]) >> SHIFT] = node
        b.ext = plan.ext_table(tensor_of, _leaf_node)
        b.nodes = list(map(_node_of, ins))
        b.state = list(map(_state_of, ins))
        b.args = ()
        b.vals = [None] * len(ins)
        b.cells = [_cell(t) for t in ins]
        b.bump_cells = [b.cells[j] for j, _ in self.bumps]
        b.bump_counts = [n for _, n in self.bumps]
        b.ids = None
        b.cleared = [tensor_of(k) for k in plan.cleared]
        b.cleared_refs = {weakref.ref(t._node) for t in b.cleared if t._node is not None}
        if self.shared:                 # buffers the calls of this binding share
            import threading
            b.lock = threading.Lock()
            b.arena = np.empty(P.arena_size)
            b.ptrs = P.pointers(b.arena)
            b.xs = np.empty(max(len(plan.keys), 1))
            b.addr = np.empty(max(len(plan.keys), 1), np.int64)
            b.sg = np.empty(plan.sg_size)
            b.work = np.empty(plan.work_size)
            b.tape = None
            if self.output.requires:    # the outputs' graphs are freed: one tape for all
                b.tape = _replay_tape(P, b, b.rec, b.arena, b.ptrs, self.links, [], [], 0)
                b.tape.freed = plan.freed.copy()
        self.binding = b
        return b

    def watch(self, fn):
        """Python state fn's path depends on (an optimizer's hyper-parameters): a call
        replays only while ``fn()`` equals what it was when recorded."""
        self.watches.append((fn, fn()))

    def valid(self):
        """False when a name fn read a captured tensor from now holds another object (the
        recording would use the old tensor), or watched Python state changed: record
        again."""
        for fn, value in self.watches:
            if fn() != value:
                return False
        if not self.names:
            return True
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
    __slots__ = ("ins", "nodes", "vals", "cells", "rec", "dyn", "leaf_nodes", "ext",
                 "cleared", "lock", "arena", "ptrs", "xs", "addr", "sg", "work", "tape",
                 "state", "args", "bump_cells", "bump_counts", "ids", "cleared_refs")


_NO_DEFER = np.zeros(1, np.int64)
_run = None


def _kernels():
    """The step kernel (Numba loads at the first replay, not at import)."""
    global _run
    from .replay_step_kernels import run
    _run = run
    return run


def _picker(positions):
    """A function giving the items at ``positions`` of a list, as a tuple."""
    if not positions:
        return lambda x: ()
    if len(positions) == 1:
        i = positions[0]
        return lambda x: (x[i],)
    from operator import itemgetter
    return itemgetter(*positions)
_EAGER = object()             # a replay that must run fn eagerly (leaf hooks)


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

    def __init__(self, marked, requires, slots):
        self.marked = marked
        self.requires = requires
        self.slots = slots            # (slot, requires grad) of the outputs on the tape
        self.one = None

    def prepare(self, P):
        """One tensor computed on the tape: (slot, arena offset or -1 for a scalar record,
        size, shape, dtype, requires grad), to build it fast."""
        m = self.marked
        if type(m) is tuple and len(m) == 4 and m[0] == "slot":
            _, slot, dt, rg = m
            k = P.row_of[slot]
            self.one = (slot, int(P.voff[k]) if k >= 0 else -1,
                        int(P.ms[k, 0]) if k >= 0 else 1, P.shape(slot), dt, rg)

    def build(self, P, arena, rec, tape, args, copy=False):
        return _build(self.marked, P, arena, rec, tape, args, {}, copy)


def _mark_outputs(result, tape, arg_of, requires):
    any_grad = [False]
    slots = []

    def mark(x):
        if isinstance(x, Tensor):
            if x._tape is tape:
                rg = bool(requires[x._slot])
                any_grad[0] |= rg
                slots.append((x._slot, rg))
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
    return _Outputs(marked, any_grad[0], slots)


def _hashable(key):
    from .replay_plan import _hashable as h
    return h(key)


def _tensors_in(x):
    if isinstance(x, Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for y in x:
            yield from _tensors_in(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _tensors_in(y)


def _build(m, P, arena, rec, tape, args, memo, copy):
    if type(m) is tuple and m and type(m[0]) is str and m[0] in _KINDS:
        kind = m[0]
        if kind == "slot":
            _, slot, dt, rg = m
            out = memo.get(slot)
            if out is not None:
                return out
            v = P.value(arena, rec, slot)
            if type(v) is not _float and (copy or v.dtype != dt.np):
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
            return type(m)(_build(x, P, arena, rec, tape, args, memo, copy) for x in m)
        return type(m)(*[_build(x, P, arena, rec, tape, args, memo, copy) for x in m])
    if isinstance(m, dict):
        return {k: _build(v, P, arena, rec, tape, args, memo, copy) for k, v in m.items()}
    return m


_KINDS = ("slot", "arg", "obj", "fresh")


# ----- the listing -----------------------------------------------------------------------
def _listing(recording):
    """One line a record; with effects, the sections: forward (up to the first backward),
    reverse (each backward, where it runs), update (what follows), and each effect."""
    from .replay_plan import ARG, BACKWARD, CAP, CLEAR, FILL, GRAD, GUARDS, STORE
    P, plan = recording.program, recording.plan
    rq, rd = P.rec.view(np.int64), P.rec.view(np.float64)
    caps = {}

    def ext_name(key):
        if key[0] == ARG:
            return f"in{key[1]}"
        if key[0] == CAP:
            return f"cap{caps.setdefault(id(key[1]), len(caps))}"
        if key[0] == GRAD:
            return f"{ext_name(key[1])}.grad"
        return "const"
    names = {s: ext_name(plan.keys[j]) for s, j in enumerate(plan.src_ext.tolist()) if j >= 0}
    effects = {}
    for e in range(len(plan.eff)):
        effects.setdefault(int(plan.eff[e, 0]), []).append(e)
    steps = bool(plan.backwards or len(plan.eff) - (1 if recording.gslot.size else 0))
    lines = ["-- forward --"] if steps else []
    seen_backward = False
    for r in range(P.nrec + 1):
        for e in effects.get(r, ()):
            pos, kind, j, slot, b = (int(x) for x in plan.eff[e])
            if kind == BACKWARD:
                pos_, roots, retain = plan.backwards[b]
                which = ", ".join(f"%{s}" if seed < 0 else f"%{s} (grad %{seed})"
                                  for s, seed in roots)
                lines.append(f"-- reverse: backward({which}), a sweep over "
                             f"{int(plan.bw_reach[b].sum())} records"
                             f"{', graph kept' if retain else ''} --")
                seen_backward = True
                lines.append("-- update --")
            elif kind == STORE:
                lines.append(f"    {ext_name(plan.keys[j])} <- %{slot}")
            elif kind == FILL:
                lines.append(f"    {ext_name(plan.keys[j])} <- {float(plan.effv[e])!r} "
                             "(filled)")
            elif kind == CLEAR:
                lines.append(f"    {names.get(slot, '%' + str(slot))}.grad <- None")
            elif kind == GUARDS and steps:
                lines.append(f"    (guards checked: {len(recording.gslot)})")
        if r == P.nrec:
            break
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
    del seen_backward
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
        self._fast = None       # the recording whose calls may take Recording.fast
        self.fast_replays = 0
        self._last = None       # (args, kwargs, key) of the last call: identity shortcut

    def __call__(self, *args, **kwargs):
        rec = self._fast
        if rec is not None and not kwargs:
            out = rec.fast(args)
            if out is not None:
                self.fast_replays += 1
                return out
        st = thread_state()
        if not st.enabled or st.recording is not None:
            self.counts["eager"] += 1
            return self.fn(*args, **kwargs)     # nothing to replay: run it as it is
        # the same tensors as the last call, in the same state: the same recording
        state = [(a._node, a._tape, a._rg) if isinstance(a, Tensor) else a for a in args]
        last = self._last
        if last is not None and not kwargs and len(args) == len(last[0]) \
                and all(map(is_, args, last[0])) and state == last[1]:
            key, rec = last[2], last[3]
        else:
            key = _signature(args, kwargs)
            if key is None:
                self.counts["eager"] += 1
                return self.fn(*args, **kwargs)
            rec = self.recordings.get(key)
            if rec is not None:
                self.recordings.move_to_end(key)
        if rec is not None and rec.confirmed and rec.valid():
            if rec.eager_only:          # a branch on a value after a change: never replayed
                self.counts["eager"] += 1
                return self.fn(*args, **kwargs)
            out = rec.replay(args)
            if out is _EAGER:           # leaf hooks: the engine must run them
                self.counts["eager"] += 1
                return self.fn(*args, **kwargs)
            if out is not None:
                self.counts["replays"] += 1
                self._last = (args, state, key, rec) if not kwargs else None
                if rec.shared and not kwargs and rec.binding is not None and \
                        all(map(is_, rec.binding.ins, [args[i] for i in rec.arg_in]
                                + rec.cap_in)):
                    rec.binding.args = args
                    self._fast = rec
                else:
                    self._fast = None
                return out
            self.counts["guard_failures"] += 1
            key = _signature(args, kwargs)
        self._fast = None
        new = Recording()
        result = new.record(self.fn, args, kwargs)
        if new.step and not new.escaped and rec is not None and rec.step and \
                not rec.escaped and rec.fingerprint() == new.fingerprint():
            new.confirmed = True        # two calls recorded the same program
        rec = new
        self.counts["recordings"] += 1
        self.recordings[key] = rec
        self.recordings.move_to_end(key)
        while len(self.recordings) > self.cache_size:
            self.recordings.popitem(last=False)
        self._last = (args, state, key, rec) if not kwargs else None
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
        return {"recordings": self.counts["recordings"],
                "replays": self.counts["replays"] + self.fast_replays,
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
