"""In place: ``add_``, ``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``copy_``, the
augmented operators, the in-place forms of the elementwise methods (``exp_``, ``clamp_``,
``pow_``, ``masked_fill_`` ...: ``IN_PLACE``) and the random fills ``uniform_``/``normal_``,
with versions and PyTorch's errors (a leaf that requires grad, a value a pending backward
reads)."""
import weakref

import numpy as np

from .face import (_array, _as_tensor, _binary, _bump, _cell, _float, _hush, _nd, _new, _record,
                   _result_dtype, _round, _shape, _unhush, Tensor)
from .conversion import checked_fill
from .layout import F32, RECORD, RECORD_SIZE
from .ops import ADD, ASSTRIDED, BY_CODE, COPYSLICES, DIV, MUL, SUB
from .quiet import quietly
from .shapes import _broadcast
from .recording import _INPLACE, _weak
from .state import _local, refuse_while_recording, thread_state
from .tape import LEFT, LIVE

LEAF_IN_PLACE = "a leaf Variable that requires grad is being used in an in-place operation."
_UFUNC = {ADD: np.add, SUB: np.subtract, MUL: np.multiply, DIV: np.true_divide}


def _inplace(self, op, other):
    """``self = op(self, other)`` written into self's memory; recorded when grad is on."""
    st = _local.state or thread_state()
    if st.recording is not None:          # recorded for the replays (or refused), and done
        return st.recording.inplace(self, op, other)
    v = self._v
    if not st._enabled and type(v) is _nd:     # an update under no_grad: straight into self
        dt = self._dtype
        if type(other) is _float and dt.is_floating_point:
            o = other
        elif isinstance(other, Tensor) and other._dtype is dt and \
                (type(other._v) is _float or other._v.shape == v.shape):
            o = other._v
        else:
            o = None
        if o is not None:
            tok = _hush()
            try:
                _UFUNC[op](v, o, out=v)
            except ValueError:                  # read-only: an expanded tensor
                refuse_overlap(self)
                raise
            finally:
                _unhush(tok)
            c = self._ver                       # _bump, inline (a training step's update)
            if c is None:
                c = self._ver = [0]
            c[0] += 1
            _INPLACE[0] += 1
            return self
    if st._enabled and (self._rg or (isinstance(other, Tensor) and other._rg)):
        if self._rg and self._tape is None:
            raise RuntimeError(LEAF_IN_PLACE)
        refuse_view_of_leaf(self)           # (before the overlap, as PyTorch)
        refuse_overlap(self)
        a = self
        if op in (MUL, DIV) and type(self._v) is _nd and isinstance(other, Tensor) \
                and other._rg:               # other's grad reads self's value from before
            a = _stand_in(self)
        # x.mul_(x), x.div_(x): the record reads x as other, which the op overwrites: its
        # backward raises, as PyTorch's (other is saved, then modified)
        itself = other is self and op in (MUL, DIV)
        res = _binary(op, a, other)
        if type(res._v) is _float and res._dtype is not self._dtype:
            _round_record(res, self._dtype)
        # records before the in-place op's own read the old value; when self's graph is on
        # an older tape (the in-place op recorded on a newer one), every record there does
        _assign(self, res, res._slot + itself
                if self._tape is None or res._tape is self._tape else None, True)
        if type(self._v) is _float and type(res._v) is not _float:
            self._v = np.array(self._v, self._dtype.np)   # it is an array record now
        moved(self, res)
        rebase(self)
        return self
    refuse_overlap(self)
    v = self._v
    o = other._v if isinstance(other, Tensor) else other
    if type(v) is np.ndarray and (type(o) is not np.ndarray or o.shape == v.shape):
        dt = _result_dtype(self, other)       # no record: compute straight into self
        if dt.category > self._dtype.category:
            raise RuntimeError(f"result type {_TYPE_NAMES[dt.category]} can't be cast to the "
                               f"desired output type {_TYPE_NAMES[self._dtype.category]}")
        tok = _hush()
        try:
            _UFUNC[op](v, o, out=v, casting="unsafe")
        finally:
            _unhush(tok)
        _bump(self)
        return self
    res = _binary(op, self, other)
    _assign(self, res)
    return self


_TYPE_NAMES = {0: "Bool", 1: "Long", 2: "Float"}


