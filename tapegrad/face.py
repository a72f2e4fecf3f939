"""The working face of a tensor: what it is (``TensorBase``: a value and a place on a tape),
how tensors are made, and the operations every method builds on: elementwise ops with
broadcasting and PyTorch's type promotion, views, reductions, matrix products, and the
scalar fast path. Each operation computes its value eagerly and, when it must be recorded
(``_gate``), appends one record to the tape (``recording.record``).

The class users see, ``tensor.Tensor``, adds the methods on top of ``TensorBase``; tensor.py
sets ``Tensor`` here to it, and this module makes every tensor as one.
"""
import math
import struct
from weakref import ref as _weakref

import numpy as np

from . import dtypes as D
from .base import TensorBase
from .conversion import from_python
from ._generated.tables import ARRAY_F as _ARRAY_F, SCALAR_F as _SCALAR_F
from .layout import CONST_A, CONST_B, F32, RECORD, SCALAR, SHIFT
from .ops import (ADD, CLAMP, DIV, DOT, MM, MUL, MV, POW, POWC, RPOW, SUB)
from .quiet import hush as _hush, quietly, unhush as _unhush
from .recording import _INPLACE, _link, _source, no_grad_result, record, slot_of
from .shapes import _broadcast, _cstrides, _dim, _lane_aux, _reduced_dims  # noqa: F401
from .state import _local, current_tape, recording_active, thread_state
from .tape import Tape

_float = float
_int = int
_new_object = object.__new__


Tensor = TensorBase     # tensor.py puts the class users see here


_F32_CAST = struct.Struct("f")
_f32_pack, _f32_unpack = _F32_CAST.pack, _F32_CAST.unpack
_F32_BOUND = 3.4028235677973366e38  # float32's max + half an ulp: a cast from here is inf


def _round(v, dt):
    """A Python float rounded to the precision of dtype ``dt`` (inf past float32's range,
    silently, as PyTorch's cast)."""
    return _f32_number(v) if dt is D.float32 else v


def _f32_number(x):
    """Python number ``x`` cast to float32, as PyTorch casts a number operand to a float32
    tensor's dtype (a wrapped number): inf past float32's range, without NumPy's warning."""
    if -_F32_BOUND < x < _F32_BOUND:
        return _f32_unpack(_f32_pack(x))[0]     # C's (float) cast: NumPy's rounding, in a
        #                                         third of np.float32's time
    return x if x != x else math.inf if x > 0 else -math.inf


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
        a = quietly(a.astype, dt.np)            # (an overflow is inf, silently)
    return _new(a, dt, rg)


def _array(t):
    """The value of ``t`` as a NumPy array (a new 0-d array for a Python-float value)."""
    v = t._v
    return np.array(v, t._dtype.np) if type(v) is _float else v


def _c_array(t, dtype=None):
    """The value of ``t`` as a C-ordered array (of ``dtype``): what a reduction walks, so
    that it adds in the order a tg.compile replay (which holds values C-ordered) adds
    (a transposed view summed in memory order would differ in the last bit)."""
    v = t._v
    if type(v) is _float:
        return np.array(v, dtype or t._dtype.np)
    return np.asarray(v, dtype, order="C")       # (the array itself when it already is;
    #                                              ascontiguousarray would make 0-d 1-d)


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
    st = _local.state or thread_state()
    return st.recording is not None or (requires_grad and st._enabled)


_slot = slot_of
_record = record


# ----- the scalar fast path ---------------------------------------------------------
# Operations on Python-float tensors (0-d floating point) skip NumPy and the generic
# dispatch: the value is plain float math and the record one pack of three numbers. When
# an operand is a result on the thread's live tape (see state.py), no per-thread state is
# looked up at all.
_F32 = D.float32
_S = SCALAR
S_ADD, S_SUB, S_MUL, S_DIV, S_POWC = ADD | _S, SUB | _S, MUL | _S, DIV | _S, POWC | _S
_pack = RECORD.pack


