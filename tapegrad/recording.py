"""Recording: appending the record of an operation to the thread's tape.

``record`` is the general path (arrays, and scalars off the fast path in tensor.py): it
finds each operand's slot (``slot_of``: a leaf or a constant gets a source record once per
tape, a result of another tape a link record), keeps the values the op's backward reads
(``ops.NEEDS``; an operand's value only when the other operand needs a gradient, as
PyTorch saves them), and appends the record. A record's dtype flags and metadata come
from its result.
"""
import traceback
import weakref

import numpy as np

from .base import TensorBase
from .graph import Node
from .layout import (BIG, BLAS_MIN, CELL, CONST_A, CONST_B, DYN, F32, RECORD,
                     SCALAR, SHIFT, _rows, static_row)
from .dtypes import float32 as _F32, float64 as _F64
from .leaves import _POOL, PAGE_CELLS, attach, leaf_node
from .ops import (BMM, CONST, DIV, DOT, FAMILY, F_BINARY, F_COMPARE, F_SETITEM, LEAF, LINK,
                  MAXD, MM, MUL, MV, NEEDS, CASTNG, TIER)
from .grad_mode import _anomaly
from .state import _local, current_tape

_float = float
_weak = weakref.ref
_CROSS = frozenset((MUL, MM, BMM, DOT, MV))    # d(ab)/da = b, d(ab)/db = a
_pack = RECORD.pack
_dyn = DYN.pack
_B_CONST = (F_BINARY, F_SETITEM, F_COMPARE)   # families whose b may be a Python number
_INPLACE = [0]        # in-place changes so far (a tape saved before and none since: no check)


_FLAGS = {_F32: (F32, 1), _F64: (0, 2)}   # a result dtype's record flags, tape dtype bit
_NO_FLAGS = (0, 0)
_NO_DYN = _dyn(-1, -1, -1, -1, 0, 0)
_plans = {}


def _plan(op, shape, aux, dims, c2):
    """What an array record of ``op`` with this metadata always needs: (its static row,
    the values its backward reads, 2 for a product and 1 for a quotient (whose operands'
    values serve the other's grad), and (its sweep tier (ops.TIER), whether its product
    is BLAS's) or None for neither), cached, so a training loop computes it once."""
    if len(shape) > MAXD or (aux is not None and len(aux[1]) > MAXD):
        dims_ok(aux[1] if aux is not None else shape)
    big = dims is not None and dims[0] * dims[1] * dims[2] * dims[3] >= BLAS_MIN
    cross = 2 if op in _CROSS else 1 if op == DIV else 0
    plan = (static_row(shape, aux, dims, c2), NEEDS[op], cross,
            (TIER[op], big) if TIER[op] or big else None)
    if len(_plans) > 8192:
        _plans.clear()
    _plans[(op, shape, aux, dims, c2)] = plan
    return plan


def dims_ok(shape):
    if len(shape) > MAXD:
        raise RuntimeError(f"tapegrad: tensors have at most {MAXD} dimensions")


def _dtype_flag(tape, dt):
    """F32 for a float32 result; notes the tape's dtypes (the sweep's dtype follows)."""
    flags, bit = _FLAGS.get(dt, _NO_FLAGS)
    tape.dtypes |= bit
    return flags


def slot_of(t, tape):
    """The slot of tensor ``t`` on ``tape``, recording it as a source if it is new there."""
    tt = t._tape
    if tt is tape:
        return t._slot
    if tt is None:
        return _source(t, tape)
    return _link(t, tape)