def write_back(self, compute, name, args=(), result_saved=False, undefined=None):
    """``self = compute(self)`` written into self's memory: the in-place form ``name`` of an
    out-of-place method (``exp_`` of ``exp``). In grad mode, when self or a tensor among
    ``args`` requires grad, the result's record becomes self's node (``x.exp_()`` shows
    ExpBackward0), computed from a copy of self's value (its backward may read it), as add_
    records; ``result_saved``: PyTorch's backward of it reads its result, which is self
    (``_saved_as_self``); ``undefined``: PyTorch has no derivative of it (asinh_), so that
    recording one raises PyTorch's error (PyTorch's raises at the backward that reaches it).
    Otherwise nothing is recorded. Inside tg.compile it raises (a replay would not repeat
    it)."""
    refuse_while_recording(f"the in-place {name}()")
    st = _local.state or thread_state()
    grad = st._enabled and (self._rg or any(isinstance(x, Tensor) and x._rg for x in args))
    if grad and self._rg and self._tape is None:
        raise RuntimeError(LEAF_IN_PLACE)
    if grad:
        refuse_view_of_leaf(self)
        if undefined:
            raise NotImplementedError(f"the derivative for 'inplace version of {undefined}' "
                                      "is not implemented.")
    refuse_overlap(self)
    res = compute(_stand_in(self) if grad and type(self._v) is _nd else self)
    if res._dtype.category > self._dtype.category:
        raise RuntimeError(f"result type {_TYPE_NAMES[res._dtype.category]} can't be cast to "
                           f"the desired output type {_TYPE_NAMES[self._dtype.category]}")
    if not grad or not res._rg:
        _assign(self, res)
        return self
    if type(res._v) is _float and res._dtype is not self._dtype:
        _round_record(res, self._dtype)
    _assign(self, res, res._slot if self._tape is None or res._tape is self._tape else None,
            True)
    if result_saved:
        _saved_as_self(self, res)
    moved(self, res)
    rebase(self)
    return self


def _saved_as_self(t, res):
    """The record of ``res`` (written into t) keeps its own value at t's version: t's value
    is that output, as PyTorch's exp_ saves its result, so a later in-place change of t
    makes the backward raise. (The kept copy holds the same values until then; clamp_, whose
    record also reads its result, is not one of these: PyTorch's reads the old input.)"""
    saved, slot = res._tape.saved, res._slot
    for i in range(len(saved) - 1, -1, -1):
        consumer, s, _, _, idx, ref = saved[i]
        if consumer != slot:
            break
        if ref() is res:
            saved[i] = (consumer, s, t._ver, t._ver[0], idx, _weak(t))


def _in_place_form(name):
    """``t.<name>_(...)``: t.<name>(...) written into t (write_back)."""
    saved = name in SAVES_RESULT
    undefined = NO_DERIVATIVE.get(name)

    def method(self, *args, **kwargs):
        return write_back(self, lambda t: getattr(t, name)(*args, **kwargs), name + "_",
                          args + tuple(kwargs.values()), saved, undefined)
    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"t.{name}_(...): t.{name}(...) written into t's memory."
    return method


# the elementwise methods with an in-place form (PyTorch's names)
IN_PLACE = ("neg exp log tanh sigmoid sqrt abs relu reciprocal sin cos atan erf log1p expm1 "
            "rsqrt square sign floor ceil trunc round frac clamp clip pow "
            "masked_fill atan2 arctan2 tan sinh cosh asin acos asinh acosh atanh log2 log10 "
            "exp2 arctan arcsin arccos arcsinh arccosh arctanh hypot fmod remainder").split()
# those whose PyTorch backward reads the result: a later in-place change of it raises
SAVES_RESULT = frozenset("exp tanh sigmoid sqrt relu reciprocal expm1 rsqrt tan exp2 "
                         "hypot".split())
# those PyTorch has no derivative for in place (derivatives.yaml: not_implemented): the op
# whose name its error gives
NO_DERIVATIVE = {"asinh": "asinh", "arcsinh": "asinh", "acosh": "acosh", "arccosh": "acosh",
                 "atanh": "atanh", "arctanh": "atanh"}
VIEW_OF_LEAF = ("a view of a leaf Variable that requires grad is being used in an in-place "
                "operation.")


def refuse_overlap(t):
    """PyTorch's error for an in-place change of a tensor whose elements share memory (an
    expand that repeats elements: NumPy's broadcast view is read-only)."""
    v = t._v
    if type(v) is _nd and not v.flags.writeable and \
            any(st == 0 and n > 1 for st, n in zip(v.strides, v.shape)):
        raise RuntimeError("unsupported operation: more than one element of the written-to "
                           "tensor refers to a single memory location. Please clone() the "
                           "tensor before performing the operation.")


def refuse_view_of_leaf(t):
    """PyTorch's error for an in-place change (in grad mode) of a view of a leaf that
    requires grad: the change would reach the leaf's value behind autograd's back."""
    base = getattr(t, "_base", None)
    if base is not None and base._rg and base._tape is None:
        raise RuntimeError(VIEW_OF_LEAF)


def moved(t, res):
    """t was changed in place in grad mode: its value is now res's record. retain_grad()
    moves along, as PyTorch moves its retains_grad hook to the new grad_fn."""
    tape, slot = t._tape, t._slot
    t._tape, t._slot, t._rg = res._tape, res._slot, True
    _carry_retained(t, tape, slot)