def _scalar_out(dt, z):
    out = _new_object(Tensor)
    if dt is _F32:
        out._v = _f32_number(z)
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
    st = _local.state or thread_state()
    if not st._enabled and st.recording is None:
        return None
    # the thread's live tape, short of its size limit, is current_tape's answer (a leaf
    # times a number comes here: a model's parameters times its inputs)
    ref = st._tape
    tape = ref() if ref is not None else None
    if tape is not None and tape.live and tape.nbytes + len(tape.rec) <= Tape.LIMIT:
        return tape
    return current_tape(x, y)


def _sx(x, tape):
    """Slot of operand x on tape (a leaf already recorded there: no call)."""
    if x._tape is tape:
        return x._slot
    if x._tape is None:                 # a leaf or a constant: a source record, once a tape
        node = x._node
        if node is not None and node.tape_id == tape.id:
            return node.slot
        return _source(x, tape)
    return _link(x, tape)


def _finish(out, tape, head, b):
    """Appends the record of scalar result ``out`` (head: op | SCALAR | a << SHIFT)."""
    rec = tape.rec
    n = tape.n
    if out._dtype is _F32:
        head |= F32
    rec += _pack(head, b, out._v)
    tape.n = n + 1
    out._tape = tape
    out._slot = n
    out._rg = True
    if tape.keep_all and not tape.live:      # maybe under no_grad in a tg.compile recording
        no_grad_result(out, tape)
    return out


def _untracked_scalar(out):
    """A scalar result that is not recorded (grad mode off, nothing requires grad)."""
    out._tape = None
    out._slot = -1
    out._rg = False
    return out


def _record_scalar(out, head, x, y):
    """The general path of a scalar fast-path result ``out`` (head: opcode | SCALAR |
    flags): x and y its operands (y a Python number for a CONST_A/CONST_B head, or None for
    a unary op). Records it on the thread's tape (a leaf's first use there, an operand of
    another tape, a tg.compile recording), or leaves it unrecorded under no_grad."""
    if isinstance(y, TensorBase):
        tape = x._tape
        if tape is None or not tape.live:
            tape = y._tape
            if tape is None or not tape.live:
                tape = _live_tape(x, y)
                if tape is None:
                    return _untracked_scalar(out)
        sx = x._slot if x._tape is tape else _sx(x, tape)
        sy = y._slot if y._tape is tape else _sx(y, tape)
        return _finish(out, tape, head | sx << SHIFT, sy)
    tape = _live_tape(x)
    if tape is None:
        return _untracked_scalar(out)
    return _finish(out, tape, head | _sx(x, tape) << SHIFT, 0.0 if y is None else y)


def _sconst(code, x, c, z, const_first=False):
    """``code`` applied to Python-float tensor x and Python number c (value z)."""
    out = _scalar_out(x._dtype, z)
    if x._rg or recording_active():
        return _record_scalar(out, code | (CONST_A if const_first else CONST_B), x, c)
    return _untracked_scalar(out)


def _is_num(t):
    return t is _float or t is _int


# ----- the operations ----------------------------------------------------------------
_nd = np.ndarray
_add_reduce = np.add.reduce


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
    st = _local.state or thread_state()
    if st.recording is None and not (rg and st._enabled):
        return None
    return current_tape(x, y)


