"""The Python face: ``Tensor``, its operators and methods, PyTorch's names and errors.

A tensor's value is a Python float (0-d floating-point tensors made by scalar operations:
the fast path, no NumPy call per operation) or a NumPy array it owns or views. An
operation computes its value eagerly and, when grad mode is on and an input requires
grad, appends one record to the thread's tape (``_record``).
"""
import math
import sys
import warnings
import weakref

import numpy as np

from . import dtypes as D
from . import leaves
from .graph import Node, _edge
from .layout import CONST_A, CONST_B, F32, RECORD, RECORD_SIZE, SCALAR, SHIFT
from .ops import (BY_CODE, ABS, ADD, CAST, CASTNG, CLAMP, EQ, GE, GT, LE, LT, NE, CLONE, COS,
                  DIV, EXP, EXPM1, ERF, LOG, LOG1P, MAXIMUM, MEAN, MEANDIM, MINIMUM, MM, MUL,
                  NEG, BMM, DOT, MV, PERMUTE, POW, POWC, RECIP, RELU, RPOW, RSQRT, SELECT,
                  SIGMOID, SIN, SLICE, SQRT, SQUEEZE, SQUEEZEDIM, SUB, SUM, SUMDIM, T, TANH,
                  UNSQUEEZE, VIEW)
from .device import CPU, to_args
from .quiet import hush as _hush, unhush as _unhush
from .recording import _INPLACE, no_grad_result, record, slot_of
from .state import _var, current_tape, recording_active, refuse_while_recording, thread_state
from .tensor_api import TensorAPI

_state_get = _var.get

_float = float
_int = int
_new_object = object.__new__


class Size(tuple):
    """A tensor's shape: a tuple that prints as PyTorch's ``torch.Size``."""

    def __repr__(self):
        return f"tapegrad.Size({list(self)})"

    def numel(self):
        return math.prod(self)


# ----- forward math ------------------------------------------------------------------
def _safe(f, np_f):
    """A Python-float function that returns inf/nan like NumPy instead of raising."""
    def g(*args):
        try:
            return f(*args)
        except (OverflowError, ValueError, ZeroDivisionError):
            with np.errstate(all="ignore"):
                return _float(np_f(*[np.float64(x) for x in args]))
    return g


def _pow(x, y):
    z = x ** y
    if type(z) is complex:      # a negative base to a fractional power: NaN as PyTorch
        return math.nan
    return z


_SCALAR_F = {
    ADD: lambda x, y: x + y, SUB: lambda x, y: x - y, MUL: lambda x, y: x * y,
    DIV: _safe(lambda x, y: x / y, np.true_divide), POW: _safe(_pow, np.power),
    NEG: lambda x: -x, EXP: _safe(math.exp, np.exp), LOG: _safe(math.log, np.log),
    TANH: math.tanh, SIGMOID: _safe(lambda x: 1.0 / (1.0 + math.exp(-x)),
                                    lambda x: 1.0 / (1.0 + np.exp(-x))),
    SQRT: _safe(math.sqrt, np.sqrt), ABS: abs, RELU: lambda x: x if x > 0.0 else 0.0 * x,
    RECIP: _safe(lambda x: 1.0 / x, np.reciprocal), SIN: _safe(math.sin, np.sin),
    COS: _safe(math.cos, np.cos), LOG1P: _safe(math.log1p, np.log1p),
    EXPM1: _safe(math.expm1, np.expm1), RSQRT: _safe(lambda x: 1.0 / math.sqrt(x),
                                                     lambda x: 1.0 / np.sqrt(x)),
    MAXIMUM: lambda x, y: x if x > y or x != x else y,
    MINIMUM: lambda x, y: x if x < y or x != x else y,
    CAST: lambda x: x, CLONE: lambda x: x, ERF: math.erf,
}


_erf_each = np.frompyfunc(math.erf, 1, 1)


def _np_erf(x):
    """erf elementwise (NumPy has none; libm's erf through math.erf, exact to the ulp)."""
    x = np.asarray(x)
    return np.asarray(_erf_each(x), x.dtype if x.dtype.kind == "f" else np.float64)


def _np_sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)      # no overflow for large |x|


_ARRAY_F = {
    ADD: np.add, SUB: np.subtract, MUL: np.multiply, DIV: np.true_divide, POW: np.power,
    NEG: np.negative, EXP: np.exp, LOG: np.log, TANH: np.tanh, SIGMOID: _np_sigmoid,
    SQRT: np.sqrt, ABS: np.abs, RELU: lambda x: np.maximum(x, 0), RECIP: np.reciprocal,
    SIN: np.sin, COS: np.cos, LOG1P: np.log1p, EXPM1: np.expm1,
    RSQRT: lambda x: 1.0 / np.sqrt(x), MAXIMUM: np.maximum, MINIMUM: np.minimum,
    CLONE: np.copy, ERF: lambda x: _np_erf(x),
}




def _round(v, dt):
    """A Python float rounded to the precision of dtype ``dt``."""
    return _float(np.float32(v)) if dt is D.float32 else v


# ----- construction ------------------------------------------------------------------
def _new(v, dt, rg=False):
    t = _new_object(Tensor)
    t._v = v
    t._dtype = dt
    t._rg = rg
    t._tape = None
    t._slot = -1
    t._grad = None
    t._node = None
    t._ver = None
    return t


def _from_array(a, dt=None, rg=False):
    """A tensor owning NumPy array ``a`` (0-d floats become Python floats)."""
    dt = dt or D.from_numpy(a.dtype)
    if a.ndim == 0 and dt.is_floating_point:
        return _new(_float(a), dt, rg)
    if a.dtype != dt.np:
        a = a.astype(dt.np)
    return _new(a, dt, rg)


def _array(t):
    """The value of ``t`` as a NumPy array (a new 0-d array for a Python-float value)."""
    v = t._v
    return np.array(v, t._dtype.np) if type(v) is _float else v


def _cell(t):
    """The version counter of ``t`` (shared with the tensors that view its memory)."""
    c = t._ver
    if c is None:
        c = t._ver = [0]
    return c


