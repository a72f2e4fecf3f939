"""A tape read by the recorded backward (``create_graph=True``, double_backward.py): its
records, shapes and int lists, and the values its derivative formulas read, as tensors
*on the graph*.

A value the backward reads (an operand x, y or the result of a record) becomes a tensor
that stands for its slot: its ``_tape`` and ``_slot`` are the record's, its value the one
the tape kept. Used in a new operation, it is that slot (on the same tape) or a link to it
(on another), so the recorded backward is itself differentiable: the derivative of
``g * cos(x)`` reaches x's record. A leaf's slot is the leaf itself; a constant's, a
tensor that needs no grad.
"""
import numpy as np

from . import dtypes as D
from .face import _new
from .layout import (AUX_BASE, AUX_ND, AUX_SHAPE, AUX_STR, CONST_A, CONST_B, DYN_WIDTH,
                     F32, ILEN, IOBJ, ND, OPMASK, SCALAR, SHAPE, SHIFT, STATIC_WIDTH)
from .ops import (CONST, FAMILY, F_BINARY, F_COMPARE, F_CUSTOM, F_MATMUL, F_MULTI, F_SETITEM,
                  F_SOURCE, LEAF)

_TWO = (F_BINARY, F_MATMUL, F_SETITEM)


class TapeView:
    """A snapshot of one tape's records (copies: the recorded backward appends records,
    maybe to this very tape) and the graph tensors of its values."""

    def __init__(self, tape):
        self.tape = tape
        self.rq = np.frombuffer(bytes(tape.rec), np.int64)
        self.rd = self.rq.view(np.float64)
        self.ms = np.frombuffer(bytes(tape.static), np.int64).reshape(-1, STATIC_WIDTH)
        self.md = np.frombuffer(bytes(tape.dyn), np.int64).reshape(-1, DYN_WIDTH)
        self.n = len(self.rq) // 3
        self.values = {}         # slot -> its tensor on the graph
        self._cells = None       # index in tape.objs -> the version cell of the kept value
        self.need = None         # need[s]: slot s leads to a wanted gradient (double_backward)
        self.reach = None        # reach[s]: the roots reach slot s through needed slots

    # ----- records ---------------------------------------------------------------------
    def head(self, s):
        return int(self.rq[3 * s])

    def op(self, s):
        return self.head(s) & OPMASK

    def const(self, r):
        """The b field of record r as a number (a constant, or the second operand's slot)."""
        return float(self.rd[3 * r + 1])

    def _row(self, s):
        return int(self.rd[3 * s + 2])

    def shape(self, s):
        """The shape of slot s (() for a Python-float scalar)."""
        if self.head(s) & SCALAR:
            return ()
        k = self._row(s)
        return tuple(int(v) for v in self.ms[k, SHAPE:SHAPE + int(self.ms[k, ND])])

    def dtype(self, s):
        return D.float32 if self.head(s) & F32 else D.float64

    def aux(self, r):
        """(base, shape, strides): the strided map of a view or reduction record."""
        k = self._row(r)
        nd = int(self.ms[k, AUX_ND])
        return (int(self.ms[k, AUX_BASE]),
                tuple(int(v) for v in self.ms[k, AUX_SHAPE:AUX_SHAPE + nd]),
                tuple(int(v) for v in self.ms[k, AUX_STR:AUX_STR + nd]))

    def ints(self, r):
        """The int64 list of record r (indices, operand slots, where's condition)."""
        k = self._row(r)
        return self.tape.objs[int(self.md[k, IOBJ])][:int(self.md[k, ILEN])]

    def operands(self, r):
        """The slots record r reads (numbers standing in a slot left out)."""
        h = self.head(r)
        fam = FAMILY[h & OPMASK]
        if fam == F_SOURCE or fam == F_COMPARE:
            return ()
        if fam == F_MULTI:
            return tuple(self.tape.multi[r])
        if fam == F_CUSTOM:
            return tuple(int(s) for s in self.ints(r))
        a = h >> SHIFT
        if fam in _TWO and not h & (CONST_A | CONST_B):
            return a, int(self.rd[3 * r + 1])
        return (a,)

    # ----- values as tensors on the graph -------------------------------------------------
    def value(self, s, r, col):
        """The tensor standing for slot s, whose value record r kept in column ``col`` of
        its dynamic row (AOBJ, BOBJ, YOBJ); None when r kept none (no formula that will
        run reads it)."""
        t = self.values.get(s)
        if t is not None:
            return t
        h = self.head(s)
        op = h & OPMASK
        if op == LEAF:
            t = self.tape.leaf_nodes[h >> SHIFT].variable
            if t is not None:
                self.values[s] = t
                return t
        cell = None
        if h & SCALAR:
            v = float(self.rd[3 * s + 2])
        else:
            idx = int(self.md[self._row(r), col])
            if idx < 0:
                return None
            v = self.tape.objs[idx]
            cell = self._cell(idx)
        if op in (CONST, LEAF):           # a constant, or a leaf nobody holds any more
            t = _new(v, D.float32 if h & F32 else D.from_numpy(np.asarray(v).dtype))
        else:
            t = _new(v, self.dtype(s), True)
            t._tape = self.tape
            t._slot = s
        if cell is not None:
            t._ver = cell                 # an in-place change of the value is still caught
        self.values[s] = t
        return t

    def _cell(self, idx):
        if self._cells is None:
            self._cells = {i: cell for _, _, cell, _, i, _ in self.tape.saved}
        return self._cells.get(idx)

    def link_target(self, s):
        """(tape, slot) a link record stands for."""
        node = self.tape.links[s]
        return node._tape, node._slot