def _binary(op, a, b):
    """``op(a, b)`` with broadcasting; ``a`` or ``b`` may be a Python number."""
    if type(b) is _float and not a._rg and type(a._v) is _nd and a._dtype.is_floating_point:
        # an array that needs no grad and a Python float (a step's update, LR * w.grad):
        # the float keeps the array's dtype, and nothing is recorded outside tg.compile
        st = _local.state
        if st is not None and st.recording is None:
            dt = a._dtype
            tok = _hush()
            try:
                z = _ARRAY_F[op](a._v, b)
            finally:
                _unhush(tok)
            if type(z) is not _nd or z.dtype is not dt.np and z.dtype != dt.np:
                z = np.asarray(z, dt.np)        # (a 0-d array's result is a NumPy scalar)
            return _new(z, dt)
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
        if dt is D.float32:         # the number takes the tensor's dtype first, as PyTorch's
            if ta:                  # wrapped numbers: t - 0.37 is t - float32(0.37)
                vb = b = _f32_number(vb)
            else:
                va = a = _f32_number(va)
    if op == DIV and not dt.is_floating_point:      # true division: integers (and bools)
        dt = D.DEFAULT_FLOAT                        # are cast to the default float first
        if ta:                                      # (a record inside tg.compile), as
            a = a.to(dt)                            # PyTorch's
            va = a._v
        else:
            va = a = _round(_float(va), dt)
        if tb:
            b = b.to(dt)
            vb = b._v
        else:
            vb = b = _round(_float(vb), dt)
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
        out = _new_object(Tensor)           # _new, inline (a hot path)
        out._v = z
        out._dtype = dt
        out._rg = False
        out._tape = None
        out._slot = -1
        out._grad = None
        out._node = None
        out._ver = None
    if ta and a._rg:                        # _gate: a result of the live tape finds it here
        tape = a._tape
        if tape is None or not tape.live:
            tape = _gate(True, a, b if tb else None)
    elif tb and b._rg:
        tape = b._tape
        if tape is None or not tape.live:
            tape = _gate(True, b if not ta else a, b if ta else None)
    else:
        st = _local.state or thread_state()
        tape = None if st.recording is None else current_tape(a if ta else b,
                                                              b if ta and tb else None)
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
        x = x.to(D.DEFAULT_FLOAT)       # an integer tensor is cast first (a record inside
        dt = x._dtype                   # tg.compile), as PyTorch's float ops: 1 / 2 is 0.5
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
    tape = x._tape                  # _gate's first step inline: x a result of the live tape
    if tape is None or not tape.live or not x._rg:
        tape = _gate(x._rg, x)
    if tape is not None:
        out._rg = True
        _record(op, out, x, None, c, c2=0.0 if c2 is None else c2, tape=tape)
    return out


def _strided(op, x, value, base, shape, strides):
    """A view of ``x``: ``value[i] = x[base + sum(i_k * strides_k)]`` over ``shape``."""
    out = _new(value, x._dtype)
    if type(value) is _nd and type(x._v) is _nd and np.may_share_memory(value, x._v):
        out._ver = _cell(x)               # a view: one version counter, and its base
        root = getattr(x, "_base", None)
        if root is None:
            root = x
        out._base = root
        _remember_view(root, out)
    tape = _gate(x._rg, x)
    if tape is not None:
        out._rg = True
        _record(op, out, x, None, 0.0, (base, tuple(shape), tuple(strides)), tape=tape)
    return out


def _remember_view(root, view):
    """Keeps a weak reference to ``view`` on ``root``, so that an in-place change of root
    in grad mode can give its live views new records (inplace.regenerate_views)."""
    views = getattr(root, "_views", None)
    if views is None:
        root._views = views = []
    elif len(views) >= 64 and not len(views) & (len(views) - 1):   # 64, 128, ...: drop
        views[:] = [r for r in views if r() is not None]             # the dead ones
    views.append(_weakref(view))


