"""The backward engine: ``backward()`` and ``grad()``: seeds in, one Numba sweep, grads out.

A backward is a constant number of Python calls, whatever the number of records and
leaves: it validates the seeds, checks what the sweep will read (freed records, and saved
values changed in place: skipped when nothing was changed in place since they were
saved), hands the tape's bytes to ``kernels.prepare`` and ``kernels.sweep``, which add
straight into the leaves' ``.grad`` storage (``leaves.py``), and frees the tape. Python
steps in only where the user asked for it: tensor hooks split the sweep at their slots
(every record that feeds a slot's adjoint comes later on the tape, so the adjoint is final
once the sweep has passed down to it); large matrix products run in NumPy between
segments; leaves with hooks or a grad the user assigned are accumulated here afterwards.
"""
import math
import weakref

import numpy as np

from . import products
from .grad_mode import _anomaly, is_anomaly_enabled
from .engine_checks import SECOND_TIME, _check, _check_nan
from .layout import BIG, OPMASK, SCALAR, SHIFT, SIZE
from .ops import LEAF
from .compile_notice import _warm, first_call
from .hooks import (_ACCUMULATE, _DEFERRED, _accumulate, _call_hooks, accumulate_hooked,
                    deferred_on, flush, root_hooks)
from .recording import _INPLACE
from .state import _local, refuse_while_recording, thread_state
from .base import TensorBase as Tensor
from .face import _array, _new, _shape, _tensor_from

_F32 = np.empty(0, np.float32)
_F64 = np.empty(0, np.float64)


# ----- the public entry points -------------------------------------------------------------
def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates d(sum of tensors * grad_tensors)/d(leaf) into each reached leaf's .grad."""
    st = _local.state
    if st is not None and st.recording is not None:     # inside tg.compile: recorded for
        return st.recording.backward(tensors, grad_tensors, retain_graph, create_graph,
                                     inputs)             # the replays, and run now
    if grad_tensors is None and inputs is None and not create_graph and \
            type(tensors) is list and len(tensors) == 1:     # t.backward(), the common call:
        t = tensors[0]          # a simple tape's one-element result: one kernel call, with
        tape = getattr(t, "_tape", None)    # no seed list or work dict (else, or to raise
        if tape is not None and t._rg and _simple(tape) and \
                (type(t._v) is float or t._v.size == 1):        # the errors: below)
            return _backward_all(tape, (t._slot, _SEED), bool(retain_graph))
    _backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


def _backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    _run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs)
    if inputs is not None:          # PyTorch's backward(inputs=...) retains a non-leaf
        for t in [inputs] if isinstance(inputs, Tensor) else inputs:    # input's grad
            if isinstance(t, Tensor) and t._tape is not None and t._rg:
                t._tape.retained[t._slot] = weakref.ref(t)


