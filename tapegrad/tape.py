"""The tape: a flat Wengert list of records, and what backward needs beside it.

Scalar records cost one ``list.extend`` of five numbers (see ``ops``). Array records add a
row of metadata (shape, and for views and reductions the strided map back to their input)
and keep the values their backward reads. ``freeze`` turns all of it into the typed NumPy
arrays the Numba sweep takes. The tape keeps no ``Tensor`` alive: leaves are reached
through their ``AccumulateGrad`` node, retained tensors through weak references.
"""
import itertools
import struct
import weakref

import numpy as np

from .layout import (AUX_BASE, AUX_ND, AUX_SHAPE, AUX_STR, GO, IN, IO, META_WIDTH, ND, SHAPE,
                     SIZE, VO)
from .ops import LINK, SCALAR

_ids = itertools.count(1)


class Tape:
    __slots__ = ("rec", "rows", "array_slots", "values", "value_slots", "int_slots", "vsize",
                 "saved", "leaves", "retained", "links", "multi", "hooks", "traces", "dirty",
                 "freed", "id", "check_at", "keep_all", "consts", "functions",
                 "__weakref__")

    def __init__(self):
        self.rec = []            # op, a, b, c, v for each record, flat
        self.rows = []           # packed metadata row (bytes) of each array record
        self.array_slots = []    # slot of each array record, in order
        self.values = []         # saved arrays, concatenated into one buffer at backward
        self.value_slots = {}    # slot -> offset of its saved value
        self.int_slots = {}      # slot -> (offset, length) of its int list in the values
        self.vsize = 0           # elements of saved values
        self.saved = []          # (consumer, slot, version cell, version, array, tensor ref)
        self.leaves = {}         # slot -> AccumulateGrad node of a leaf
        self.retained = {}       # slot -> weakref of a non-leaf that retains its grad
        self.links = {}          # slot of a freed-graph operand -> its node there
        self.multi = {}          # slot of a cat/stack record -> the slots of its inputs
        self.hooks = {}          # slot -> (shape, dtype, {key: hook}) of a hooked non-leaf
        self.traces = {}         # slot -> where it was recorded (anomaly detection mode)
        self.dirty = {}          # slot -> version of a scalar changed in place after use
        self.freed = None        # None: live; True: all freed; array: mask of freed records
        self.id = next(_ids)
        self.check_at = 1 << 14  # length at which to look whether any tensor still uses us
        self.keep_all = False    # keep every array value (a tg.compile recording replays them)
        self.consts = {}         # slot -> constant tensor (kept only while keep_all records)
        self.functions = {}      # slot of an autograd.Function output -> (its node, output
        #                          number): the sweep stops for its backward (engine._run)

    def __len__(self):
        return len(self.rec) // 5

    # ----- recording -------------------------------------------------------------------
    def record_array(self, op, a, b, c, shape, aux=None):
        """Appends an array record; returns its slot. ``aux``: (base, shape, strides)."""
        slot = len(self.rec)
        self.rec.extend((op, a, b, c, 0.0))
        key = (shape, aux)
        row = _ROWS.get(key)
        if row is None:
            row = _pack_row(shape, aux)
            if len(_ROWS) > 4096:
                _ROWS.clear()
            _ROWS[key] = row
        self.rows.append(row)
        self.array_slots.append(slot)
        return slot

    def save_ints(self, slot, ints):
        """Keeps an int list (indices, operand slots) for the backward of ``slot``."""
        ints = np.asarray(ints, np.float64).ravel()      # exact below 2**53
        self.int_slots[slot] = (self.vsize, ints.size)
        self.values.append(ints)
        self.vsize += ints.size

    def save_value(self, consumer, slot, array, cell, tensor=None):
        """Keeps ``array`` (the value of array slot ``slot``) for the backward of ``consumer``;
        ``cell``/``tensor``: its version counter and tensor, to name it if it changes."""
        if slot not in self.value_slots:
            self.value_slots[slot] = self.vsize
            self.values.append(array)
            self.vsize += array.size
        if cell is not None:
            self.saved.append((consumer, slot, cell, cell[0], array,
                               None if tensor is None else weakref.ref(tensor)))

    # ----- backward --------------------------------------------------------------------
    def freeze(self):
        """The typed arrays of ``kernels.reverse_sweep``: (R, sv, m, M, av), and the size
        of the array adjoint buffer."""
        n = len(self.rec) // 5
        R = np.fromiter(self.rec, np.float64, 5 * n).reshape(n, 5)
        sv = np.ascontiguousarray(R[:, 4])
        m = np.full(n, -1, np.int64)
        M = np.frombuffer(b"".join(self.rows), np.int64).reshape(-1, META_WIDTH).copy()
        sizes = M[:, SIZE]
        ends = np.cumsum(sizes)
        M[:, GO] = ends - sizes                       # adjoint offsets, packed in order
        if self.rows:
            m[np.array(self.array_slots, dtype=np.int64) // 5] = np.arange(len(self.rows))
        if self.value_slots:
            slots = np.fromiter(self.value_slots.keys(), np.int64, len(self.value_slots))
            M[m[slots // 5], VO] = np.fromiter(self.value_slots.values(), np.int64,
                                               len(self.value_slots))
        if self.int_slots:
            slots = np.fromiter(self.int_slots.keys(), np.int64, len(self.int_slots))
            rows = m[slots // 5]
            where = np.array(list(self.int_slots.values()), np.int64).reshape(-1, 2)
            M[rows, IO] = where[:, 0]
            M[rows, IN] = where[:, 1]
        if self.values:
            av = np.concatenate([np.ravel(v) for v in self.values]).astype(np.float64,
                                                                           copy=False)
        else:
            av = np.zeros(0)
        return R, sv, m, M, av, int(ends[-1]) if len(ends) else 0

    def free(self, reach, R):
        """Frees what a backward without retain_graph went through. Sources (leaves,
        constants) keep no saved values, so only operations count as freed."""
        if reach.all():
            self.freed = True
            self.values = self.saved = None     # the records stay: grad_fn still reads them
            self.value_slots = {}
            self.int_slots = {}
            return
        went = (reach > 0) & (R[:, 0] % SCALAR > LINK)
        if isinstance(self.freed, np.ndarray):
            went[:len(self.freed)] |= self.freed
        self.freed = went

    def op_of(self, slot):
        return int(self.rec[slot]) % SCALAR

    def operands(self, slot):
        return int(self.rec[slot + 1]), self.rec[slot + 2]

    def reset(self):
        """Starts over in place (only when nothing refers to the records any more)."""
        self.__init__()


_ROWS = {}     # (shape, aux) -> packed metadata row, shared by all tapes
_ROW = struct.Struct(f"<{META_WIDTH}q")


def _pack_row(shape, aux):
    """The metadata row of an array record: the kernels' M layout, adjoint offset left 0."""
    row = [0] * META_WIDTH
    size = 1
    for s in shape:
        size *= s
    row[VO], row[SIZE], row[ND] = -1, size, len(shape)
    row[SHAPE:SHAPE + len(shape)] = shape
    if aux is not None:
        base, ashape, astrides = aux
        row[AUX_ND] = len(ashape)
        row[AUX_BASE] = base
        row[AUX_SHAPE:AUX_SHAPE + len(ashape)] = ashape
        row[AUX_STR:AUX_STR + len(astrides)] = astrides
    return _ROW.pack(*row)
