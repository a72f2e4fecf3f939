"""What a tg.compile recording does beyond recording operations: the training step.

Inside a recording, ``backward()``, in-place changes (``sub_``, ``add_``, ``mul_``,
``div_``, ``zero_``, ``fill_``, ``copy_``) and ``.grad = None`` run as they run eagerly (the
first call is an eager call), and are recorded as **effects** at their place on the tape
(``Recording.effects``), which the replays repeat in order (``replay_step``):

- ``("backward", pos, roots, retain)``: a reverse sweep over the records before ``pos``
  from ``roots`` = [(slot, seed slot or -1 for ones)], adding into the leaves' grads;
- ``("store", pos, slot, t)``: slot's value written into tensor t's memory (an in-place
  change of a tensor from outside the recording: an argument, a parameter, a grad, an
  optimizer's state);
- ``("fill", pos, value, t)``: t's memory filled with value (``zero_``, ``fill_``);
- ``("clear", pos, t)``: leaf t's grad set to None.

An in-place change of a value computed inside the recording needs no effect: the tensor
simply names its new record from then on (SSA renaming). A tensor from outside that was
changed names its new value too (a later read in the same call sees it), except a leaf that
requires grad, whose next read records a fresh leaf (so that gradients still reach it),
read at that place in the replay, after the store.

Whatever a replay could not repeat faithfully is refused at the first call with the
``tg.compile`` error (``state.refuse_while_recording``): an in-place change of a view or
of a tensor that has views, an in-place change under no_grad of a value that requires
grad, backward() with ``inputs=`` or into a graph recorded elsewhere, a ``.grad``
assignment other than None.
"""
import weakref

import numpy as np

from .leaves import leaf_node
from .layout import OPMASK, SHIFT
from .ops import BY_CODE, FAMILY, F_STRIDED, LEAF, LINK, NEEDS
from .recording import slot_of
from .state import refuse_while_recording, thread_state

_FAMILY = np.array(FAMILY, np.int64)
_NEEDS = np.array(NEEDS, np.int64)


def _refuse(what):
    refuse_while_recording(what)


def grad_owner(tape, t):
    """The leaf whose own grad storage tensor t views (a ``.grad`` read), or None."""
    v = t._v
    if t._tape is not None or type(v) is not np.ndarray or not v.flags.c_contiguous:
        return None
    addr = v.__array_interface__["data"][0]
    for node in tape.leaf_nodes:
        if node.page is not None and addr == (node.buf_addr if node.buf is not None
                                              else node.addr):
            leaf = node.variable
            if leaf is not None and leaf.numel() == v.size:
                return leaf
    return None


def note_owner(rec, g):
    """Notes, for every source record of tensor g, the leaf whose grad storage it views
    (before anything replaces g's memory: a grad set to None keeps its values in a copy
    when the user holds it)."""
    owner = grad_owner(rec.tape, g)
    for s, t in rec.tape.consts.items():
        if t is g:
            rec.owners[s] = owner


def stale_view_read(rec):
    """Does a record read a view after its base changed in place (eagerly a view sees the
    change; a replay's view keeps the values it was taken with)?"""
    if not rec.stale_views:
        return False
    from .ops import F_BINARY, F_MATMUL, F_SETITEM
    from .layout import CONST_A, CONST_B
    tape = rec.tape
    rq, rd, ms, md = tape.arrays()
    try:
        h = rq[0::3]
        fam = _FAMILY[h & OPMASK]
        first = np.where(fam == 0, -1, h >> SHIFT)
        two = np.isin(fam, (F_BINARY, F_MATMUL, F_SETITEM)) & ((h & (CONST_A | CONST_B)) == 0)
        b = rd[1::3]
        second = np.where(two, np.where(np.isfinite(b), b, -1.0), -1.0).astype(np.int64)
        for pos, views in rec.stale_views:
            if np.isin(first[pos:], views).any() or np.isin(second[pos:], views).any():
                return True
            for slot, parts in tape.multi.items():
                if slot >= pos and np.isin(parts, views).any():
                    return True
        return False
    finally:
        del rq, rd, ms, md