def _run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs):
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    if create_graph:        # the backward recorded, differentiable again (implies retain)
        from .double_backward import backward as recorded_backward
        return recorded_backward(tensors, grad_tensors, inputs, _check)
    seeds = [_seed(i, t, g) for i, (t, g) in enumerate(zip(tensors, grad_tensors))]
    targets = None if inputs is None else \
        ([inputs] if isinstance(inputs, Tensor) else list(inputs))
    for t in targets or ():         # PyTorch retains each input's grad (leaves' too) first
        if isinstance(t, Tensor) and not t._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    work = {}
    for t, seed in seeds:
        if t._tape is None:                       # backward on a leaf itself: its hooks
            if targets is None or any(x is t for x in targets):     # run, as PyTorch
                accumulate_hooked(t, seed)
            else:
                root_hooks(t, seed)
            continue
        _add_root(work, t._tape, t._slot, seed)
    pending = {}                    # deferred leaves: hooks once on their whole gradient
    while work:                     # a link to another tape continues the backward there
        tape, roots = work.pop(max(work))
        if targets is None and len(roots) == 1 and _simple(tape):
            _backward_all(tape, roots[0], bool(retain_graph))
            continue
        run = _Sweep(tape, roots, bool(retain_graph), stage=targets is not None,
                     inputs=targets, run_inputs=True, outputs=tensors)
        try:
            run.sweep_all()
            if targets is None:
                run.leaves_to_python(pending)
                run.retained_grads()
            else:
                run.accumulate_into(targets)
                run.retained_grads(targets)
            run.onward(work)
            run.free()
        finally:
            run.close()
    flush(pending)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False,
         materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple (a dict for a
    dict of inputs). As PyTorch's: only the records between the outputs and the inputs
    run (and are freed); hooks run on the inputs' gradients (a leaf's too: what a hook
    returns is the result); a retained tensor on the way gets its .grad."""
    refuse_while_recording("autograd.grad()")
    from .grad_reach import grad_arguments
    keys, inputs, allow_unused = grad_arguments(inputs, only_inputs, allow_unused,
                                                is_grads_batched, materialize_grads)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    result = _grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
                   materialize_grads)
    return result if keys is None else dict(zip(keys, result))


def _grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
          materialize_grads):
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if create_graph:        # the backward recorded, differentiable again (implies retain)
        from .double_backward import grad as recorded_grad
        return recorded_grad(outputs, inputs, grad_outputs, allow_unused, materialize_grads,
                             _check)
    seeds = [_seed(i, t, g) for i, (t, g) in enumerate(zip(outputs, grad_outputs))]
    for t in inputs:            # after the outputs' checks, as PyTorch
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    results = [None] * len(inputs)
    work = {}
    for t, seed in seeds:
        if t._tape is not None:
            _add_root(work, t._tape, t._slot, seed)
    while work:                     # through links into other tapes, as backward does
        tape, roots = work.pop(max(work))
        run = _Sweep(tape, roots, bool(retain_graph), stage=True, inputs=inputs,
                     outputs=outputs)
        try:
            run.sweep_all()
            for i, t in enumerate(inputs):
                g = run.captured.get(t._slot) if t._tape is tape else None
                g = run.adjoint_of_tensor(t) if g is None else g
                if g is not None:
                    g = g.reshape(_shape(t))
                    results[i] = g.copy() if results[i] is None else results[i] + g
            run.retained_grads()        # PyTorch's retain_grad hooks run in grad() too
            run.onward(work)
            run.free()
        finally:
            run.close()
    for t, seed in seeds:                 # a leaf output that is itself an input
        if t._tape is None and not any(x is t for x in inputs):
            root_hooks(t, seed)           # (or not: its hooks run all the same)
        for i, x in enumerate(inputs):
            if x is t and t._tape is None:
                seed = seed.reshape(_shape(t))
                results[i] = seed if results[i] is None else results[i] + seed
    hooked = {}
    for i, t in enumerate(inputs):       # a leaf input's hooks, once each: PyTorch runs
        hooks = getattr(t._node, "hooks", None) if t._tape is None else None   # them on
        if hooks and results[i] is not None:          # the gradient grad() returns
            if id(t) not in hooked:
                hooked[id(t)] = _call_hooks(hooks.values(), results[i], _shape(t), t._dtype)
            results[i] = hooked[id(t)]
    out = []
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None:
            if materialize_grads:
                g = np.zeros(_shape(t))
            elif not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} appears to not "
                                   "have been used in the graph. Set allow_unused=True if this "
                                   "is the desired behavior.")
            else:
                out.append(None)
                continue
        out.append(_new(np.array(g, t.dtype.np), t.dtype))
    return tuple(out)


def _simple(tape):
    """Can one kernel call do this tape's backward (kernels.backward_all)?"""
    return not (tape.hooks or tape.retained or tape.links or tape.big or tape.functions
                or tape.dirty or tape.unsaved or tape.dtypes == 3 or _anomaly[0]
                or (_DEFERRED and deferred_on(tape))) \
        and (not tape.saved or tape.epoch == _INPLACE[0])


_SWEEPS = [None]           # the generated sweeps module, once imported
_KERNELS = [None]          # the kernels module, once imported (an import costs calls)