def _source(t, tape):
    """A leaf (or a constant: a tensor that needs no grad) enters the tape: once per tape."""
    node = t._node
    if node is None:
        node = leaf_node(t)
    elif node.tape_id == tape.id:
        return node.slot
    v = t._v
    if type(v) is _float and t._rg:            # a 0-d leaf (scalar graphs have many)
        if node.page is None:                  # _POOL.cell, inline while its page has room
            p = _POOL.current                  # (no call or loop between the test of
            if p is not None and p.next < PAGE_CELLS:   # node.page and p.next's bump: no
                node.cell = i = p.next                  # other thread runs in between)
                p.next = i + 1
                node.addr = a = p.addr + i * CELL
                node.faddr = a + 0.0            # (float(a) would be a call: a thread
                #                                  switch there gave a leaf two cells)
                node.page = p
            else:
                attach(node, None, None)
        leaves = tape.leaf_nodes
        if t._dtype is _F32:
            head = LEAF | SCALAR | F32 | len(leaves) << SHIFT
            tape.dtypes |= 1
        else:
            head = LEAF | SCALAR | len(leaves) << SHIFT
            tape.dtypes |= 2
        leaves.append(node)
        rec = tape.rec
        node.slot = slot = tape.n
        rec += _pack(head, node.faddr, v)
        tape.n = slot + 1
        node.tape_id = tape.id
        return slot
    if node.rows_of is v and not tape.keep_all:     # an array source seen before: its
        static, dyn, head, b, bit, dt, rg = node.rows       # rows and head are cached
        if dt is t._dtype and rg is t._rg:
            tape.dtypes |= bit
            if rg:
                leaves = tape.leaf_nodes
                head |= len(leaves) << SHIFT
                leaves.append(node)
            rec = tape.rec
            node.slot = slot = tape.n
            rec += _pack(head, b, tape.rows)
            tape.n = slot + 1
            tape.static += static
            tape.dyn += dyn
            tape.rows += 1
            node.tape_id = tape.id
            return slot
    flag, bit = _FLAGS.get(t._dtype, _NO_FLAGS)     # _dtype_flag, inline (a hot path)
    tape.dtypes |= bit
    scalar = type(v) is _float
    if not scalar and len(v.shape) > MAXD:
        dims_ok(v.shape)
    if t._rg:
        if node.page is None:
            attach(node, None if scalar else v.shape, t._dtype.np)
        head = LEAF | flag
        b, gaddr = node.addr, node.buf_addr
    else:
        head, b, gaddr = CONST | flag, 0.0, 0
    if not scalar and not tape.keep_all:
        # an array source's rows and head, cached while its value, dtype and
        # requires_grad stay (its grad storage never moves: leaves.attach)
        node.rows = (static_row(v.shape), DYN.pack(-1, -1, -1, -1, 0, gaddr), head, b, bit,
                     t._dtype, t._rg)
        node.rows_of = v
    if t._rg:
        head |= len(tape.leaf_nodes) << SHIFT
        tape.leaf_nodes.append(node)
    if scalar:
        rec = tape.rec
        slot = tape.n
        rec += _pack(head | SCALAR, b, v)
        tape.n = slot + 1
    elif tape.keep_all:
        yobj = tape.keep(v.copy())                          # fn may change it later
        slot = tape.record_array(head, b, static_row(v.shape), yobj=yobj, gaddr=gaddr)
    else:                       # an array source's metadata (cached above)
        rec = tape.rec
        slot = tape.n
        rec += _pack(head, b, tape.rows)
        tape.n = slot + 1
        tape.static += node.rows[0]
        tape.dyn += node.rows[1]
        tape.rows += 1
    if not t._rg and tape.keep_all:          # a replay re-reads the constant's value
        tape.consts[slot] = t
    node.slot = slot
    node.tape_id = tape.id
    return slot


def _link(t, tape):
    """A result recorded on another tape (a freed graph, a tg.compile replay, another
    thread): a link record, through which backward goes on into that tape."""
    v = t._v
    flag = _dtype_flag(tape, t._dtype)
    if type(v) is _float:
        rec = tape.rec
        slot = tape.n
        rec += _pack(LINK | SCALAR | flag, 0.0, v)
        tape.n = slot + 1
    else:
        yobj = tape.keep(np.ascontiguousarray(v).copy()) if tape.keep_all else -1
        slot = tape.record_array(LINK | flag, 0.0, static_row(v.shape), yobj=yobj)
    tape.links[slot] = Node(t._tape, t._slot)
    if tape.keep_all:                        # a replay re-reads its value
        tape.consts[slot] = t
    return slot


def _kept(tape, t, consumer, slot):
    """Index in tape.objs of t's value, kept for the backward of record ``consumer``
    (C-contiguous, floating; a version check at backward catches a later in-place
    change)."""
    v = t._v
    if v.dtype.kind != "f" or not v.flags.c_contiguous:
        v = np.ascontiguousarray(v, v.dtype if v.dtype.kind == "f" else np.float64)
    objs = tape.objs
    idx = len(objs)
    objs.append(v)
    tape.nbytes += v.nbytes
    if tape.epoch < 0:
        tape.epoch = _INPLACE[0]
    c = t._ver
    if c is None:
        c = t._ver = [0]
    tape.saved.append((consumer, slot, c, c[0], idx, _weak(t)))
    return idx