def _target(rec, t):
    """How an effect names tensor t: (weak reference, the leaf whose grad it is)."""
    return (weakref.ref(t), grad_owner(rec.tape, t))


def _heads(tape):
    return np.frombuffer(tape.rec, np.int64)[0::3]


def _slot_here(t, tape):
    """t's slot on tape (a result or a source), or -1 when t is not on it."""
    if t._tape is tape:
        return t._slot
    node = t._node
    if t._tape is None and node is not None and node.tape_id == tape.id:
        return node.slot
    return -1


def _check_not_viewed(rec, t, what):
    """An in-place change of a view is refused (the replay would not change its base).
    Views taken of t before the change read its old values from then on: a record that
    reads one later, or one that outlives the call, makes the recording run eagerly
    (``Recording.stale_views``)."""
    tape = rec.tape
    s = _slot_here(t, tape)
    if s < 0:
        return
    if t._tape is tape and _FAMILY[tape.op_of(s)] == F_STRIDED:
        _refuse(f"{what} of a view")
    h = _heads(tape)
    views = np.nonzero((_FAMILY[h & OPMASK] == F_STRIDED) & ((h >> SHIFT) == s))[0]
    if len(views):
        rec.stale_views.append((len(tape), views))


def eager_requires(rec, slot):
    """Would the tensor of this recorded slot require grad in an eager run (does a
    gradient from a leaf that requires grad reach it, not through a detach)?"""
    from .replay_kernels import requires_of
    tape = rec.tape
    rq, rd, ms, md = tape.arrays()
    try:
        h = rq[0::3]
        req = np.zeros(len(h), np.uint8)
        req[((h & OPMASK) == LEAF) | ((h & OPMASK) == LINK)] = 1
        requires_of(rq, rd, md, _pointers(tape), req)
        return bool(req[slot])
    finally:
        del rq, rd, ms, md


def _pointers(tape):
    """The data addresses of the arrays the tape keeps (what the kernels read)."""
    from .kernels import data_pointers
    objs = tape.objs
    ptrs = np.empty(len(objs), np.int64)
    data_pointers(np.fromiter(map(id, objs), np.int64, len(objs)), ptrs)
    return ptrs