def _carry_retained(t, tape, slot):
    """t, recorded afresh, retains its grad if it did at (tape, slot)."""
    ref = tape.retained.pop(slot, None) if tape is not None else None
    if ref is not None and ref() is t:
        t._tape.retained[t._slot] = ref


def rebase(t):
    """``t`` was just changed in place in grad mode, its new value recorded. If it views
    another tensor's memory, that tensor (its base) gets a CopySlices record putting the
    new value at the view's positions; then every live view of the base, t among them,
    is recorded afresh as an AsStrided view of the base's new record. So gradients through
    the base or any view afterwards see the change, as PyTorch's rebase_history and view
    regeneration make them (and node names are PyTorch's)."""
    base = getattr(t, "_base", None)
    if base is not None:
        pos = _positions(t._v, _contiguous(base)._v)
        new = _new(base._v.copy(), base._dtype, True)
        _record(COPYSLICES, new, base, t, ints=pos)
        moved(base, new)
    else:
        base = t
    views = getattr(base, "_views", None)
    if not views:
        return
    b = _contiguous(base)._v
    size = b.itemsize
    start = b.__array_interface__["data"][0]
    for ref in views:
        view = ref()
        if view is None or type(view._v) is not _nd or view._base is not base \
                or (view._rg and view._tape is None):          # (a leaf keeps its node)
            continue
        v = view._v                       # view[i] = base.flat[offset + sum(i_k * s_k)]
        offset = (v.__array_interface__["data"][0] - start) // size
        meta = (offset, v.shape, tuple(s // size for s in v.strides))
        tape, slot = view._tape, view._slot
        _record(ASSTRIDED, view, base, None, 0.0, meta)
        view._rg = True
        _carry_retained(view, tape, slot)


def _contiguous(base):
    """``base`` if its value is C-contiguous (its views' positions are offsets in it)."""
    if not base._v.flags.c_contiguous:
        raise NotImplementedError("tapegrad: an in-place change in grad mode of a view of a "
                                  "tensor that is not contiguous")
    return base


def _positions(view, base):
    """The flat index in C-contiguous ``base`` of each element of ``view`` (C order)."""
    size = base.itemsize
    start = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // size
    pos = np.full((), start, np.int64)
    for n, stride in zip(view.shape, view.strides):
        pos = np.add.outer(pos, np.arange(n, dtype=np.int64) * (stride // size))
    return pos.ravel()


def scaled(other, alpha):
    """other * alpha for add/sub(..., alpha=): PyTorch's AddBackward0 keeps alpha as a
    number, so a backward does not free this record (a second one runs it again)."""
    res = other * alpha
    if isinstance(res, Tensor) and res._tape is not None:
        res._tape.unsaved.append(res._slot)
    return res


def _round_record(res, dt):
    """A scalar result written into a tensor of another dtype (float32 t += float64 b):
    its record holds the value t holds, rounded to dt and flagged so, as PyTorch casts
    the result (later records compare their operands with it)."""
    tape, at = res._tape, res._slot * RECORD_SIZE
    head, b, v = RECORD.unpack_from(tape.rec, at)
    res._v = _round(v, dt)
    res._dtype = dt
    RECORD.pack_into(tape.rec, at, head & ~F32 | (F32 if dt.itemsize == 4 else 0), b, res._v)
    tape.dtypes |= 1 if dt.itemsize == 4 else 2


def _stand_in(t):
    """t's place on the tape with a copy of its value: what an in-place op's record keeps
    of the value it overwrites (PyTorch's original self)."""
    s = _new(t._v.copy(), t._dtype, t._rg)
    s._tape, s._slot, s._node = t._tape, t._slot, t._node
    return s


def _assign(self, res, limit=None, recorded=False):
    """Writes ``res``'s value into ``self`` in place and bumps self's version; records
    before ``limit`` (all by default) that read self's value can no longer be run."""
    rs, ss = _shape(res), _shape(self)
    if rs != ss:
        raise RuntimeError(f"output with shape {list(ss)} doesn't match the broadcast shape "
                           f"{list(rs)}")
    _bump(self)
    if type(self._v) is _float:
        self._v = _round(_float(res._v), self._dtype)
        _mark_dirty(self, limit, recorded)
    else:
        quietly(np.copyto, self._v, _array(res), casting="unsafe")   # (inf, silently)


def _mark_dirty(t, limit=None, recorded=False):
    """A scalar changed in place (after its version bump): a pending backward that reads
    its recorded value in a record before ``limit`` (the in-place op's own record, which
    reads the value from before; all records by default) must raise instead of using it.
    So must the records of the current tape that read it through a link (``recorded``: the
    in-place op's own record is the last one there)."""
    tape, slot = thread_state().tape, -1
    if t._tape is not None and t._tape is not tape and tape.links:
        last = len(tape.rec) // RECORD_SIZE - (1 if recorded else 0)
        for s, node in list(tape.links.items()):
            if node._tape is t._tape and node._slot == t._slot and s < last:
                _dirty(tape, s, t, last)
    if t._tape is not None:
        tape, slot = t._tape, t._slot
    elif t._node is not None and t._node.tape_id == tape.id:
        slot = t._node.slot
        t._node.tape_id = 0            # a later use records the new value afresh
    elif t._node is not None and t._node.tape_id in LIVE:   # the older tape the leaf was
        tape, slot = LIVE[t._node.tape_id], t._node.slot    # last recorded on (a backward
        t._node.tape_id, limit = 0, None                     # with retain_graph since)
    if slot >= 0:
        _dirty(tape, slot, t, len(tape.rec) // RECORD_SIZE if limit is None else limit)
    if t._tape is None and t._node is not None and LEFT:   # a 0-d leaf: older tapes too
        for ref in LEFT.copy().values():
            old = ref()
            if old is not None and old is not tape:
                for s in old.slots_of(t._node):
                    _dirty(old, s, t, len(old.rec) // RECORD_SIZE)


def _dirty(tape, slot, t, limit):
    now = _cell(t)[0]
    expected = tape.dirty[slot][0] if slot in tape.dirty else now - 1
    if slot in tape.dirty:
        limit = max(limit, tape.dirty[slot][4])
    tape.dirty[slot] = (expected, now, t._dtype.np, weakref.ref(t), limit)


class InPlaceMethods:
    """The in-place methods of Tensor."""
    __slots__ = ()

    def add_(self, other, alpha=1):
        return _inplace(self, ADD, other if alpha == 1 else scaled(other, alpha))

    def sub_(self, other, alpha=1):
        return _inplace(self, SUB, other if alpha == 1 else scaled(other, alpha))

    def mul_(self, other):
        return _inplace(self, MUL, other)

    def div_(self, other):
        return _inplace(self, DIV, other)

    def zero_(self):
        return self.fill_(0.0, "zero_()")

    def fill_(self, value, _name="fill_()"):
        st = _local.state or thread_state()
        if st.recording is not None:      # recorded for the replays (or refused), and done
            return st.recording.fill(self, value, _name)
        if st._enabled and self._rg:
            raise RuntimeError(LEAF_IN_PLACE if self._tape is None else
                               "tapegrad: fill_ on a tensor that requires grad is not "
                               "supported yet")
        if value:                           # (zero_, every step: nothing to check)
            checked_fill(value, self._dtype)
        c = self._ver                       # _bump, inline (zero_ of each grad every step)
        if c is None:
            c = self._ver = [0]
        c[0] += 1
        _INPLACE[0] += 1
        if type(self._v) is _float:
            self._v = _round(_float(value), self._dtype)
            _mark_dirty(self)
        else:
            self._v.fill(value)
        return self

    def uniform_(self, from_=0.0, to=1.0, *, generator=None):
        """Draws of U(from_, to) written into self (tapegrad's generator, nn.init's)."""
        from .nn.init import uniform_
        return _random_fill(self, uniform_, from_, to, "uniform_", generator)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Draws of N(mean, std^2) written into self."""
        from .nn.init import normal_
        return _random_fill(self, normal_, mean, std, "normal_", generator)

    def copy_(self, src):
        src = _as_tensor(src)
        rec = thread_state().recording
        if rec is not None:               # recorded for the replays (or refused), and done
            return rec.copy(self, src)
        if thread_state().enabled and (self._rg or src._rg):
            if self._rg and self._tape is None:
                raise RuntimeError(LEAF_IN_PLACE)
            raise NotImplementedError("tapegrad: copy_ that records a gradient is not "
                                      "supported yet; use it under tg.no_grad()")
        _broadcast(_shape(src), _shape(self))
        res = _new(np.broadcast_to(_array(src), _shape(self)), src._dtype)
        _assign(self, res)
        return self

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return _inplace(self, DIV, other)


for _name in IN_PLACE:
    setattr(InPlaceMethods, _name + "_", _in_place_form(_name))
del _name


def _random_fill(t, init, a, b, name, generator):
    """t filled in place by ``init`` (nn.init's uniform_/normal_), which writes under
    no_grad: in grad mode a tensor that requires grad gets fill_'s errors, as in PyTorch."""
    refuse_while_recording(f"the random draw {name}()")
    if thread_state().enabled and t._rg:
        raise RuntimeError(LEAF_IN_PLACE if t._tape is None else
                           f"tapegrad: {name} on a tensor that requires grad is not "
                           "supported yet")
    return init(t, a, b, generator)