def record(op, out, a, b=None, c=0.0, aux=None, ints=None, dims=None, c2=0.0, tape=None):
    """Appends the record of ``out = op(a, b)`` to ``tape`` (the thread's by default): a and
    b are Tensors or Python numbers (a binary op's number operand), b None for ops of one
    input; ``c`` a constant kept in the record (an exponent, a scale), ``c2`` a second one;
    ``ints`` an int list the backward reads (indices, operand slots); ``dims`` a matrix
    product's (batch, n, p, q)."""
    if tape is None:
        tape = current_tape(a, b)
    # operand slots (slot_of, inline): a result here, or a source (once a tape) or link
    ta = isinstance(a, TensorBase)           # (else a Python number, or None)
    sa = -1 if not ta else a._slot if a._tape is tape else \
        _source(a, tape) if a._tape is None else _link(a, tape)
    tb = isinstance(b, TensorBase)
    sb = -1 if not tb else b._slot if b._tape is tape else \
        _source(b, tape) if b._tape is None else _link(b, tape)
    flags, bit = _FLAGS.get(out._dtype, _NO_FLAGS)  # _dtype_flag, inline (a hot path)
    tape.dtypes |= bit
    if ta and tb:
        head, bf = op | sa << SHIFT, _float(sb)
    elif tb:                                  # a Python number stands first (2 - x)
        head, bf = op | CONST_A | sb << SHIFT, _float(a)
    elif b is not None and FAMILY[op] in _B_CONST:
        head, bf = op | CONST_B | sa << SHIFT, _float(b)
    else:
        head, bf = op | (CONST_B if FAMILY[op] == F_COMPARE else 0) | sa << SHIFT, _float(c)
    v = out._v
    if type(v) is _float and ((ta and type(a._v) is not _float)
                              or (tb and type(b._v) is not _float) or ints is not None):
        v = out._v = np.array(v, out._dtype.np)     # from an array: an array record
    rec = tape.rec
    slot = tape.n
    if type(v) is _float:
        rec += _pack(head | flags | SCALAR, bf, v)
        tape.n = slot + 1
        if c2 and tape.keep_all:             # clamp's max: a replay recomputes the value
            tape.c2[slot] = c2
    else:
        plan = _plans.get((op, v.shape, aux, dims, c2)) or _plan(op, v.shape, aux, dims, c2)
        row, need, cross, rare = plan
        if need:
            if cross:                       # a's value only serves b's grad (and b's a's)
                if not (tb and b._rg):
                    need &= ~1
                if cross == 2 and not (ta and a._rg):
                    need &= ~2
            aobj = _kept(tape, a, slot, sa) if need & 1 and ta and type(a._v) is not _float \
                else -1
            bobj = _kept(tape, b, slot, sb) if need & 2 and tb and type(b._v) is not _float \
                else -1
        else:
            aobj = bobj = -1
        yobj = _kept(tape, out, slot, slot) if need & 4 or tape.keep_all else -1
        if ints is not None:
            ints = np.ascontiguousarray(ints, np.int64).ravel()
            dyn = _dyn(aobj, bobj, yobj, tape.keep(ints), ints.size, 0)
        elif aobj == -1 and bobj == -1 and yobj == -1:
            dyn = _NO_DYN
        else:
            dyn = _dyn(aobj, bobj, yobj, -1, 0, 0)
        if rare:                            # a sweep tier beyond the basic one, or BLAS's
            tier, big = rare
            if tier == 2:                   # the sweep tier the tape needs (ops.TIER)
                tape.full = True
            elif tier == 1 or (tier and bf != 2.0):
                tape.general = True
            if big:
                flags |= BIG                # done by NumPy's BLAS (products.py)
                tape.big = True
        k = tape.rows
        rec += _pack(head | flags, bf, k)
        tape.n = slot + 1
        tape.static += row
        tape.dyn += dyn
        tape.rows = k + 1
    if _anomaly[0]:
        tape.traces[slot] = "".join(traceback.format_stack()[:-3])
    out._tape = tape
    out._slot = slot
    if tape.keep_all and FAMILY[op] != F_COMPARE:   # maybe under no_grad in a tg.compile recording
        no_grad_result(out, tape)
    return out


def no_grad_result(out, tape):
    """Inside a tg.compile recording, an operation under no_grad is recorded too (a replay
    recomputes it), followed by a detach (CASTNG 2): as in eager mode, no gradient flows
    back through its result."""
    st = _local.state
    if st is not None and not st.enabled and st.recording is not None:
        record(CASTNG, out, out, None, 2.0, tape=tape)
