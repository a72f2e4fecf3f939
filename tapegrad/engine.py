"""The backward engine: ``backward()`` and ``grad()``: seeds in, one Numba sweep, gradients out.

backward validates the seeds, freezes the tape into typed arrays, runs the Numba reverse
sweep, checks that nothing the sweep read was changed or freed, and then adds the adjoints
of the reached leaves (and retained tensors) into their persistent ``.grad``. Tensor hooks
split the sweep at their slots: every record that feeds a slot's adjoint comes later on the
tape, so the adjoint is final once the sweep has passed down to it.
"""
import re
import sys
import threading
import warnings

import numpy as np

from . import dtypes as D
from . import products
from .layout import NEEDS_TABLE, adjoint_of
from .ops import BINARY_LAST, CONST, DIV, LEAF, MM, MUL, SCALAR, node_name
from .state import refuse_while_recording, thread_state
from .tape import Tape
from .grad_mode import is_anomaly_enabled
from .tensor import Tensor, _array, _new, _shape

_ACCUMULATE = threading.RLock()   # .grad accumulation, as PyTorch locks AccumulateGrad

SECOND_TIME = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or "
               "if you need to access saved tensors after calling backward.")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates d(sum of tensors * grad_tensors)/d(leaf) into each reached leaf's .grad."""
    refuse_while_recording("backward()")
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    if create_graph:
        raise NotImplementedError("tapegrad: create_graph=True (higher-order gradients) is not "
                                  "supported")
    seeds = [_seed(i, t, g) for i, (t, g) in enumerate(zip(tensors, grad_tensors))]
    only = None if inputs is None else {id(t) for t in
                                        ([inputs] if isinstance(inputs, Tensor) else inputs)}
    by_tape = {}
    for t, seed in seeds:
        if t._tape is None:                       # backward on a leaf itself
            if only is None or id(t) in only:
                _accumulate(t, seed)
            continue
        by_tape.setdefault(id(t._tape), (t._tape, []))[1].append((t._slot, seed))
    work = list(by_tape.values())
    while work:                     # a link to another tape continues the backward there
        tape, roots = work.pop()
        _, onward = _run(tape, roots, bool(retain_graph), only)
        work.extend(onward)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple; no .grad is
    touched."""
    refuse_while_recording("autograd.grad()")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if create_graph:
        raise NotImplementedError("tapegrad: create_graph=True (higher-order gradients) is not "
                                  "supported")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError(f"One of the differentiated Tensors does not require grad")
    seeds = [_seed(i, t, g) for i, (t, g) in enumerate(zip(outputs, grad_outputs))]
    results = [None] * len(inputs)
    # Tapes are swept newest first (a link points to an older tape), so that every tape
    # runs once, with its roots and all the adjoints its links bring to it.
    pending = {}
    for t, seed in seeds:
        if t._tape is not None:
            pending.setdefault(t._tape.id, (t._tape, []))[1].append((t._slot, seed))
    while pending:
        tape, roots = pending.pop(max(pending))
        wanted = [(i, _slot_on(t, tape)) for i, t in enumerate(inputs)]
        wanted = [(i, s) for i, s in wanted if s >= 0]
        found, onward = _run(tape, roots, bool(retain_graph), set(), [s for _, s in wanted])
        for link_tape, link_roots in onward:
            pending.setdefault(link_tape.id, (link_tape, []))[1].extend(link_roots)
        for (i, s), g in zip(wanted, found):
            if g is not None:
                g = np.asarray(g).reshape(_shape(inputs[i]))
                results[i] = g if results[i] is None else results[i] + g
    for t, seed in seeds:                 # a leaf output that is itself an input
        for i, x in enumerate(inputs):
            if x is t and t._tape is None:
                results[i] = seed if results[i] is None else results[i] + seed
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


def _slot_on(t, tape):
    """The slot of tensor t on tape, or -1 when it was not used there (a leaf has a source
    record on each tape that used it; its node remembers only the latest)."""
    if t._tape is tape:
        return t._slot
    node = t._node
    if t._tape is None and node is not None:
        if node.tape_id == tape.id:
            return node.slot
        return next((s for s, n in tape.leaves.items() if n is node), -1)
    return -1


def _seed(i, t, g):
    if not isinstance(t, Tensor) or not t._rg:
        raise RuntimeError(f"element {i} of tensors does not require grad and does not have "
                           "a grad_fn")
    shape = _shape(t)
    if g is None:
        if t.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return t, np.ones(shape)
    if not isinstance(g, Tensor):
        from .factory import tensor
        g = tensor(g, dtype=t.dtype)
    if _shape(g) != shape:
        raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                           f"{_size_repr(_shape(g))} and output[{i}] has a shape of "
                           f"{_size_repr(shape)}.")
    return t, np.asarray(_array(g), np.float64)     # int and bool gradients cast, as PyTorch


def _size_repr(shape):
    return f"tapegrad.Size({list(shape)})"


def _run(tape, roots, retain_graph, only, wanted=()):
    """Sweeps ``tape`` from ``roots`` ((slot, seed) pairs) and accumulates into the .grad of
    reached leaves (``only``: the ids of the tensors allowed to receive, None: all).
    Returns the adjoints of the ``wanted`` slots (None where not reached)."""
    if tape.freed is True:
        raise RuntimeError(SECOND_TIME)
    R, sv, m, M, av, gsize = tape.freeze()
    n = R.shape[0]
    sg = np.zeros(n)
    ag = np.zeros(gsize)
    reach = np.zeros(n, np.uint8)
    for slot, seed in roots:
        r = slot // 5
        reach[r] = 1
        adjoint_of(r, m, M, sg, ag)[:] += seed.ravel()
    arrays = (R, sv, sg, m, M, av, ag, reach)
    start = max(s for s, _ in roots) // 5
    # custom autograd.Functions: the sweep stops at a call's first output, where the
    # adjoints of all its outputs are final, for its backward in Python (autograd/function.py)
    calls = {node._first: node for node, _ in tape.functions.values()}
    for slot in sorted((s for s in {*tape.hooks, *calls} if s // 5 <= start), reverse=True):
        _sweep_down(tape, arrays, start, slot // 5 + 1)
        shape, dtype, fns = tape.hooks.get(slot, (None, None, None))
        if reach[slot // 5] and fns:
            adj = adjoint_of(slot // 5, m, M, sg, ag)
            adj[:] = _call_hooks(fns.values(), adj, shape, dtype).ravel()
        if slot in calls:
            calls[slot].backward_in_sweep(arrays, retain_graph)
        start = slot // 5
    _sweep_down(tape, arrays, start, 0)
    _check(tape, R, reach)
    found = [np.array(adjoint_of(s // 5, m, M, sg, ag)) if reach[s // 5] else None
             for s in wanted]
    onward = {}
    for slot, node in tape.links.items():
        if reach[slot // 5]:
            seed = np.array(adjoint_of(slot // 5, m, M, sg, ag))
            onward.setdefault(id(node._tape), (node._tape, []))[1].append((node._slot, seed))
    with _ACCUMULATE:               # two threads' backwards into one leaf: no lost update
        _scatter(tape.leaves, _variable, m, M, sg, ag, reach, only)
        _scatter(tape.retained,
                 lambda ref, tape=tape: _retaining(ref(), tape), m, M, sg, ag, reach, only)
    if not retain_graph:
        tape.free(reach, R)
    st = thread_state()
    if st.tape is tape:
        # later operations start a new tape: this one lives on only while tensors refer
        # to it (a graph not yet backwarded, a retained one), reached through link records
        st.tape = Tape()
    return found, list(onward.values())


def _sweep_down(tape, arrays, start, stop):
    """Runs the sweep over records start..stop; matrix products go to NumPy in between
    (see products.py); in anomaly mode, one record at a time."""
    R, sv, sg, m, M, av, ag, reach = arrays
    if start < stop:
        return
    from .kernels import reverse_sweep        # Numba is imported at the first backward
    if is_anomaly_enabled():
        for r in range(start, stop - 1, -1):
            if reach[r]:
                _sweep_down_plain(arrays, r, r, reverse_sweep)
                _check_nan(tape, R, r, m, M, sg, ag)
        return
    _sweep_down_plain(arrays, start, stop, reverse_sweep)


def _sweep_down_plain(arrays, start, stop, reverse_sweep):
    R, sv, sg, m, M, av, ag, reach = arrays
    for r in reversed(products.records(R, m, M, stop, start)):
        reverse_sweep(R, sv, sg, m, M, av, ag, reach, start, r + 1, NEEDS_TABLE)
        if reach[r]:
            products.backward(int(R[r, 0]), r, R, m, M, av, sg, ag, reach)
        start = r - 1
    if start >= stop:
        reverse_sweep(R, sv, sg, m, M, av, ag, reach, start, stop, NEEDS_TABLE)


def _check_nan(tape, R, r, m, M, sg, ag):
    """Anomaly mode: names the node whose backward just put a NaN in an operand's grad."""
    op = int(R[r, 0]) % SCALAR
    operands = [int(R[r, 1])] + ([int(R[r, 2])] if op <= BINARY_LAST or op == MM else [])
    for i, s in enumerate(operands):
        if s >= 0 and np.isnan(adjoint_of(s // 5, m, M, sg, ag)).any():
            name = node_name(op, int(R[r, 1]), -1)
            trace = tape.traces.get(5 * r)
            if trace:
                warnings.warn(f"Error detected in {name}. Traceback of forward call that "
                              f"caused the error:\n{trace}", UserWarning, stacklevel=5)
            raise RuntimeError(f"Function '{name}' returned nan values in its {i}th output.")


def _call_hooks(hooks, adj, shape, dtype):
    """Calls tensor hooks with the gradient; a hook's return value replaces it."""
    g = _new(np.array(adj.reshape(shape), dtype.np), dtype)
    for fn in list(hooks):
        res = fn(g)
        if res is not None:                       # PyTorch's checks, in its order and words
            if not isinstance(res, Tensor):
                raise TypeError(f"expected Variable, but hook returned "
                                f"'{type(res).__name__}'")
            name = getattr(fn, "__name__", "<unknown>")
            if res._dtype is not dtype:
                raise RuntimeError(f"hook '{name}' has changed the type of value (was "
                                   f"{D.tensor_type(dtype)} got {D.tensor_type(res._dtype)})")
            if _shape(res) != shape:
                raise RuntimeError(f"hook '{name}' has changed the size of value")
            g = res
    return np.asarray(_array(g), np.float64)


def _retaining(t, tape):
    return t if t is not None and t._tape is tape else None


def _scatter(targets, tensor_of, m, M, sg, ag, reach, only):
    """Adds the adjoint of each reached slot in ``targets`` into its tensor's .grad. The
    grads of Python-float leaves are cells of shared pages: those without hooks are added
    to in one vectorized step."""
    if not targets:
        return
    rows = np.fromiter(targets.keys(), np.int64, len(targets)) // 5
    hit = reach[rows] > 0
    scalar = m[rows] < 0
    items = list(targets.items())
    if only is None and tensor_of is _variable:
        ids = np.fromiter((n.cell_id if not n.hooks and not n.post_hooks else -1
                           for _, n in items), np.int64, len(items))
        fast = hit & scalar & (ids >= 0)
        if fast.any():
            _PAGES.add(ids[fast], sg[rows[fast]])
            hit &= ~fast
    ids, vals = [], []                  # cells to add to, batched into one NumPy call
    for k in np.nonzero(hit)[0].tolist():
        slot, target = items[k]
        r = int(rows[k])
        t = tensor_of(target)
        if t is None or (only is not None and id(t) not in only) or t._slot != slot \
                and t._tape is not None:
            continue
        node = t._node if t._tape is None else None
        if node is not None and node.hooks:         # leaf hooks see the grad first
            _accumulate(t, _call_hooks(node.hooks.values(), adjoint_of(r, m, M, sg, ag),
                                       _shape(t), t._dtype))
        elif scalar[k] and node is not None and _grad_cell(t, node) >= 0:
            ids.append(node.cell_id)
            vals.append(sg[r])
        else:
            _accumulate(t, adjoint_of(r, m, M, sg, ag))
        if node is not None and node.post_hooks:
            if ids:
                _PAGES.add(np.array(ids), np.array(vals))
                ids, vals = [], []
            for fn in list(node.post_hooks.values()):
                fn(t)
    if ids:
        _PAGES.add(np.array(ids), np.array(vals))


def _variable(node):
    return node.variable


class _GradPages:
    """Persistent storage for the grads of Python-float leaves: each grad is a 0-d view of
    one cell of a page, so ``x.grad.numpy()`` is a view that sees later accumulation, and a
    backward adds into many cells with one NumPy call per page. A page whose cells are all
    dead (no grad tensor views it) is reused."""
    SIZE = 4096

    def __init__(self):
        self.pages = []        # every page, of any dtype; a cell's id is page * SIZE + index
        self.current = {}      # dtype name -> [page number, next free index]

    def cell(self, dtype):
        """A fresh zeroed cell for a grad of tapegrad dtype ``dtype``: (page, index)."""
        cur = self.current.get(dtype.name)
        if cur is None or cur[1] == self.SIZE:
            cur = self.current[dtype.name] = [self._free_page(dtype.np), 0]
        p, i = cur
        cur[1] += 1
        self.pages[p][i] = 0
        return p, i

    def _free_page(self, np_dtype):
        for p, page in enumerate(self.pages):
            if page.dtype == np_dtype and sys.getrefcount(page) <= 3 and \
                    all(c[0] != p for c in self.current.values()):
                return p                       # only this list (and the call) refer to it
        self.pages.append(np.zeros(self.SIZE, np_dtype))
        return len(self.pages) - 1

    def add(self, ids, values):
        """pages[id // SIZE][id % SIZE] += value for each cell id."""
        pno = ids // self.SIZE
        for p in np.unique(pno).tolist():
            sel = pno == p
            np.add.at(self.pages[p], ids[sel] % self.SIZE, values[sel])


_PAGES = _GradPages()


def _grad_cell(t, node):
    """The cell id of the grad of Python-float leaf t, allocating it on first use; -1 when
    the user has put another tensor in t.grad."""
    if t._grad is None:
        p, i = _PAGES.cell(t._dtype)
        t._grad = _new(_PAGES.pages[p][i:i + 1].reshape(()), t._dtype)
        node.cell_id = p * _PAGES.SIZE + i
    return node.cell_id


def _check(tape, R, reach):
    """Raises PyTorch's errors for a sweep that read freed or modified values."""
    ops = R[:, 0].astype(np.int64) % SCALAR
    if isinstance(tape.freed, np.ndarray):
        if (tape.freed & (reach[:len(tape.freed)] > 0)).any():
            raise RuntimeError(SECOND_TIME)
    for slot, node in tape.links.items():     # a link into a graph already freed
        if reach[slot // 5]:
            freed = node._tape.freed
            if freed is True or (isinstance(freed, np.ndarray) and node._slot // 5 < len(freed)
                                 and freed[node._slot // 5]):
                raise RuntimeError(SECOND_TIME)
    for consumer, slot, cell, version, array, ref in tape.saved:
        if reach[consumer // 5] and cell[0] != version:
            # PyTorch names a saved output by the node that saved it, and a saved input
            # by the node that now produces it
            _raise_modified(tape, slot, array.shape, array.dtype, cell[0], version,
                            None if consumer == slot else ref)
    if tape.dirty:
        need = NEEDS_TABLE[ops]
        binary = (ops <= BINARY_LAST) | (ops == MM)
        a = R[:, 1].astype(np.int64)
        b = np.where(binary, R[:, 2], -1).astype(np.int64)
        grad_a = (a >= 0) & (ops[np.maximum(a, 0) // 5] != CONST)
        grad_b = (b >= 0) & (ops[np.maximum(b, 0) // 5] != CONST)
        cross = np.isin(ops, (MUL, DIV))      # x's value serves only y's grad (and back)
        read_a = (need & 1 > 0) & ~(cross & ~grad_b)
        read_b = (need & 2 > 0) & ~((ops == MUL) & ~grad_a)
        here = np.arange(len(ops)) * 5
        for slot, (expected, now, dtype, ref) in tape.dirty.items():
            users = ((a == slot) & read_a) | ((b == slot) & read_b)
            own = (here == slot) & (need & 4 > 0)       # a saved output, named by its node
            if (own & (reach > 0)).any():
                _raise_modified(tape, slot, (), dtype, now, expected)
            if (users & (reach > 0)).any():
                _raise_modified(tape, slot, (), dtype, now, expected, ref)


def _raise_modified(tape, slot, shape, dtype, now, expected, ref=None):
    """PyTorch's error, naming the node that now produces the changed tensor."""
    kind = {"float32": "FloatTensor", "float64": "DoubleTensor"}.get(np.dtype(dtype).name,
                                                                     "Tensor")
    t = ref() if ref is not None else None
    if t is not None and t._tape is not None:
        tape, slot = t._tape, t._slot
    op = tape.op_of(slot)
    where = ""
    if op not in (LEAF, CONST) and not (t is not None and t._tape is None):
        a, _ = tape.operands(slot)
        where = ", which is output 0 of " + re.sub(r"Backward\d+$", "", node_name(op, a, -1)) \
            + ","
    raise RuntimeError("one of the variables needed for gradient computation has been "
                       f"modified by an inplace operation: [tapegrad.{kind} {list(shape)}]"
                       f"{where} is at version {now}; expected version {expected} instead. "
                       "Hint: enable anomaly detection to find the operation that failed to "
                       "compute its gradient, with "
                       "torch.autograd.set_detect_anomaly(True, check_nan=False).")


class RemovableHandle:
    """What register_hook returns: ``handle.remove()`` takes the hook off."""
    __slots__ = ("_fns", "_key")

    def __init__(self, fns, key):
        self._fns = fns
        self._key = key

    def remove(self):
        self._fns.pop(self._key, None)


def register_hook(t, fn):
    """Calls ``fn(grad)`` when t's gradient is computed; a returned tensor replaces it."""
    refuse_while_recording("register_hook()")
    if not t._rg:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if t._tape is None:
        node = _leaf_node(t)
        fns = node.hooks = node.hooks or {}
    else:
        entry = t._tape.hooks.setdefault(t._slot, (_shape(t), t._dtype, {}))
        fns = entry[2]
    key = object()
    fns[key] = fn
    return RemovableHandle(fns, key)


def register_post_accumulate_grad_hook(t, fn):
    """Calls ``fn(t)`` after a backward has accumulated into a leaf's .grad."""
    refuse_while_recording("register_post_accumulate_grad_hook()")
    if t._tape is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                           "tensors")
    if not t._rg:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    node = _leaf_node(t)
    fns = node.post_hooks = node.post_hooks or {}
    key = object()
    fns[key] = fn
    return RemovableHandle(fns, key)


def _leaf_node(t):
    from .graph import AccumulateGrad
    if t._node is None:
        t._node = AccumulateGrad(t)
    return t._node


Tensor.register_hook = register_hook
Tensor.register_post_accumulate_grad_hook = register_post_accumulate_grad_hook


def _accumulate(t, g):
    """t.grad += g, allocating t.grad (in t's dtype and shape) the first time."""
    g = np.asarray(g).reshape(_shape(t))
    if t._grad is None:
        t._grad = _new(np.array(g, t._dtype.np), t._dtype)
    else:
        gv = t._grad._v
        if type(gv) is not np.ndarray:          # a grad assigned by the user as a scalar
            t._grad = _new(np.array(gv + g, t._dtype.np), t._dtype)
        else:
            np.add(gv, g, out=gv, casting="unsafe")