def _bump(t):
    """t was changed in place: its version (and the global count of such changes, which
    lets a backward skip the check of saved values when nothing changed since)."""
    _cell(t)[0] += 1
    _INPLACE[0] += 1


def _shape(x):
    return () if type(x._v) is _float else x._v.shape


# ----- recording ---------------------------------------------------------------------
def _tracks(requires_grad):
    """Whether to record an operation: grad mode is on and an operand requires grad, or a
    tg.compile recording is being made. A recording records every operation on tensors,
    so that its replays recompute all of them: a value computed unrecorded (from a captured
    tensor, say) would otherwise replay frozen at its recorded value."""
    st = _state_get(None) or thread_state()
    return st.recording is not None or (st.enabled and requires_grad)


_slot = slot_of
_record = record


# ----- shapes ------------------------------------------------------------------------
def _broadcast(sa, sb):
    """The broadcast shape of two shapes, with PyTorch's error."""
    n = max(len(sa), len(sb))
    out = [0] * n
    for i in range(n - 1, -1, -1):          # from the right, as PyTorch reports
        x = sa[i - n + len(sa)] if i - n + len(sa) >= 0 else 1
        y = sb[i - n + len(sb)] if i - n + len(sb) >= 0 else 1
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b "
                               f"({y}) at non-singleton dimension {i}")
        out[i] = y if x == 1 else x
    return tuple(out)


def _cstrides(shape):
    """Element strides of a C-contiguous array of ``shape``."""
    st = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        st[d] = st[d + 1] * shape[d + 1]
    return st


def _dim(d, nd):
    """A dimension index wrapped into range, with PyTorch's IndexError."""
    lo, hi = (-nd, nd - 1) if nd > 0 else (-1, 0)
    if not isinstance(d, (_int, np.integer)) or d < lo or d > hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], "
                         f"but got {d})")
    return d % nd if nd > 0 else 0