def _backward_all(tape, root, retain):
    """The whole backward of a simple tape in one kernel call: a constant number of
    Python calls, whatever its records and leaves."""
    sweeps = _SWEEPS[0]
    if sweeps is None:                  # Numba loads at the first backward
        from ._generated import sweeps
        _SWEEPS[0] = sweeps
    st = _local.state or thread_state()       # later operations start a new tape
    if st._tape is not None and st._tape() is tape:
        st.tape = None
    slot, seed = root
    objs = tape.objs
    freed = tape.freed
    check = freed is not None               # swept before: a freed record must not run
    if freed is None:
        freed = tape.freed = np.zeros(len(tape), np.uint8)
    like = _F32 if tape.dtypes == 1 else _F64
    try:
        if tape.ptrs is not None:           # a tg.compile replay's tape: its addresses given
            from .replay_backward import backward_all_at, backward_scalars_at
            run = backward_scalars_at if tape.rows == 0 and not tape.full else backward_all_at
            reached = run(*tape.arrays(), tape.ptrs, slot, seed.reshape(-1), like, freed, check,
                          retain)
        else:
            backward_all = tape.sweep_tier(sweeps)
            key = (backward_all, like is _F32)
            ids = np.fromiter(map(id, objs), np.int64, len(objs))
            if seed.ndim != 1:
                seed = seed.reshape(-1)
            # the tape's bytearrays themselves: the kernel views them (no Python views)
            if key in _warm:                # (first_call's check, without its call)
                reached = backward_all(tape.rec, tape.static, tape.dyn, ids, slot, seed,
                                       like, freed, check, retain)
            else:
                reached = first_call(key, backward_all, tape.rec, tape.static, tape.dyn, ids,
                                     slot, seed, like, freed, check, retain)
    except BaseException:
        tape.left()
        raise
    if not retain and reached == len(freed):
        tape.drop_values()          # all of it freed: nothing to remember it by (tape.left)
    else:
        tape.left()
        if reached < 0:
            raise RuntimeError(SECOND_TIME)


def _leave(tape):
    """Later operations start a new tape: this one lives on only while tensors refer to it
    (a graph not yet backwarded, a retained one)."""
    st = thread_state()
    if st._tape is not None and st._tape() is tape:
        st.tape = None
    tape.left()


def _add_root(work, tape, slot, seed):
    """work: {tape id: (tape, roots)}. Tapes are swept newest first (a link points to an
    older tape), so that each runs once, with all its roots and what its links bring."""
    work.setdefault(tape.id, (tape, []))[1].append((slot, seed))


_ONE = np.ones(())
_SEED = np.ones(1)          # backward_plain's seed (the kernels only read it)


def _seed(i, t, g):
    if not isinstance(t, Tensor) or not t._rg:
        raise RuntimeError(f"element {i} of tensors does not require grad and does not have "
                           "a grad_fn")
    shape = _shape(t)
    if g is None:
        if len(shape) and math.prod(shape) != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return t, _ONE.reshape(shape).copy()
    if not isinstance(g, Tensor):
        g = _tensor_from(g, dtype=t.dtype)
    if _shape(g) != shape:
        raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                           f"{_size_repr(_shape(g))} and output[{i}] has a shape of "
                           f"{_size_repr(shape)}.")
    return t, np.asarray(_array(g), np.float64)     # int and bool gradients cast, as PyTorch


def _size_repr(shape):
    return f"tapegrad.Size({list(shape)})"


