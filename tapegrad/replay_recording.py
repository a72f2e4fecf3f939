"""One recorded call made a program (``replay.py`` has the picture): the recording run,
then its tape made a ``Program`` and a ``Plan``, its sources and effects sorted out, its
outputs and guards noted."""
import weakref
from operator import attrgetter, is_

import numpy as np

from .base import TensorBase as Tensor
from .layout import CONST_B, GADDR, OPMASK, SCALAR, SHIFT
from .ops import FAMILY, F_UNARY, LEAF, LINK
from .replay_calls import Calls, _picker
from .replay_outputs import _hashable, _listing, _mark_outputs, _tensors_in
from .state import thread_state
from .tape import Tape

_contents = attrgetter("cell_contents")

_float = float
_FAMILY = np.array(FAMILY, np.int64)


class Recording(Calls):
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
        cells = [(sp, t) for sp, key, t in self.names if key is None]
        spaces = [(sp, key, t) for sp, key, t in self.names if key is not None]
        self.name_cells, self.cell_values = [c for c, _ in cells], [t for _, t in cells]
        self.name_spaces, self.name_keys, self.space_values = \
            [c for c, _, _ in spaces], [k for _, k, _ in spaces], [t for _, _, t in spaces]
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
        # a unary record's b is its constant either way (x ** 2 of a positive scalar takes
        # the fast path, which flags it CONST_B): the flag is no difference
        unary = _FAMILY[heads & OPMASK] == F_UNARY
        rq[unary, 0] &= ~CONST_B
        md = P.md.copy()
        md[:, GADDR] = 0
        return (rq.tobytes(), P.static.tobytes(), md.tobytes(), plan.eff.tobytes(),
                plan.effv.tobytes(), self.gslot.tobytes(), self.gkind.tobytes(),
                tuple(_hashable(k) for k in plan.keys),
                tuple(map(id, self.cap_in)))

    def _values(self):
        """The recording's values laid out as a call's (the first call's outputs)."""
        P = self.program
        arena = P.new_arena()
        for k in range(P.nrows):
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
        for slot in self.program.int_slots.tolist():     # exact in a float32 arena
            slots.append(slot)
            kinds.append(3)
            pars.append((0, 0, 0))
            offs.append(at)
        self.gslot = np.array(slots, np.int64)
        self.gkind = np.array(kinds, np.int64)
        self.gpar = np.array(pars, np.int64).reshape(-1, 3)
        self.goff = np.array(offs, np.int64)
        self.gvals = np.concatenate(vals) if vals else np.zeros(0)

    # ----- replaying ---------------------------------------------------------------------
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
        try:                # (maps of builtins: no Python call per name)
            return all(map(is_, map(_contents, self.name_cells), self.cell_values)) and \
                all(map(is_, map(dict.get, self.name_spaces, self.name_keys),
                        self.space_values))
        except ValueError:  # a closure cell emptied
            return False

    def listing(self):
        """The recorded tape, one record a line (like jax.make_jaxpr)."""
        return _listing(self)


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