def _sizes(size):
    """``ones(2, 3)``, ``ones((2, 3))`` and ``ones([2, 3])`` all mean shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(_int(s) for s in size)


# ----- the scalar fast path ---------------------------------------------------------
# Operations on Python-float tensors (0-d floating point) skip NumPy and the generic
# dispatch: the value is plain float math and the record one pack of three numbers. When
# an operand is a result on the thread's live tape (see state.py), no per-thread state is
# looked up at all.
_F32 = D.float32
_S = SCALAR
_S_ADD, _S_SUB, _S_MUL, _S_DIV = ADD | _S, SUB | _S, MUL | _S, DIV | _S
_S_POWC, _S_NEG, _S_EXP, _S_LOG = POWC | _S, NEG | _S, EXP | _S, LOG | _S
_S_TANH, _S_SIGMOID, _S_RELU = TANH | _S, SIGMOID | _S, RELU | _S
_S_SQRT, _S_ABS = SQRT | _S, ABS | _S
_pack = RECORD.pack
_RS = RECORD_SIZE


def _scalar_out(dt, z):
    out = _new_object(Tensor)
    if dt is _F32:
        out._v = _float(np.float32(z))
        out._dtype = dt
    else:
        out._v = z
        out._dtype = dt
    out._grad = None
    out._node = None
    out._ver = None
    return out


def _live_tape(x, y=None):
    """The tape to record an op on x (and y) on, or None when grad mode is off."""
    tape = x._tape
    if tape is not None and tape.live:
        return tape
    st = _state_get(None) or thread_state()
    if not st.enabled and st.recording is None:
        return None
    return current_tape(x, y)


def _sx(x, tape):
    """Slot of operand x on tape (a leaf already recorded there: no call)."""
    if x._tape is tape:
        return x._slot
    node = x._node
    if node is not None and node.tape_id == tape.id and x._tape is None:
        return node.slot
    return slot_of(x, tape)


def _finish(out, tape, head, b):
    """Appends the record of scalar result ``out`` (head: op | SCALAR | a << SHIFT)."""
    rec = tape.rec
    n = len(rec) // _RS
    if out._dtype is _F32:
        head |= F32
    rec += _pack(head, b, out._v)
    out._tape = tape
    out._slot = n
    out._rg = True
    if tape.keep_all and not tape.live:      # maybe under no_grad in a tg.compile recording
        no_grad_result(out, tape)
    return out


def _untracked(out):
    out._tape = None
    out._slot = -1
    out._rg = False
    return out


def _sbin(code, x, y, z):
    """``code`` applied to Python-float tensors x, y, whose result value is z."""
    dt = x._dtype
    if dt is not y._dtype:
        dt = D.promote(dt, y._dtype)
    out = _scalar_out(dt, z)
    if x._rg or y._rg or recording_active():
        tape = _live_tape(x, y) if x._tape is not None else _live_tape(y, x)
        if tape is not None:
            sx = _sx(x, tape)
            return _finish(out, tape, code | sx << SHIFT, _sx(y, tape))
    return _untracked(out)


def _sconst(code, x, c, z, const_first=False):
    """``code`` applied to Python-float tensor x and Python number c (value z)."""
    out = _scalar_out(x._dtype, z)
    if x._rg or recording_active():
        tape = _live_tape(x)
        if tape is not None:
            flag = CONST_A if const_first else CONST_B
            return _finish(out, tape, code | flag | _sx(x, tape) << SHIFT, c)
    return _untracked(out)


def _sunary(code, x, z):
    """Elementwise ``code`` of Python-float tensor x (value z)."""
    out = _scalar_out(x._dtype, z)
    if x._rg or recording_active():
        tape = _live_tape(x)
        if tape is not None:
            return _finish(out, tape, code | _sx(x, tape) << SHIFT, 0.0)
    return _untracked(out)


def _is_num(t):
    return t is _float or t is _int


# ----- the operations ----------------------------------------------------------------
_nd = np.ndarray


def _gate(rg, x, y=None):
    """The tape to record an operation on x (and y) on, or None: grad mode is on and an
    operand requires grad, or a tg.compile recording is being made (it records every
    operation on tensors). A result of the live tape finds it with no per-thread lookup."""
    if rg:
        t = x._tape
        if t is not None and t.live:
            return t
        if y is not None:
            t = y._tape
            if t is not None and t.live:
                return t
    st = _state_get(None) or thread_state()
    if st.recording is None and not (st.enabled and rg):
        return None
    return current_tape(x, y)


def _binary(op, a, b):
    """``op(a, b)`` with broadcasting; ``a`` or ``b`` may be a Python number."""
    ta = isinstance(a, Tensor)
    tb = isinstance(b, Tensor)
    va = a._v if ta else a
    vb = b._v if tb else b
    if ta and tb:
        da, db = a._dtype, b._dtype
        dt = da if da is db else _result_dtype(a, b)
    else:
        t, n = (a, b) if ta else (b, a)
        if type(n) is not _float and not isinstance(n, (_int, _float, bool, np.number)):
            return NotImplemented
        dt = t._dtype
        if type(n) is not _float or not dt.is_floating_point:
            if D.number_category(n) > dt.category:
                dt = D.DEFAULT_FLOAT if isinstance(n, (_float, np.floating)) else D.int64
            if ta:
                vb = _float(vb) if dt.is_floating_point else vb
            else:
                va = _float(va) if dt.is_floating_point else va
    if type(va) is _float and type(vb) is _float:          # the scalar fast path
        out = _new(_round(_SCALAR_F[op](va, vb), dt), dt)
    else:
        tok = _hush()
        try:
            z = _ARRAY_F[op](va, vb)
        except ValueError:
            if type(va) is _nd and type(vb) is _nd:
                _broadcast(va.shape, vb.shape)            # PyTorch's words for the error
            raise
        finally:
            _unhush(tok)
        if type(z) is not _nd or z.dtype is not dt.np and z.dtype != dt.np:
            z = np.asarray(z, dt.np)
        out = _new(z, dt)
    tape = _gate((ta and a._rg) or (tb and b._rg), a if ta else b, b if ta and tb else None)
    if tape is not None:
        if not dt.is_floating_point and thread_state().recording is None:
            raise RuntimeError("Only Tensors of floating point and complex dtype can "
                               "require gradients")
        out._rg = True
        if ta and tb:
            _record(op, out, a, b, tape=tape)
        elif ta:
            _record(op, out, a, _float(b), tape=tape)
        else:
            _record(op, out, _float(a), b, tape=tape)
    return out


def _result_dtype(*xs):
    dims, zeros, nums = [], [], []
    for x in xs:
        if isinstance(x, Tensor):
            (zeros if x.ndim == 0 else dims).append(x._dtype)
        else:
            nums.append(D.number_category(x))
    return D.result_dtype(dims, zeros, nums)


def _unary(op, x, c=0.0, c2=None, keep_int=False):
    """An elementwise op ``y = f(x)`` with constants ``c`` (and ``c2``, clamp's max)."""
    dt = x._dtype
    if not dt.is_floating_point and not keep_int:
        dt = D.DEFAULT_FLOAT
    v = x._v
    if type(v) is _float:
        if op == CLAMP:
            y = min(max(v, c), c2)
        elif op == POWC:
            y = _SCALAR_F[POW](v, c)
        elif op == RPOW:
            y = _SCALAR_F[POW](c, v)
        else:
            y = _SCALAR_F[op](v)
        out = _new(_round(y, dt), dt)
    else:
        tok = _hush()
        try:
            if op == CLAMP:          # one-sided: np.maximum / np.minimum (np.clip is slow)
                y = np.maximum(v, c) if c2 == math.inf else np.minimum(v, c2) \
                    if c == -math.inf else np.clip(v, c, c2)
            elif op == POWC:
                y = np.square(v) if c == 2.0 else \
                    np.power(v, c if dt.is_floating_point else _int(c))
            elif op == RPOW:
                y = np.power(c, v)
            else:
                y = _ARRAY_F[op](v)
        finally:
            _unhush(tok)
        if type(y) is not _nd or y.dtype != dt.np:
            y = np.asarray(y, dt.np)
        out = _new(y, dt)
    tape = _gate(x._rg, x)
    if tape is not None:
        out._rg = True
        _record(op, out, x, None, c, c2=0.0 if c2 is None else c2, tape=tape)
    return out


def _strided(op, x, value, base, shape, strides):
    """A view of ``x``: ``value[i] = x[base + sum(i_k * strides_k)]`` over ``shape``."""
    out = _new(value, x._dtype)
    out._ver = _cell(x)
    tape = _gate(x._rg, x)
    if tape is not None:
        out._rg = True
        _record(op, out, x, None, 0.0, (base, tuple(shape), tuple(strides)), tape=tape)
    return out


def _reduced_dims(shape, dim):
    """The sorted dims a reduction over ``dim`` (None: all; an int or a tuple) covers."""
    nd = len(shape)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(nd))
    return tuple(sorted({_dim(d, nd) for d in (dim if isinstance(dim, (tuple, list))
                                                else (dim,))}))


def _lane_aux(shape, dims):
    """The map of a reduction over ``dims`` for the sweep: walking the input's shape, the
    offset of each element's lane in the keepdim-shaped result (stride 0 on ``dims``)."""
    keep = [1 if d in dims else s for d, s in enumerate(shape)]
    kst = _cstrides(keep)
    return (0, tuple(shape), tuple(0 if d in dims else kst[d] for d in range(len(shape))))


def _reduce(op, x, dim, keepdim, mean):
    dt = x._dtype
    if mean and not dt.is_floating_point:
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either "
                           "a floating point or complex dtype. Got: " + D.scalar_name(dt))
    if not dt.is_floating_point:
        dt = D.int64
    v = x._v
    tok = _hush()
    try:
        if dim is None and type(v) is _nd and not keepdim:     # the common full reduction
            z = v.mean() if mean else v.sum()
            shape, dims = v.shape, None
        else:
            shape = _shape(x)
            dims = _reduced_dims(shape, dim)
            z = (np.mean if mean else np.sum)(_array(x), axis=dims, keepdims=bool(keepdim))
    finally:
        _unhush(tok)
    if type(z) is not _nd or z.dtype != dt.np:
        z = np.asarray(z, dt.np)
    out = _new(z, dt)
    tape = _gate(x._rg, x)
    if tape is not None:
        if dims is None:
            dims = tuple(range(len(shape)))
        count = math.prod(shape[d] for d in dims)
        out._rg = True
        scale = (1.0 / count if count else math.nan) if mean else 1.0
        _record(op, out, x, None, scale, _lane_aux(shape, dims), tape=tape)
    return out