# ----- one sweep of one tape ------------------------------------------------------------------
class _Sweep:
    """The arrays of one backward over one tape, from prepare to free."""

    def __init__(self, tape, roots, retain_graph, stage, inputs=None, run_inputs=False,
                 outputs=()):
        if _KERNELS[0] is None:                         # Numba loads at the first backward
            from . import kernels
            _KERNELS[0] = kernels
        data_pointers, prepare = _KERNELS[0].data_pointers, _KERNELS[0].prepare
        self.tape, self.retain, self.stage = tape, retain_graph, stage
        self.roots = roots
        self.outputs = outputs          # the tensors backward or grad() started from
        self.rq = None
        _leave(tape)
        objs = tape.objs
        f32 = tape.dtypes == 1              # a float32 tape is swept in float32
        if tape.dtypes == 3:                # mixed float32/float64: sweep in float64
            objs = [o.astype(np.float64) if o.dtype == np.float32 else o for o in objs]
        self.objs = objs
        self.rq, self.rd, self.ms, self.md = tape.arrays()
        n = len(objs)
        self.ptrs = np.empty(n, np.int64)
        if tape.ptrs is not None:           # a tg.compile replay's arena
            self.ptrs = tape.ptrs
        elif _data_offset_ok():
            data_pointers(np.fromiter(map(id, objs), np.int64, n), self.ptrs)
        else:
            self.ptrs[:] = _pointers(objs)
        slots = np.array([s for s, _ in roots], np.int64)
        nrec = len(self.rq) // 3
        self.reach = np.zeros(nrec, np.uint8)
        self.off = np.full(len(self.ms), -1, np.int64)
        total = prepare(self.rq, self.rd, self.ms, self.md, self.ptrs, slots, stage, f32,
                        self.reach, self.off)
        dt = np.float32 if f32 else np.float64
        self.work = np.zeros(total, dt)
        self.sg = np.zeros(nrec, dt)
        # runs: the records whose backward runs (and is freed); seen: the slots whose
        # gradient is computed (hooks, retained grads); srq: the records as swept
        self.runs = self.seen = self.reach
        self.srq = self.rq
        # grad(): an input whose record runs gives its gradient from before its hooks (PyTorch)
        self.captured = None if inputs is None or run_inputs else {}
        self.inputs = inputs
        if inputs is not None:          # grad(), backward(inputs=...): only what leads there
            from .grad_reach import restrict
            restrict(self, inputs, run_inputs)
        _check(self)
        for slot, seed in roots:
            self.adjoint(slot)[:] += seed.ravel()

    # ----- adjoints --------------------------------------------------------------------
    def adjoint(self, s):
        """The flat adjoint of slot s, as a NumPy view (of sg, the workspace or a leaf's
        grad buffer)."""
        if int(self.rq[3 * s]) & SCALAR:
            return self.sg[s:s + 1]
        k = int(self.rd[3 * s + 2])
        o = int(self.off[k])
        if o >= 0:
            return self.work[o:o + int(self.ms[k, SIZE])]
        node = self.tape.leaf_nodes[int(self.rq[3 * s]) >> SHIFT]   # accumulated in place
        return node.buf.reshape(-1)

    def leaf_adjoint(self, node):
        """A staged leaf's adjoint: the sum over its records on this tape, or None."""
        total = None
        for i, n in enumerate(self.tape.leaf_nodes):
            if n is node:
                s = self._leaf_slot(i)
                if self.reach[s]:
                    g = self.adjoint(s)
                    total = g.copy() if total is None else total + g
        return total

    def _leaf_slot(self, i):
        heads = self.rq[0::3]
        hits = np.nonzero(((heads & OPMASK) == LEAF) & ((heads >> SHIFT) == i))[0]
        return int(hits[0])

    def adjoint_of_tensor(self, t):
        """The adjoint of tensor t on this tape (None when it was not reached)."""
        if t._tape is self.tape:
            return self.adjoint(t._slot).copy() if self.reach[t._slot] else None
        node = t._node                   # a leaf: on each tape that used it, maybe older
        if t._tape is None and node is not None:
            return self.leaf_adjoint(node)
        return None

    # ----- sweeping --------------------------------------------------------------------
    def sweep_all(self):
        """The sweep from the highest root down to record 0, stopping at hooked slots."""
        start = max(s for s, _ in self.roots)
        hooks = self.tape.hooks
        # a custom autograd.Function's backward runs when the sweep has passed all of its
        # outputs: the adjoints of them all are final (autograd/function.py)
        calls = {node._first: node for node, _ in self.tape.functions.values()} \
            if self.tape.functions else {}
        for slot in sorted((s for s in {*hooks, *calls} if s <= start), reverse=True):
            self._down(start, slot + 1)
            shape, dtype, fns = hooks.get(slot, (None, None, None))
            if self.seen[slot] and fns:
                adj = self.adjoint(slot)
                if self.captured is not None and self.runs[slot]:
                    self.captured[slot] = adj.copy()
                adj[:] = _call_hooks(fns.values(), adj, shape, dtype).ravel()
            if slot in calls and self._runs_function(calls[slot]):
                calls[slot].backward_in_sweep(self)
            start = slot
        self._down(start, 0)

    def _runs_function(self, node):
        """Does a custom Function's backward run in this sweep (some output's record runs)?"""
        return self.runs is self.reach or \
            any(s >= 0 and self.runs[s] for s, _, _, _ in node._outputs)

    def _down(self, start, stop):
        """Records start..stop: large matrix products in NumPy in between; in anomaly mode,
        one record at a time."""
        if start < stop:
            return
        sweeps = _SWEEPS[0]
        if sweeps is None:
            from ._generated import sweeps
            _SWEEPS[0] = sweeps
        sweep = sweeps.sweep_full if self.tape.full else sweeps.sweep
        args = (self.srq, self.rd, self.ms, self.md, self.ptrs, self.sg, self.reach, self.off,
                self.work)
        if is_anomaly_enabled():
            for r in range(start, stop - 1, -1):
                if self.runs[r]:
                    if int(self.srq[3 * r]) & BIG:
                        products.backward(self, r)
                    else:
                        sweep(*args, r, r, self.stage)
                    _check_nan(self, r)
            return
        heads = self.srq[3 * stop:3 * start + 3:3]
        for r in (np.nonzero(heads & BIG)[0][::-1] + stop).tolist():
            if self.reach[r]:
                sweep(*args, start, r + 1, self.stage)
                products.backward(self, r)
                start = r - 1
        if start >= stop:
            sweep(*args, start, stop, self.stage)

    # ----- after the sweep -------------------------------------------------------------
    def leaves_to_python(self, pending):
        """Leaves the sweep deferred (hooks, a grad the user assigned): their gradients
        summed into ``pending`` over the tapes a backward goes through (hooks.flush)."""
        if not _DEFERRED:
            return
        tape = self.tape
        for key, node in list(_DEFERRED.items()):
            t = node.variable
            if t is None:                 # the leaf is gone
                del _DEFERRED[key]
                continue
            # a leaf last used on a newer tape (or replayed) may be on this one too
            if node.tape_id != tape.id and node not in tape.leaf_nodes:   # (by identity)
                continue
            g = self.leaf_adjoint(node)
            if g is not None:
                pending[key] = (node, t, g if key not in pending else pending[key][2] + g)

    def accumulate_into(self, targets):
        """backward(inputs=...): only these tensors' .grad receive, once each; a leaf's
        hooks and post-accumulate hooks run, as its AccumulateGrad runs in PyTorch."""
        done = set()
        for t in targets:
            if id(t) in done:
                continue
            done.add(id(t))
            g = self.adjoint_of_tensor(t)
            if g is not None:
                accumulate_hooked(t, g)

    def retained_grads(self, targets=()):
        """Retained tensors the sweep computed a gradient for (not the targets of
        backward(inputs=...): accumulate_into gave them theirs)."""
        skip = {id(t) for t in targets} if targets else ()
        for slot, ref in list(self.tape.retained.items()):
            t = ref()
            if t is not None and t._tape is self.tape and t._slot == slot and \
                    self.seen[slot] and id(t) not in skip:
                with _ACCUMULATE:
                    _accumulate(t, self.adjoint(slot))

    def onward(self, work):
        """Adds the roots of the links this sweep reached to ``work``: backward goes on
        into their tapes."""
        for slot, node in self.tape.links.items():
            if self.runs[slot]:
                _add_root(work, node._tape, node._slot, self.adjoint(slot).copy())

    def free(self):
        """After a backward without retain_graph: what it went through is freed."""
        if not self.retain:
            self.tape.free(self.runs, self.rq)

    def close(self):
        """Drops the views of the tape's bytes (it can then grow again) and the buffers."""
        self.rq = self.rd = self.ms = self.md = self.srq = None
        self.sg = self.work = None


def _data_offset_ok():
    from .ptr import DATA_OFFSET
    return DATA_OFFSET is not None


def _pointers(objs):
    """Data addresses asked of NumPy (where the object layout could not be checked)."""
    return np.fromiter((o.__array_interface__["data"][0] for o in objs), np.int64, len(objs))
