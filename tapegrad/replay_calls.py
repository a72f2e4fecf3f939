"""A replayed call: the inputs checked and bound, one kernel call, what it changed outside
the kernel's reach, the outputs.

A **binding** is what a run of calls with the same tensors shares: copies of the records
and dynamic rows with those tensors' grad cells and buffers written in, the addresses of
their grad storages, and (a step whose outputs keep no graph) the buffers of the calls.
``Calls.fast`` is the call with the very tensors of the last one: a constant number of
Python calls; ``Calls.replay`` checks everything, binds anew when the tensors changed.
Neither makes a pass over the arguments in Python: ``Calls.replay_checked`` (a call with
the arguments of the last one, ``tg.compile``'s usual call) and ``Calls.fast`` hand the
step kernel the argument tuple's address and a check table made by the last call that
checked them in Python (``check_table``, ``fast_table``): the kernel reads the tensors'
slots and values from their memory (``replay_ptr``), and gives up (status 3, nothing done)
when anything differs, for ``Calls.replay`` to check, bind or record again.
"""
import itertools
from operator import attrgetter, is_

import numpy as np

from .base import TensorBase as Tensor
from .face import _cell
from .hooks import _DEFERRED
from .layout import GADDR, SHIFT, T_DYN, T_EXT
from .ops import MAXD
from .recording import _INPLACE
from .replay_pack import Layout, packed
from .replay_ptr import ARGS_DIRECT, DIRECT
from .replay_tape import ReplayTape
from .state import _local, thread_state

NO_SLOT = -1                  # replay_step_kernels.NO_SLOT (no Numba at import here)

_node_of = attrgetter("_node")
_V, _GRAD = itertools.repeat("_v"), itertools.repeat("_grad")
_NONES = itertools.repeat(None)
_state_of = attrgetter("_node", "_tape", "_rg", "_dtype")
_probe = attrgetter("_node", "_tape", "_rg")
_value_of = attrgetter("_v")