def _product(op, a, b, value):
    """A matrix product of a and b (same dtype, as PyTorch requires)."""
    if a._dtype is not b._dtype:
        names = {"float32": "float", "float64": "double", "int64": "long int"}
        raise RuntimeError("expected m1 and m2 to have the same dtype, but got: "
                           f"{names.get(a._dtype.name, a._dtype.name)} != "
                           f"{names.get(b._dtype.name, b._dtype.name)}")
    out = _new(value, a._dtype)
    tape = _gate(a._rg or b._rg, a, b)
    if tape is not None:
        out._rg = True
        sa, sb = a._v.shape, b._v.shape     # (batch, n, p, q): sizes the sweep loops over
        dims = (1, 1, sa[0], 1) if op == DOT else (1, sa[0], sa[1], 1) if op == MV else \
            (1, sa[0], sa[1], sb[1]) if op == MM else (sa[0], sa[1], sa[2], sb[2])
        _record(op, out, a, b, dims=dims, tape=tape)
    return out


def method(fn):
    """Makes module function ``fn(tensor, ...)`` a Tensor method of the same name."""
    setattr(Tensor, fn.__name__, fn)
    return fn


def _inplace(self, op, other):
    """``self = op(self, other)`` written into self's memory; recorded when grad is on."""
    st = _state_get(None) or thread_state()
    if st.recording is not None:          # recorded for the replays (or refused), and done
        return st.recording.inplace(self, op, other)
    v = self._v
    if not st.enabled and type(v) is _nd:     # an update under no_grad: straight into self
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
            _ARRAY_F[op](v, o, out=v)
            _unhush(tok)
            _bump(self)
            return self
    if st.enabled and (self._rg or (isinstance(other, Tensor) and other._rg)):
        if self._rg and self._tape is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an "
                               "in-place operation.")
        res = _binary(op, self, other)
        _assign(self, res)
        if type(self._v) is _float and type(res._v) is not _float:
            self._v = np.array(self._v, self._dtype.np)   # it is an array record now
        self._tape, self._slot, self._rg = res._tape, res._slot, True
        return self
    v = self._v
    o = other._v if isinstance(other, Tensor) else other
    if type(v) is np.ndarray and (type(o) is not np.ndarray or o.shape == v.shape):
        dt = _result_dtype(self, other)       # no record: compute straight into self
        if dt.category > self._dtype.category:
            raise RuntimeError(f"result type {_TYPE_NAMES[dt.category]} can't be cast to the "
                               f"desired output type {_TYPE_NAMES[self._dtype.category]}")
        tok = _hush()
        try:
            _ARRAY_F[op](v, o, out=v, casting="unsafe")
        finally:
            _unhush(tok)
        _bump(self)
        return self
    res = _binary(op, self, other)
    _assign(self, res)
    return self


_TYPE_NAMES = {0: "Bool", 1: "Long", 2: "Float"}


def _assign(self, res):
    """Writes ``res``'s value into ``self`` in place and bumps self's version."""
    rs, ss = _shape(res), _shape(self)
    if rs != ss:
        raise RuntimeError(f"output with shape {list(ss)} doesn't match the broadcast shape "
                           f"{list(rs)}")
    _bump(self)
    if type(self._v) is _float:
        self._v = _round(_float(res._v), self._dtype)
        _mark_dirty(self)
    else:
        np.copyto(self._v, _array(res), casting="unsafe")


def _guard(t, kind, value):
    """A tensor's value becomes a Python value: inside a tg.compile recording, remember it,
    so that a replay whose values differ records again. True inside a recording. A tensor
    not computed on the recording (an argument, a captured tensor) enters it as a source:
    a replay reads its value at every call."""
    rec = thread_state().recording
    if rec is None:
        return False
    slot = t._slot if t._tape is rec.tape else slot_of(t, rec.tape)
    rec.guards.append((slot, kind, value))
    return True


def _recorded_here(t):
    """Is t a result computed on this thread's tg.compile recording?"""
    st = _state_get(None)
    return st is not None and st.recording is not None and t._tape is st.recording.tape


def _guard_extremes(x, largest, d, shape, arg):
    """max(dim)/min(dim) of x inside a tg.compile recording: its indices are a value the
    tape does not recompute, so a replay whose arg-extremes differ records again."""
    rec = thread_state().recording
    if rec is not None:
        rec.guards.append((_slot(x, rec.tape), "argext", (largest, d, tuple(shape), arg)))


def _mark_dirty(t):
    """A scalar changed in place (after its version bump): a pending backward that reads
    its recorded value must raise instead of using it."""
    tape, slot = thread_state().tape, -1
    if t._tape is not None:
        tape, slot = t._tape, t._slot
    elif t._node is not None and t._node.tape_id == tape.id:
        slot = t._node.slot
        t._node.tape_id = 0            # a later use records the new value afresh
    if slot >= 0:
        now = _cell(t)[0]
        expected = tape.dirty[slot][0] if slot in tape.dirty else now - 1
        tape.dirty[slot] = (expected, now, t._dtype.np, weakref.ref(t))


def _index_key(key, nd):
    """Splits a basic index into steps (kind, value) and checks it against ``nd`` dims."""
    if not isinstance(key, tuple):
        key = (key,)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    steps = []
    for k in key:
        if k is Ellipsis:
            steps.extend([("slice", slice(None))] * (nd - used))
            nd = used   # only one ellipsis expands
        elif k is None:
            steps.append(("none", None))
        elif isinstance(k, slice):
            steps.append(("slice", k))
        elif isinstance(k, (_int, np.integer)) and not isinstance(k, bool):
            steps.append(("int", _int(k)))
        elif isinstance(k, Tensor) and k.ndim == 0 and not k._dtype.is_floating_point \
                and k._dtype is not D.bool_:
            steps.append(("int", _int(k.item())))
        else:
            return None
    return steps