def reach_of(tape, slots):
    """What a backward from these slots reaches (kernels.prepare)."""
    from .kernels import prepare
    rq, rd, ms, md = tape.arrays()
    try:
        reach = np.zeros(len(rq) // 3, np.uint8)
        prepare(rq, rd, ms, md, _pointers(tape), np.array(slots, np.int64), True, False,
                reach, np.full(len(ms), -1, np.int64))
        return reach
    finally:
        del rq, rd, ms, md


# ----- backward() -------------------------------------------------------------------------
def backward(rec, tensors, grad_tensors, retain_graph, create_graph, inputs):
    """``backward()`` inside a recording: checked, run now (with the graph kept for the
    recording's own use: what eager frees is tracked here), recorded as an effect."""
    from . import engine
    from .base import TensorBase as Tensor
    tape = rec.tape
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    grad_tensors = list(grad_tensors)
    if create_graph:
        raise NotImplementedError("tapegrad: create_graph=True (higher-order gradients) is not "
                                  "supported")
    seeds = [engine._seed(i, t, g) for i, (t, g) in enumerate(zip(tensors, grad_tensors))]
    if inputs is not None:
        _refuse("backward(inputs=...)")
    roots = []
    for (t, _), g in zip(seeds, grad_tensors):
        if t._tape is not tape:
            _refuse("backward() of a tensor not computed inside the compiled function")
        if g is None:
            seed = -1
        elif isinstance(g, Tensor):
            seed = slot_of(g, tape)
        else:
            from .factory import tensor
            seed = slot_of(tensor(np.asarray(seeds[len(roots)][1]), dtype=t.dtype), tape)
        roots.append((t._slot, seed))
    reach = reach_of(tape, [s for s, _ in roots])
    n = len(reach)
    h = _heads(tape)[:n]
    if ((h & OPMASK)[reach > 0] == LINK).any():
        _refuse("backward() into a graph recorded outside the compiled function")
    if len(rec.freed) < n:
        rec.freed = np.concatenate([rec.freed, np.zeros(n - len(rec.freed), np.uint8)])
    if (rec.freed[:n] & reach).any():
        raise RuntimeError(engine.SECOND_TIME)
    st = thread_state()
    saved = st.recording
    st.recording = None
    try:                        # the eager effect; the recording keeps its values
        engine._backward(tensors, grad_tensors, True, False, None)
    finally:
        st.recording = saved
        st.tape = tape
        tape.freed = None
    if not retain_graph:        # what an eager backward frees, later backwards find freed
        rec.freed[:n] |= ((reach > 0) & (_NEEDS[h & OPMASK] != 0)).view(np.uint8)
    # the grads it added into: a later read of one records it afresh (after the backward)
    for i in np.nonzero((reach > 0) & ((h & OPMASK) == LEAF))[0].tolist():
        t = tape.leaf_nodes[int(h[i]) >> SHIFT].variable
        g = None if t is None else t._grad
        if g is not None and g._node is not None and g._node.tape_id == tape.id:
            note_owner(rec, g)
            g._node.tape_id = 0
    rec.effects.append(("backward", len(tape), roots, bool(retain_graph)))


# ----- in-place changes -----------------------------------------------------------------
def _outside(rec, t):
    """Is t a tensor from outside the recording's records (a leaf, or a result of another
    tape): an in-place change of it is a store into its memory."""
    return t._tape is not rec.tape


def _named(rec, t, slot):
    """t's value is now that of the record at slot: later reads of t in this call read it."""
    tape = rec.tape
    if not _outside(rec, t):
        t._slot = slot
        return
    if t._tape is not None:            # another tape's result: each read links afresh
        return
    node = t._node
    if t._rg:                          # a leaf that requires grad: a fresh leaf record
        if node is not None and node.tape_id == tape.id:
            node.tape_id = 0
        return
    if node is None:
        node = leaf_node(t)
    node.tape_id = tape.id
    node.slot = slot


def _store(rec, t, slot, what):
    """t was changed in place to the value of slot: the replay writes it into t's memory."""
    if _outside(rec, t):
        v = t._v
        if type(v) is np.ndarray and not v.flags.c_contiguous:
            _refuse(f"{what} of a non-contiguous tensor")
        rec.effects.append(("store", len(rec.tape), slot, _target(rec, t)))
    _named(rec, t, slot)


def _prepare_inplace(rec, t, what):
    """Checks shared by every in-place change; returns whether grad mode records it with a
    gradient (as eager would)."""
    st = thread_state()
    _check_not_viewed(rec, t, what)
    if not _outside(rec, t) and not st.enabled and eager_requires(rec, t._slot):
        _refuse(f"{what} under no_grad of a value that requires grad")
    if _outside(rec, t) and t._tape is not None and st.enabled:
        _refuse(f"{what} of a result computed outside the compiled function")
    return st.enabled


def _grad_inplace(rec, t, op, other, name):
    """Grad mode and something requires grad: recorded with its gradient, as eagerly."""
    from .face import _binary
    from .inplace import LEAF_IN_PLACE, _assign, rebase
    if t._rg and t._tape is None:
        raise RuntimeError(LEAF_IN_PLACE)
    if _outside(rec, t):
        _refuse(f"{name} with a gradient of a tensor from outside the compiled function")
    res = _binary(op, t, other)
    _assign(t, res)
    if type(t._v) is float and type(res._v) is not float:
        t._v = np.array(t._v, t._dtype.np)
    t._tape, t._slot, t._rg = res._tape, res._slot, True
    rebase(t)                           # t's views: AsStrided views of its new record
    return t


def inplace(rec, t, op, other):
    """``t.<op>_(other)`` inside a recording (``tensor._inplace``)."""
    from .base import TensorBase as Tensor
    from .face import _binary, _result_dtype
    from .inplace import _TYPE_NAMES, _assign
    from .inplace import refuse_view_of_leaf
    name = f"the in-place {BY_CODE[op].name}_()"
    if thread_state().enabled:
        refuse_view_of_leaf(t)          # PyTorch's error, as eagerly
    enabled = _prepare_inplace(rec, t, name)
    rg_other = isinstance(other, Tensor) and other._rg and \
        (other._tape is not rec.tape or eager_requires(rec, other._slot))
    rg_self = t._rg and (_outside(rec, t) or eager_requires(rec, t._slot))
    if enabled and (rg_self or rg_other):
        return _grad_inplace(rec, t, op, other, name)
    v = t._v
    o = other._v if isinstance(other, Tensor) else other
    res = _binary(op, t, other)
    if type(v) is np.ndarray and (type(o) is not np.ndarray or o.shape == v.shape):
        dt = _result_dtype(t, other)
        if dt.category > t._dtype.category:
            raise RuntimeError(f"result type {_TYPE_NAMES[dt.category]} can't be cast to the "
                               f"desired output type {_TYPE_NAMES[t._dtype.category]}")
    _assign(t, res)                    # the eager effect: t's memory, version, dirty mark
    if res._dtype is not t._dtype:     # the value t holds is in t's dtype
        res = res.to(t._dtype)
    _store(rec, t, res._slot, name)
    return t


def fill(rec, t, value, name):
    """``t.fill_(value)`` / ``t.zero_()`` inside a recording."""
    from .factory import full
    from .face import _bump, _float, _round, _shape
    from .inplace import LEAF_IN_PLACE, _mark_dirty
    st = thread_state()
    rg = t._rg and (_outside(rec, t) or eager_requires(rec, t._slot))
    if st.enabled and rg:
        raise RuntimeError(LEAF_IN_PLACE if t._tape is None else
                           "tapegrad: fill_ on a tensor that requires grad is not "
                           "supported yet")
    _check_not_viewed(rec, t, name)
    _bump(t)                           # the eager effect
    if type(t._v) is _float:
        t._v = _round(_float(value), t._dtype)
        _mark_dirty(t)
    else:
        t._v.fill(value)
    const = full(_shape(t), value, dtype=t._dtype)    # a constant of the recording
    slot = slot_of(const, rec.tape)
    if _outside(rec, t):
        v = t._v
        if type(v) is np.ndarray and not v.flags.c_contiguous:
            _refuse(f"{name} of a non-contiguous tensor")
        rec.effects.append(("fill", len(rec.tape), float(value), _target(rec, t)))
    _named(rec, t, slot)
    return t


def copy(rec, t, src):
    """``t.copy_(src)`` inside a recording."""
    from .face import _array, _new, _shape
    from .inplace import LEAF_IN_PLACE, _assign
    from .shapes import _broadcast
    st = thread_state()
    name = "copy_()"
    rg_t = t._rg and (_outside(rec, t) or eager_requires(rec, t._slot))
    rg_s = src._rg and (src._tape is not rec.tape or eager_requires(rec, src._slot))
    if st.enabled and (rg_t or rg_s):
        if rg_t and t._tape is None:
            raise RuntimeError(LEAF_IN_PLACE)
        raise NotImplementedError("tapegrad: copy_ that records a gradient is not "
                                  "supported yet; use it under tg.no_grad()")
    _check_not_viewed(rec, t, name)
    _broadcast(_shape(src), _shape(t))
    value = src if _shape(src) == _shape(t) else src.expand(*_shape(t))
    if value._dtype is not t._dtype:
        value = value.to(t._dtype)
    elif value._tape is not rec.tape:   # a source: its value as a record of this tape
        value = value * 1 if t._dtype.is_floating_point else value.clone()
    _assign(t, _new(np.broadcast_to(_array(src), _shape(t)), src._dtype))
    _store(rec, t, value._slot, name)
    return t


def set_grad(rec, t, value):
    """``t.grad = value`` inside a recording: None is recorded (the replay clears the
    grad); any other value is refused. The setter then does the eager effect."""
    if value is not None:
        _refuse("assigning .grad (other than None)")
    if t._tape is not None:
        _refuse("assigning .grad of a non-leaf")
    if t._grad is not None:    # the setter may copy it: whose grad it is, known now
        note_owner(rec, t._grad)
    # its leaf record: where the replay finds the grad storage it clears
    slot = slot_of(t, rec.tape) if t._rg and t._node is not None and \
        t._node.page is not None else -1
    rec.effects.append(("clear", len(rec.tape), weakref.ref(t), slot))