def _reduce(op, x, dim, keepdim, mean):
    dt = x._dtype
    if mean and not dt.is_floating_point:
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either "
                           "a floating point or complex dtype. Got: " + D.scalar_name(dt))
    if not dt.is_floating_point:
        dt = D.int64
    v = x._v
    if type(v) is _nd and not v.flags.c_contiguous:
        v = np.asarray(v, order="C")          # reduced in C order, as a replay reduces
    tok = _hush()
    try:
        if dim is None and type(v) is _nd and not keepdim:     # the common full reduction
            z = v.mean() if mean else _add_reduce(v, None)     # (sum's own call, less
            #                                                   its Python wrapper)
            shape, dims = v.shape, None
        else:
            shape = _shape(x)
            dims = _reduced_dims(shape, dim)
            z = (np.mean if mean else np.sum)(v if type(v) is _nd else _array(x), axis=dims,
                                              keepdims=bool(keepdim))
    finally:
        _unhush(tok)
    if type(z) is not _nd or z.dtype != dt.np:
        z = np.asarray(z, dt.np)
    out = _new(z, dt)
    tape = _gate(x._rg, x)
    if tape is not None:
        lane = _LANES.get((shape, dims))
        if lane is None:
            lane = _lane(shape, dims)
        count, aux = lane
        out._rg = True
        scale = (1.0 / count if count else math.nan) if mean else 1.0
        _record(op, out, x, None, scale, aux, tape=tape)
    return out


_LANES = {}


def _lane(shape, dims):
    """(elements per lane, the sweep's lane map) of a reduction of ``shape`` over ``dims``
    (None: all), cached: a training loop reduces the same shapes every step."""
    full = tuple(range(len(shape))) if dims is None else dims
    lane = (math.prod(shape[d] for d in full), _lane_aux(shape, full))
    if len(_LANES) > 4096:
        _LANES.clear()
    _LANES[(shape, dims)] = lane
    return lane


def _product(op, a, b, value):
    """A matrix product of a and b (same dtype, as PyTorch requires)."""
    if a._dtype is not b._dtype:
        names = {"float32": "float", "float64": "double", "int64": "long int"}
        raise RuntimeError("expected m1 and m2 to have the same dtype, but got: "
                           f"{names.get(a._dtype.name, a._dtype.name)} != "
                           f"{names.get(b._dtype.name, b._dtype.name)}")
    out = _new(value, a._dtype)
    tape = a._tape                  # _gate's first step inline: a a result of the live tape
    if tape is None or not tape.live or not a._rg:
        tape = _gate(a._rg or b._rg, a, b)
    if tape is not None:
        out._rg = True
        sa, sb = a._v.shape, b._v.shape     # (batch, n, p, q): sizes the sweep loops over
        dims = (1, 1, sa[0], 1) if op == DOT else (1, sa[0], sa[1], 1) if op == MV else \
            (1, sa[0], sa[1], sb[1]) if op == MM else (sa[0], sa[1], sa[2], sb[2])
        _record(op, out, a, b, dims=dims, tape=tape)
    return out


unary = _unary
binary = _binary


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
    st = _local.state
    return st is not None and st.recording is not None and t._tape is st.recording.tape


def _guard_extremes(x, largest, d, shape, arg):
    """max(dim)/min(dim) of x inside a tg.compile recording: its indices are a value the
    tape does not recompute, so a replay whose arg-extremes differ records again."""
    rec = thread_state().recording
    if rec is not None:
        rec.guards.append((_slot(x, rec.tape), "argext", (largest, d, tuple(shape), arg)))


def _infer(data, dtype=None):
    """A NumPy array from Python data, typed as PyTorch would type it (or as ``dtype``)."""
    if isinstance(data, np.ndarray):
        D.from_numpy(data.dtype)    # PyTorch's TypeError for the dtypes tapegrad has not
        if dtype is not None and data.dtype != dtype.np:
            tok = _hush()           # an array is cast silently, as PyTorch's
            try:
                return data.astype(dtype.np)
            finally:
                _unhush(tok)
        return data
    # numbers and nested sequences: read as torch.tensor reads them, with its errors
    return from_python(data, dtype)


def _tensor_from(data, dtype=None):
    """``tg.tensor(data, dtype)``: a new tensor holding a copy of ``data``."""
    if isinstance(data, TensorBase):
        data = _array(data).copy()
    dt = D.as_dtype(dtype)
    a = _infer(data, dt)
    dt = dt or D.from_numpy(a.dtype)
    return _from_array(np.array(a, dtype=dt.np, order="C"), dt)


def _as_tensor(x):
    return x if isinstance(x, TensorBase) else _tensor_from(x)