class Tensor(TensorAPI):
    """A multi-dimensional array that records the operations on it for ``backward()``."""
    __slots__ = ("_v", "_dtype", "_rg", "_tape", "_slot", "_grad", "_node", "_ver",
                 "__weakref__")
    __array_priority__ = 1000      # ndarray (op) Tensor defers to Tensor's reflected op

    # ----- attributes ----------------------------------------------------------------
    @property
    def shape(self):
        return Size(_shape(self))

    def size(self, dim=None):
        s = _shape(self)
        return Size(s) if dim is None else s[_dim(dim, len(s))]

    @property
    def dtype(self):
        return self._dtype

    @property
    def ndim(self):
        return 0 if type(self._v) is _float else self._v.ndim

    def dim(self):
        return self.ndim

    def numel(self):
        return 1 if type(self._v) is _float else self._v.size

    @property
    def device(self):
        return CPU

    def is_floating_point(self):
        return self._dtype.is_floating_point

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not self._dtype.is_floating_point:      # PyTorch's setter's words
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               "gradients")
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        if self._tape is not None:
            if requires_grad:
                return self
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If "
                               "you want to use a computed variable in a subgraph that doesn't "
                               "require differentiation use var_no_grad = var.detach().")
        if requires_grad and not self._dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if bool(requires_grad) != self._rg:
            self._node = None           # its source record (leaf vs constant) changes
        self._rg = bool(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self._tape is None

    @property
    def grad_fn(self):
        return None if self._tape is None else _edge(self._tape, self._slot)[0]

    @property
    def _version(self):
        return 0 if self._ver is None else self._ver[0]

    @property
    def grad(self):
        if self._tape is not None and not self.retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
                "Its .grad attribute won't be populated during autograd.backward(). If you "
                "indeed want the .grad field to be populated for a non-leaf Tensor, use "
                ".retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by "
                "mistake, make sure you access the leaf Tensor instead. See "
                "github.com/pytorch/pytorch/pull/30531 for more information.",
                UserWarning, stacklevel=2)
        g = self._grad
        if g is None and self._tape is None:
            node = self._node          # a leaf's grad lives in its storage: a view of it
            if node is not None and node.page is not None and leaves.has_grad(node):
                g = self._grad = _new(leaves.grad_array(node, _shape(self), self._dtype.np),
                                      self._dtype)
        return g

    @grad.setter
    def grad(self, value):
        rec = thread_state().recording
        if rec is not None:               # grad = None is recorded for the replays; else refused
            rec.set_grad(self, value)
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}")
            if _shape(value) != _shape(self):
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(_shape(value))}' to a "
                    f"tensor of size '{list(_shape(self))}'. Please ensure that the gradient "
                    "and the tensor are the same size")
            if value._dtype is not self._dtype:       # PyTorch 2.13's words
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{D.cpp_name(value._dtype)}' "
                    f"to a tensor with grad_dtype '{D.scalar_name(self._dtype)}'. The gradient "
                    "must match the tensor's grad_dtype (defaults to the tensor's dtype). You "
                    "can set the tensor's grad_dtype attribute with a specific dtype, or None "
                    "to allow any dtype. Set grad_dtype with caution. Diverging the dtypes of a "
                    "tensor and its gradient may break downstream systems that assume they "
                    "match.")
            if type(value._v) is _float:
                value = _new(np.array(value._v, value._dtype.np), value._dtype)
        node = self._node if self._tape is None else None
        old = self._grad
        if node is not None and node.page is not None and (old is None or value is not old):
            from .engine import _owns
            if old is not None and _owns(node, old) and sys.getrefcount(old) > 3:
                old._v = old._v.copy()     # the user holds the old grad: it keeps its values
            leaves.clear(node)             # (a grad never read yet goes too)
        self._grad = value
        if self._tape is None and self._rg and (value is not None or node is not None):
            from .engine import _leaf_node, update_deferred
            if value is not None:
                _leaf_node(self)                 # a user's grad: the engine adds into it
            update_deferred(self)

    @property
    def retains_grad(self):
        return self._tape is not None and self._slot in self._tape.retained

    def retain_grad(self):
        refuse_while_recording("retain_grad()")
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._tape is not None:
            self._tape.retained[self._slot] = weakref.ref(self)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .engine import backward
        backward([self], None if gradient is None else [gradient], retain_graph, create_graph,
                 inputs)

    # ----- conversion ----------------------------------------------------------------
    def item(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError(f"a Tensor with {n} elements cannot be converted to Scalar")
        v = self._v
        v = v if type(v) is _float else v.reshape(()).item()
        if recording_active():
            _guard(self, "array", np.asarray(v))
        return v

    def tolist(self):
        if recording_active():
            _guard(self, "array", np.array(_array(self)))
        return _array(self).tolist()

    def numpy(self, *, force=False):
        if force:
            return self.detach().numpy()
        if self._rg and not _recorded_here(self):
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if recording_active():
            _guard(self, "array", np.array(_array(self)))
        return _array(self)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def detach(self):
        t = _new(self._v, self._dtype)
        t._ver = _cell(self)
        if recording_active():       # replayed as a copy through which no gradient flows
            t._rg = True
            _record(CASTNG, t, self, None, 2.0)
        return t

    def detach_(self):
        """Makes this tensor a leaf that does not require grad, in place."""
        refuse_while_recording("detach_()")
        self._tape, self._slot, self._rg, self._node = None, -1, False, None
        return self

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, value):
        """Swaps in another tensor's value (shared, unrecorded), as PyTorch's ``.data =``."""
        refuse_while_recording("assigning .data")
        if self._tape is None and (value._dtype is not self._dtype
                                   or _shape(value) != _shape(self)):
            self._node = None        # a leaf's grad storage has the old dtype and shape
        self._v = value._v
        self._dtype = value._dtype
        self._ver = _cell(value)

    def __float__(self):
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return _float(self.item())

    def __int__(self):
        return _int(self.item())

    def __index__(self):
        if self._dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return _int(self.item())

    def __bool__(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._v.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        from .printing import format_tensor
        suffix = []
        if self._tape is not None:
            suffix.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._rg:
            suffix.append("requires_grad=True")
        dt = self._dtype
        default = dt is D.float32 or dt is D.int64 or dt is D.bool_
        return format_tensor(_array(self), None if default else dt.name, tuple(suffix))

    __str__ = __repr__

    # ----- arithmetic ----------------------------------------------------------------
    def __add__(self, other):
        a = self._v
        if type(a) is _float:
            t = type(other)
            if t is Tensor and type(other._v) is _float:
                return _sbin(_S_ADD, self, other, a + other._v)
            if _is_num(t):
                return _sconst(_S_ADD, self, other, a + other)
        return _binary(ADD, self, other)

    __radd__ = __add__

    def __sub__(self, other):
        a = self._v
        if type(a) is _float:
            t = type(other)
            if t is Tensor and type(other._v) is _float:
                return _sbin(_S_SUB, self, other, a - other._v)
            if _is_num(t):
                return _sconst(_S_SUB, self, other, a - other)
        return _binary(SUB, self, other)

    def __rsub__(self, other):
        a = self._v
        if type(a) is _float and _is_num(type(other)):
            return _sconst(_S_SUB, self, other, other - a, const_first=True)
        return _binary(SUB, other, self)

    def __mul__(self, other):
        a = self._v
        if type(a) is _float:
            t = type(other)
            if t is Tensor and type(other._v) is _float:
                return _sbin(_S_MUL, self, other, a * other._v)
            if _is_num(t):
                return _sconst(_S_MUL, self, other, a * other)
        return _binary(MUL, self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        a = self._v
        if type(a) is _float:
            t = type(other)
            if t is Tensor and type(other._v) is _float and other._v != 0.0:
                return _sbin(_S_DIV, self, other, a / other._v)
            if _is_num(t) and other != 0:
                return _sconst(_S_DIV, self, other, a / other)
        return _binary(DIV, self, other)

    def __rtruediv__(self, other):
        if isinstance(other, Tensor):
            return _binary(DIV, other, self)
        return _binary(MUL, _unary(RECIP, self), other)    # c / x = (1/x) * c, as PyTorch

    def __pow__(self, other):
        return self.pow(other)

    def __rpow__(self, other):
        if isinstance(other, Tensor):
            return other.pow(self)
        return _unary(RPOW, self, _float(other))

    def __neg__(self):
        a = self._v
        if type(a) is _float:
            return _sunary(_S_NEG, self, -a)
        return _unary(NEG, self, keep_int=True)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return _as_tensor(other).matmul(self)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return _inplace(self, DIV, other)

    def add(self, other, alpha=1):
        return _binary(ADD, self, other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return _binary(SUB, self, other if alpha == 1 else other * alpha)

    def mul(self, other):
        return _binary(MUL, self, other)

    def div(self, other):
        return _binary(DIV, self, other)

    def neg(self):
        return -self

    def pow(self, exponent):
        a = self._v
        if type(a) is _float and _is_num(type(exponent)) and a > 0.0:
            return _sconst(_S_POWC, self, _float(exponent), a ** exponent)
        if isinstance(exponent, Tensor):
            return _binary(POW, self, exponent)
        if isinstance(exponent, _int) and exponent < 0 and not self._dtype.is_floating_point:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return _unary(POWC, self, _float(exponent), keep_int=isinstance(exponent, _int))

    def exp(self):
        a = self._v
        if type(a) is _float and a < 709.0:
            return _sunary(_S_EXP, self, math.exp(a))
        return _unary(EXP, self)

    def log(self):
        a = self._v
        if type(a) is _float and a > 0.0:
            return _sunary(_S_LOG, self, math.log(a))
        return _unary(LOG, self)

    def tanh(self):
        a = self._v
        if type(a) is _float:
            return _sunary(_S_TANH, self, math.tanh(a))
        return _unary(TANH, self)

    def sigmoid(self):
        a = self._v
        if type(a) is _float and -709.0 < a:
            return _sunary(_S_SIGMOID, self, 1.0 / (1.0 + math.exp(-a)))
        return _unary(SIGMOID, self)

    def sqrt(self):
        a = self._v
        if type(a) is _float and a >= 0.0:
            return _sunary(_S_SQRT, self, math.sqrt(a))
        return _unary(SQRT, self)

    def abs(self):
        a = self._v
        if type(a) is _float:
            return _sunary(_S_ABS, self, abs(a))
        return _unary(ABS, self, keep_int=True)

    def relu(self):
        a = self._v
        if type(a) is _float:
            return _sunary(_S_RELU, self, a if not a <= 0.0 else 0.0)   # NaN passes
        return _unary(RELU, self, keep_int=True)

    def reciprocal(self):
        return _unary(RECIP, self)

    def sin(self):
        return _unary(SIN, self)

    def cos(self):
        return _unary(COS, self)

    def log1p(self):
        return _unary(LOG1P, self)

    def expm1(self):
        return _unary(EXPM1, self)

    def erf(self):
        return _unary(ERF, self)

    def rsqrt(self):
        return _unary(RSQRT, self)

    def square(self):
        return self.pow(2)

    def maximum(self, other):
        return _binary(MAXIMUM, self, _as_tensor(other))

    def minimum(self, other):
        return _binary(MINIMUM, self, _as_tensor(other))

    def clamp(self, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        lo = -math.inf if min is None else _float(min)
        hi = math.inf if max is None else _float(max)
        return _unary(CLAMP, self, lo, hi, keep_int=True)

    clip = clamp

    # ----- reductions and matrix products ---------------------------------------------
    def sum(self, dim=None, keepdim=False):
        return _reduce(SUM if dim is None else SUMDIM, self, dim, keepdim, False)

    def mean(self, dim=None, keepdim=False):
        return _reduce(MEAN if dim is None else MEANDIM, self, dim, keepdim, True)

    def mm(self, mat2):
        if not isinstance(mat2, Tensor):
            raise TypeError(f"mm(): argument 'mat2' (position 1) must be Tensor, not "
                            f"{type(mat2).__name__}")
        if self.ndim != 2:
            raise RuntimeError("self must be a matrix")
        if mat2.ndim != 2:
            raise RuntimeError("mat2 must be a matrix")
        (n, p), (q, r) = self._v.shape, mat2._v.shape
        if p != q:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({n}x{p} and "
                               f"{q}x{r})")
        return _product(MM, self, mat2, np.matmul(self._v, mat2._v))

    def matmul(self, other):
        """``@`` as PyTorch: dot, mv, mm, bmm, and broadcast batches of matrices."""
        other = _as_tensor(other)
        na, nb = self.ndim, other.ndim
        if na == 0 or nb == 0:
            raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they "
                               f"are {na}D and {nb}D")
        if na == 1 and nb == 1:
            return self.dot(other)
        if na == 2 and nb == 1:
            return self.mv(other)
        if na == 1 and nb == 2:
            return self.unsqueeze(0).mm(other).squeeze(0)
        if na == 2 and nb == 2:
            return self.mm(other)
        a = self.unsqueeze(0) if na == 1 else self
        b = other.unsqueeze(-1) if nb == 1 else other
        sa, sb = _shape(a), _shape(b)
        batch = _broadcast(sa[:-2], sb[:-2])
        if sa[-1] != sb[-2]:
            raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be:"
                               f" [{math.prod(batch)}, {sa[-1]}] but got: "
                               f"[{math.prod(batch)}, {sb[-2]}].")
        nbatch = math.prod(batch)
        a3 = a.expand(*batch, *sa[-2:]).reshape(nbatch, *sa[-2:])
        b3 = b.expand(*batch, *sb[-2:]).reshape(nbatch, *sb[-2:])
        out = a3.bmm(b3).reshape(*batch, sa[-2], sb[-1])
        if na == 1:
            out = out.squeeze(-2)
        if nb == 1:
            out = out.squeeze(-1)
        return out

    def bmm(self, mat2):
        if self.ndim != 3:
            raise RuntimeError("batch1 must be a 3D tensor")
        if mat2.ndim != 3:
            raise RuntimeError("batch2 must be a 3D tensor")
        (b, n, p), (b2, q, r) = self._v.shape, mat2._v.shape
        if b != b2 or p != q:
            raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be:"
                               f" [{b}, {p}] but got: [{b2}, {q}].")
        return _product(BMM, self, mat2, np.matmul(self._v, mat2._v))

    def dot(self, other):
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"1D tensors expected, but got {self.ndim}D and {other.ndim}D "
                               "tensors")
        if self._dtype is not other._dtype:
            raise RuntimeError("dot : expected both vectors to have same dtype, but found "
                               f"{D.scalar_name(self._dtype)} and {D.scalar_name(other._dtype)}")
        n, m = self._v.shape[0], other._v.shape[0]
        if n != m:
            raise RuntimeError(f"inconsistent tensor size, expected tensor [{n}] and src [{m}] "
                               f"to have the same number of elements, but got {n} and {m} "
                               "elements respectively")
        return _product(DOT, self, other, np.asarray(np.dot(self._v, other._v)))

    def mv(self, vec):
        if self.ndim != 2 or vec.ndim != 1:
            raise RuntimeError(f"vector + matrix @ vector expected, got 1, {self.ndim}, "
                               f"{vec.ndim}")
        (n, p), q = self._v.shape, vec._v.shape[0]
        if p != q:
            raise RuntimeError(f"size mismatch, got input ({n}), mat ({n}x{p}), vec ({q})")
        return _product(MV, self, vec, np.dot(self._v, vec._v))

    # ----- views -----------------------------------------------------------------------
    def __getitem__(self, key):
        nd = self.ndim
        steps = _index_key(key, nd)
        if steps is None:                # arrays, lists, tensors or masks in the key
            from .indexing import advanced_index
            return advanced_index(self, key)
        cur, d = self, 0
        for at, (kind, k) in enumerate(steps):  # at: the dim errors name, as PyTorch
            if kind == "none":
                cur = cur.unsqueeze(d)
                d += 1
            elif kind == "int":
                cur = _select(cur, d, k, at)
            else:
                size = cur._v.shape[d]
                start, stop, step = k.indices(size)
                if step <= 0:
                    raise ValueError("step must be greater than zero")
                if (start, stop, step) != (0, size, 1):
                    cur = _slice(cur, d, start, stop, step)
                d += 1
        if cur is self:                  # x[:] and x[...] are views of x too
            cur = _strided(SLICE, self, self._v if type(self._v) is _float else self._v[...],
                           0, _shape(self), _cstrides(_shape(self)))
        return cur

    def unsqueeze(self, dim):
        shape = _shape(self)
        d = _dim(dim, len(shape) + 1)
        st = _cstrides(shape)
        v = np.expand_dims(_array(self) if type(self._v) is _float else self._v, d)
        return _strided(UNSQUEEZE, self, v, 0, shape[:d] + (1,) + shape[d:],
                        st[:d] + [0] + st[d:])

    def squeeze(self, dim=None):
        shape = _shape(self)
        if dim is None:
            keep = [d for d, s in enumerate(shape) if s != 1]
            op = SQUEEZE
        else:
            dd = _dim(dim, len(shape))
            keep = [d for d in range(len(shape)) if d != dd or shape[d] != 1]
            op = SQUEEZEDIM
        st = _cstrides(shape)
        v = _array(self).reshape([shape[d] for d in keep])
        return _strided(op, self, v, 0, tuple(shape[d] for d in keep), [st[d] for d in keep])

    def reshape(self, *shape):
        shape = list(_sizes(shape))
        n = self.numel()
        if shape.count(-1) == 1:
            rest = math.prod(s for s in shape if s != -1)
            if rest and n % rest == 0:
                shape[shape.index(-1)] = n // rest
        if math.prod(shape) != n or any(s < 0 for s in shape):
            raise RuntimeError(f"shape '{list(_sizes(tuple(shape)))}' is invalid for input "
                               f"of size {n}")
        v = _array(self).reshape(shape)
        return _strided(VIEW, self, v, 0, (n,), [1])

    view = reshape

    def t(self):
        nd = self.ndim
        if nd > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
        shape = _shape(self)
        st = _cstrides(shape)
        return _strided(T, self, _array(self).T, 0, shape[::-1], st[::-1])

    def permute(self, *dims):
        shape = _shape(self)
        dims = [_dim(d, len(shape)) for d in _sizes(dims)]
        if sorted(dims) != list(range(len(shape))):
            raise RuntimeError("permute(sparse_coo): number of dimensions in the tensor input "
                               "does not match the length of the desired ordering of "
                               "dimensions i.e. input.dim() = "
                               f"{len(shape)} is not equal to len(dims) = {len(dims)}")
        st = _cstrides(shape)
        return _strided(PERMUTE, self, np.transpose(_array(self), dims), 0,
                        tuple(shape[d] for d in dims), [st[d] for d in dims])

    @property
    def T(self):
        return self.permute(*range(self.ndim - 1, -1, -1))

    # ----- in place --------------------------------------------------------------------
    def add_(self, other, alpha=1):
        return _inplace(self, ADD, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return _inplace(self, SUB, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return _inplace(self, MUL, other)

    def div_(self, other):
        return _inplace(self, DIV, other)

    def zero_(self):
        return self.fill_(0.0, "zero_()")

    def fill_(self, value, _name="fill_()"):
        st = _state_get(None) or thread_state()
        if st.recording is not None:      # recorded for the replays (or refused), and done
            return st.recording.fill(self, value, _name)
        if st.enabled and self._rg:
            raise RuntimeError("a leaf Variable that requires grad is being used in an "
                               "in-place operation." if self._tape is None else
                               "tapegrad: fill_ on a tensor that requires grad is not "
                               "supported yet")
        _bump(self)
        if type(self._v) is _float:
            self._v = _round(_float(value), self._dtype)
            _mark_dirty(self)
        else:
            self._v.fill(value)
        return self

    def copy_(self, src):
        src = _as_tensor(src)
        rec = thread_state().recording
        if rec is not None:               # recorded for the replays (or refused), and done
            return rec.copy(self, src)
        if thread_state().enabled and (self._rg or src._rg):
            if self._rg and self._tape is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                   "in-place operation.")
            raise NotImplementedError("tapegrad: copy_ that records a gradient is not "
                                      "supported yet; use it under tg.no_grad()")
        _broadcast(_shape(src), _shape(self))
        res = _new(np.broadcast_to(_array(src), _shape(self)), src._dtype)
        _assign(self, res)
        return self

    # ----- comparisons (no gradient) ---------------------------------------------------
    def _compare(self, other, f, op):
        o = other._v if isinstance(other, Tensor) else other
        if isinstance(other, Tensor):
            _broadcast(_shape(self), _shape(other))
        out = _new(np.asarray(f(_array(self), o)), D.bool_)
        if recording_active():               # a replay must recompute branch conditions
            if isinstance(other, Tensor):
                _record(op, out, self, other)
            else:
                _record(op, out, self, _float(other))
            out._rg = True                   # tracked inside the recording only
        return out

    def __eq__(self, other):
        return self._compare(other, np.equal, EQ)

    def __ne__(self, other):
        return self._compare(other, np.not_equal, NE)

    def __lt__(self, other):
        return self._compare(other, np.less, LT)

    def __le__(self, other):
        return self._compare(other, np.less_equal, LE)

    def __gt__(self, other):
        return self._compare(other, np.greater, GT)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal, GE)

    # ----- dtype ------------------------------------------------------------------------
    def to(self, *args, **kwargs):
        """A copy in another dtype (gradients flow back in this tensor's dtype); the device
        can only be the CPU."""
        dtype, copy = to_args(args, kwargs)
        dt = D.as_dtype(dtype) or self._dtype
        if dt is self._dtype and not copy:
            return self
        v = self._v
        if type(v) is _float and dt.is_floating_point:
            out = _new(_round(v, dt), dt)
        else:
            out = _from_array(np.array(_array(self), dt.np), dt)
        if _tracks(self._rg):
            if dt.is_floating_point:
                out._rg = True
                _record(CAST, out, self)
            elif thread_state().recording is not None:   # replayed, but no gradient
                out._rg = True
                _record(CASTNG, out, self, None, 0.0 if dt is D.bool_ else 1.0)
        return out

    def type(self, dtype=None):
        if dtype is None:
            return "tapegrad." + {"float32": "FloatTensor", "float64": "DoubleTensor",
                                  "int64": "LongTensor", "bool": "BoolTensor"}.get(
                self._dtype.name, self._dtype.name)
        return self.to(getattr(dtype, "dtype", dtype))    # tg.FloatTensor: its dtype

    def float(self):
        return self.to(D.float32)

    def double(self):
        return self.to(D.float64)

    def long(self):
        return self.to(D.int64)

    def int(self):
        return self.to(D.int32)

    def bool(self):
        return self.to(D.bool_)

    def clone(self):
        v = self._v
        out = _new(v if type(v) is _float else v.copy(), self._dtype)
        if _tracks(self._rg):
            out._rg = True
            _record(CLONE, out, self)
        return out

    def contiguous(self):
        return self


def _select(x, d, i, at=None):
    """x[..., i] on dim ``d``; an error names dim ``at`` (the key's position) when given."""
    shape = x._v.shape
    if not -shape[d] <= i < shape[d]:
        raise IndexError(f"index {i} is out of bounds for dimension {d if at is None else at} "
                         f"with size {shape[d]}")
    i %= shape[d]
    st = _cstrides(shape)
    v = x._v[(slice(None),) * d + (i, Ellipsis)]
    return _strided(SELECT, x, v, i * st[d], shape[:d] + shape[d + 1:], st[:d] + st[d + 1:])


def _slice(x, d, start, stop, step):
    shape = x._v.shape
    st = _cstrides(shape)
    n = len(range(start, stop, step))
    v = x._v[(slice(None),) * d + (slice(start, stop, step),)]
    new_st = st[:d] + [st[d] * step] + st[d + 1:]
    return _strided(SLICE, x, v, start * st[d], shape[:d] + (n,) + shape[d + 1:], new_st)


def _as_tensor(x):
    if isinstance(x, Tensor):
        return x
    from .factory import tensor
    return tensor(x)