class Calls:
    """The call side of a ``replay_recording.Recording``."""

    def replay(self, args):
        """The outputs at new input values, or None when the inputs no longer fit the
        recording (a captured tensor changed shape) or a guard fails."""
        plan = self.plan
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
                        last[j] = None      # its ids entry is a copy's: not for fast
                    else:
                        last[j] = v
        defer = _NO_DEFER
        if _DEFERRED and len(plan.lv):
            defer = self._deferred(b)
            if defer is None:
                return _EAGER
        ids = np.fromiter(map(id, vals), np.int64, len(vals))
        if self.arrays_only:
            b.ids = ids                 # the arrays Recording.fast finds again
        if not DIRECT:                  # object layouts unchecked: addresses from NumPy
            return self._replay_by_address(args, b, ins, vals, defer)
        out = self._call(args, b, ins, vals, ids, defer, 0)
        return _STATUS[out] if type(out) is int else out

    def _call(self, args, b, ins, vals, table, defer, argt):
        """The kernel call of a replay on binding b (``table``: the inputs' ids, or a check
        table and the arguments' address ``argt``): in the binding's own buffers when no
        output keeps them, else in a new arena whose tape the outputs get. run's status
        (an int) when it did not finish."""
        P, run = self.program, _run or _kernels()
        if self.shared and b.lock.acquire(False):
            try:                        # the binding's buffers: no output keeps them
                status = run(b.rec, b.tables, b.kscratch, table, defer, argt)
                if status:
                    return status
                out = self.output.build(P, b.arena, b.rec, b.tape, args, True)
            finally:
                b.lock.release()
            if self.after:
                self._after(b, ins, b.xs)
            return out
        arena = P.new_arena()
        rec = b.rec.copy() if self.scalar_rec else b.rec
        scratch = b.scratch_layout.new()
        ptrs, xs = b.scratch_layout.views(scratch, 2)
        P.pointers(arena, ptrs)
        status = run(rec, b.tables, scratch.view(P.dtype), table, defer, argt)
        if status:
            return status
        self._after(b, ins, xs)
        tape = self._output_tape(b, rec, arena, ptrs, ins, vals)
        return self.output.build(P, arena, rec, tape, args)

    def check_table(self, args, state):
        """What the step kernel checks of a later call with these arguments in this state
        (``replay._states``, taken before this call) for it to replay with the current
        binding as this call did (``replay_step_kernels._gather``): the same objects, the
        tensors' nodes, tapes and requires_grad as in ``state``, the inputs' value types,
        the arrays checked last. (table, (binding, the arrays)): the objects whose
        addresses it holds are held by the arguments, the state or these. None when the
        kernel cannot read the objects (then every call checks in Python) or the binding
        is not these arguments'."""
        b = self.binding
        if not ARGS_DIRECT or b is None or len(b.ins) != len(self.types):
            return None
        chk, rows, ins_rows = self._new_table(b, args)
        for p, a in enumerate(args):
            if isinstance(a, Tensor):
                rows[p, 1:4] = list(map(id, state[p]))
        for j, i in enumerate(self.arg_in):     # an argument's row checks its input's node
            if rows[i, 0] != id(b.ins[j]) or rows[i, 1] != id(b.nodes[j]):
                return None
        n = len(self.arg_in)                    # captured tensors: their nodes
        ins_rows[n:, 1] = np.fromiter(map(id, b.nodes[n:]), np.int64, len(b.ins) - n)
        return chk, (b, list(b.vals))

    def fast_table(self, b, args):
        """The table with which the step kernel checks a call of ``Calls.fast``: the very
        arguments of this call (whose inputs are b.ins), the inputs' nodes, no tapes and
        requires_grad as when bound (``b.probe``), their value types and arrays. None when
        the kernel cannot read the objects."""
        if not ARGS_DIRECT or len(b.ins) != len(self.types):
            return None
        chk, rows, ins_rows = self._new_table(b, args)
        probe = np.array([list(map(id, p)) for p in b.probe], np.int64).reshape(-1, 3)
        n = len(self.arg_in)
        for j, i in enumerate(self.arg_in):
            rows[i, 1:4] = probe[j]
        ins_rows[n:, 1:4] = probe[n:]
        return chk

    def _new_table(self, b, args):
        """A check table for these arguments and b's inputs (``_gather``): their addresses,
        the inputs' value types and arrays; no slot checked yet (the callers fill in
        which)."""
        from .replay_step_kernels import ARG_W, IN_W
        na, ni = len(args), len(b.ins)
        chk = np.full(2 + ARG_W * na + IN_W * ni, NO_SLOT, np.int64)
        chk[0], chk[1] = na, ni
        rows = chk[2:2 + ARG_W * na].reshape(na, ARG_W)
        ins_rows = chk[2 + ARG_W * na:].reshape(ni, IN_W)
        rows[:, 0] = np.fromiter(map(id, args), np.int64, na)
        ins_rows[:, 0] = np.fromiter(map(id, b.ins), np.int64, ni)
        ins_rows[:, 4] = np.fromiter(map(id, self.types), np.int64, ni)
        ins_rows[:, 5] = 0
        for j in self.arr_pos:                  # the very arrays checked last, or none
            ins_rows[j, 5] = -1 if b.vals[j] is None else id(b.vals[j])
        return chk, rows, ins_rows

    def replay_checked(self, args, check):
        """``replay`` for arguments the step kernel checks against ``check`` (made by
        check_table at an earlier call): no Python per argument. _MISS when they do not fit
        (nothing was done: the caller then checks them in Python)."""
        chk, (b, _) = check
        if b is not self.binding:
            return _MISS
        plan = self.plan
        defer = _NO_DEFER
        if _DEFERRED and len(plan.lv):
            defer = self._deferred(b)   # (for b: the kernel checks b is the arguments')
            if defer is None:
                return _MISS
        out = self._call(args, b, b.ins, None, chk, defer, id(args))
        return _STATUS[out] if type(out) is int else out

    def _replay_by_address(self, args, b, ins, vals, defer):
        """The call where the object layouts could not be checked at import (see
        ``replay_ptr``): every input's address asked of NumPy, a Python float's value
        put in the scratch first (Python per input: a rare platform)."""
        P = self.program
        run = _run or _kernels()
        arena = P.new_arena()
        rec = b.rec.copy()
        scratch = b.scratch_layout.new(zero=True)
        ptrs, xs = b.scratch_layout.views(scratch, 2)
        P.pointers(arena, ptrs)
        tables = b.tables.copy()
        ext = b.table_layout.views(tables)[T_EXT]
        for j, v in enumerate(vals):
            if type(v) is float:
                xs[j] = v
                ext[j] = (1, -1, 1, xs.ctypes.data + 8 * j)
            else:
                ext[j] = (1, ext[j, 1], ext[j, 2], v.__array_interface__["data"][0])
        status = run(rec, tables, scratch.view(P.dtype), np.zeros(len(vals), np.int64), defer,
                     0)
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
        fa = b.fast                     # (the arguments, their check table)
        if fa is None or len(args) != len(fa[0]) or not DIRECT:
            return None
        st = _local.state
        if st is None or not st._enabled or st.recording is not None:
            return None
        ins = b.ins
        if fa[1] is not None:           # the step kernel checks them
            if ((self.names or self.watches) and not self.valid()) or \
                    not b.lock.acquire(False):
                return None
            try:
                if _run(b.rec, b.tables, b.kscratch, fa[1], _NO_DEFER, id(args)):
                    return None         # they changed, or a guard failed: the general way
                out = self.output.build(self.program, b.arena, b.rec, b.tape, args, True)
            finally:
                b.lock.release()
            if self.after:
                self._after(b, ins, b.xs)
            return out
        if not all(map(is_, args, fa[0])):
            return None
        if list(map(_probe, ins)) != b.probe:     # the same nodes, requires_grad; no tapes
            return None
        if self.arrays_only:                      # the very arrays (b.vals holds them)
            if not all(map(is_, map(_value_of, ins), b.vals)):
                return None
            ids = b.ids
        else:
            vals = list(map(_value_of, ins))
            pick = self.pick_arrays
            if list(map(type, vals)) != self.types or \
                    not all(map(is_, pick(vals), pick(b.vals))):
                return None
            ids = np.fromiter(map(id, vals), np.int64, len(vals))
        if ((self.names or self.watches) and not self.valid()) or not b.lock.acquire(False):
            return None
        P = self.program
        try:
            if _run(b.rec, b.tables, b.kscratch, ids, _NO_DEFER, 0):
                return None             # a guard failed (nothing changed): the general way
            out = self.output.build(P, b.arena, b.rec, b.tape, args, True)
        finally:
            b.lock.release()
        if self.after:
            self._after(b, ins, b.xs)
        return out

    def _after(self, b, ins, xs):
        """What a call changed outside the kernel's reach, in a constant number of calls
        (maps of builtins; a loop with no calls for the version counts): Python floats
        changed in place (their new values), versions of tensors changed in place, grads
        set to None."""
        if self.wb:
            list(map(setattr, [ins[j] for j in self.wb], _V, xs[self.wb_idx].tolist()))
        if self.bumps:
            for cell, count in zip(b.bump_cells, b.bump_counts):
                cell[0] += count        # (no calls: cheaper than a map chain at any size)
            _INPLACE[0] += 1
        if b.cleared:
            list(map(setattr, b.cleared, _GRAD, _NONES))
            if _DEFERRED:               # a grad the user had assigned: the engine lets go
                for key in _DEFERRED.keys() & b.cleared_ids:
                    _DEFERRED.pop(key, None)
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
        shown = [vals[j] if vals is not None else ins[j]._v for _, _, j in self.saved_in]
        tape = _replay_tape(P, b, rec, arena, ptrs, links, saved, shown, _INPLACE[0])
        if self.plan.any_freed:
            tape.freed = self.plan.freed.copy()
        return tape

    def _deferred(self, b):
        """Leaves whose grad the engine keeps (a grad the user assigned: the call adds into
        it; hooks: None, the call runs eagerly). None too when the recording reads a leaf's
        grad: it reads the leaf's own storage, not the user's tensor the call added into
        (an optimizer's step after backward would skip the user's grad)."""
        from .replay_plan import GRAD
        from .replay_step_kernels import deferred_leaves
        plan = self.plan
        marks = np.zeros(plan.n_leaves, np.int64)
        rec = b.rec
        if not deferred_leaves(rec.view(np.int64), rec.view(np.float64), plan.lv, marks):
            return _NO_DEFER
        if any(k[0] == GRAD for k in plan.keys if k is not None):
            return None
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
        from .hooks import _leaf_node
        from .replay_plan import ARG
        P, plan = self.program, self.plan
        b = _Binding()
        b.ins = list(ins)
        b.rec = P.rec.copy()
        b.leaf_nodes = list(self.leaf_nodes)
        rq, rd = b.rec.view(np.int64), b.rec.view(np.float64)
        arg_pos = {i: j for j, i in enumerate(self.arg_in)}
        cap_pos = {id(t): len(self.arg_in) + j for j, t in enumerate(self.cap_in)}

        def tensor_of(key):
            return ins[arg_pos[key[1]]] if key[0] == ARG else ins[cap_pos[id(key[1])]]
        # the kernel's tables, copied into one buffer: the dynamic rows and the externals
        # of this binding are the views of it that Python writes and reads
        b.table_layout, b.tables, views = packed(
            [P.static, P.dyn, P.cond, P.c2s, P.fx, plan.src_ext,
             plan.ext_table(tensor_of, _leaf_node), plan.eff, plan.effv, plan.bw_reach,
             plan.bw_off, plan.bw_meta, plan.roots, plan.lv, self.gslot, self.gkind,
             self.gpar, self.goff, self.gvals])
        b.dyn, b.ext = views[T_DYN], views[T_EXT]
        md = b.dyn.reshape(P.md.shape)
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
        n_keys = max(len(plan.keys), 1)
        b.scratch_layout = Layout([(np.int64, (P.nptrs,)), (np.float64, (n_keys,)),
                                   (np.int64, (n_keys,)), (np.float64, (plan.sg_size,)),
                                   (np.float64, (plan.work_size,)), (np.float64, (8,)),
                                   (np.int64, (5, MAXD)), (np.int64, (len(ins),))])
        b.nodes = list(map(_node_of, ins))
        b.probe = [(t._node, None, t._rg) for t in ins]     # what Calls.fast expects
        b.state = list(map(_state_of, ins))
        b.fast = None                   # (arguments, check table) of Calls.fast
        b.vals = [None] * len(ins)
        b.cells = [_cell(t) for t in ins]
        b.bump_cells = [b.cells[j] for j, _ in self.bumps]
        b.bump_counts = [n for _, n in self.bumps]
        b.ids = None
        b.cleared = [tensor_of(k) for k in plan.cleared]
        b.cleared_ids = {id(t._node) for t in b.cleared if t._node is not None}
        if self.shared:                 # buffers the calls of this binding share
            import threading
            b.lock = threading.Lock()
            b.arena = P.new_arena()
            b.scratch = b.scratch_layout.new()
            b.kscratch = b.scratch.view(P.dtype)    # as the kernel takes it (run)
            b.ptrs, b.xs = b.scratch_layout.views(b.scratch, 2)
            P.pointers(b.arena, b.ptrs)
            b.tape = None
            if self.output.requires:    # the outputs' graphs are freed: one tape for all
                b.tape = _replay_tape(P, b, b.rec, b.arena, b.ptrs, self.links, [], [], 0)
                b.tape.freed = plan.freed.copy()
        self.binding = b
        return b


class _Binding:
    """The leaves and inputs one run of calls is made with (see Recording._bind)."""
    __slots__ = ("ins", "nodes", "vals", "cells", "rec", "dyn", "leaf_nodes", "ext",
                 "cleared", "lock", "arena", "ptrs", "xs", "tape", "state", "fast",
                 "bump_cells", "bump_counts", "ids", "cleared_ids", "tables", "table_layout",
                 "scratch", "kscratch", "scratch_layout", "probe")


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
_MISS = object()              # a checked replay whose arguments changed: check in Python
_STATUS = {1: None, 2: _EAGER, 3: _MISS}      # what run's statuses mean to the caller


def _replay_tape(P, b, rec, arena, ptrs, links, saved, shown, epoch):
    return ReplayTape(P, b, rec, arena, ptrs, links, saved, shown, epoch)


def _TapeNode(tape, slot):
    from .graph import Node
    return Node(tape, slot)
