"""The tape: a flat Wengert list of records, born typed, and what backward needs beside it.

Records are appended as packed bytes (``layout.RECORD``: 24 bytes, three numbers) to one
bytearray that the Numba sweep reads in place; array records add a cached static
metadata row and a dynamic row to two more bytearrays. Values the backward reads stay
the NumPy arrays the forward made: the tape keeps them in ``objs`` and the sweep reads
them by address. Nothing is converted at backward.

The tape keeps no ``Tensor`` alive: its results hold it (so a graph nobody refers to is
freed with it), leaves are reached through their ``AccumulateGrad`` nodes, retained
tensors through weak references.
"""
import itertools
import struct
import weakref

import numpy as np

from .ops import F_BINARY, F_COMPARE, F_MATMUL, F_SETITEM, FAMILY, LEAF, NEEDS
from .layout import (DYN, OPMASK, RECORD, RECORD_SIZE, SCALAR, SHIFT, STATIC_WIDTH, DYN_WIDTH,
                     CONST_A, CONST_B, IOBJ)

_ids = itertools.count(1)


class _Live:
    """id -> tape, while something refers to it: a WeakValueDictionary's lookups, but a
    tape's entry is a plain weak reference, whose making is a tenth of a
    WeakValueDictionary's insert and removal callback (a tape starts every training step);
    dead entries go now and then."""
    __slots__ = ("refs", "limit")

    def __init__(self):
        self.refs = {}
        self.limit = 64

    def __setitem__(self, key, tape):
        refs = self.refs
        refs[key] = weakref.ref(tape)
        if len(refs) > self.limit:
            for k, r in refs.copy().items():        # (a copy, iterated here: listing the
                if r() is None:                     # dict's items can run a garbage
                    refs.pop(k, None)               # collection, so other threads' code)
            self.limit = max(64, 2 * len(refs))

    def get(self, key, default=None):
        r = self.refs.get(key)
        t = None if r is None else r()
        return default if t is None else t

    def __contains__(self, key):
        return self.get(key) is not None

    def __getitem__(self, key):
        t = self.get(key)
        if t is None:
            raise KeyError(key)
        return t


LIVE = _Live()
# id -> weak reference of a tape a backward left (later operations start a new one) with
# leaves recorded on it, until a backward without retain_graph frees all of it: a 0-d leaf
# changed in place later marks its records there (inplace._mark_dirty), as its node only
# knows the latest tape it was recorded on
LEFT = {}
_NEEDS = np.array(NEEDS, np.int64)
_GONE = np.empty(0)        # a dropped value's place in objs
_TWO_OPERANDS = (F_BINARY, F_MATMUL, F_SETITEM, F_COMPARE)   # b holds a slot
_unpack = RECORD.unpack_from
_I64, _F64 = np.dtype(np.int64), np.dtype(np.float64)


class Tape:
    LIMIT = 64 << 20          # bytes of records and saved values before a new tape starts

    __slots__ = ("rec", "n", "static", "dyn", "rows", "objs", "nbytes", "leaf_nodes", "links",
                 "multi", "hooks", "retained", "traces", "dirty", "unsaved", "saved", "epoch",
                 "freed",
                 "keep_all", "consts", "conds", "c2", "functions", "live", "dtypes", "big",
                 "full", "general", "ptrs", "id", "leaf_slots", "lists",
                 "__weakref__")

    def __init__(self):
        self.rec = bytearray()   # the records, RECORD_SIZE bytes each
        self.n = 0               # records so far, len(rec) // RECORD_SIZE: whoever appends
        #                          a record counts it (a new slot is one attribute load,
        #                          where len() and // make and free two ints)
        self.static = bytearray()  # static metadata rows of array records
        self.dyn = bytearray()   # dynamic metadata rows (where kept values are)
        self.rows = 0            # array records so far (the next metadata row)
        self.objs = []           # the arrays the backward reads (values, int lists)
        self.nbytes = 0          # bytes of those arrays
        self.leaf_nodes = []     # AccumulateGrad nodes of the leaves recorded here
        self.links = {}          # slot of a link record -> the node it continues into
        self.multi = {}          # slot of a cat/stack record -> the slots of its inputs
        self.hooks = {}          # slot -> (shape, dtype, {key: hook}) of a hooked non-leaf
        self.retained = {}       # slot -> weakref of a non-leaf that retains its grad
        self.traces = {}         # slot -> where it was recorded (anomaly detection mode)
        self.dirty = {}          # slot -> version of a scalar changed in place after use
        self.unsaved = []        # slots of records a backward does not free (add's alpha)
        self.saved = []          # (consumer, slot, cell, version, shape, dtype, tensor ref)
        self.epoch = -1          # in-place counter when the first value was saved
        self.freed = None        # None: live; True: all freed; array: mask of freed records
        self.keep_all = False    # keep every array value (a tg.compile recording replays it)
        self.consts = {}         # slot -> constant tensor (kept only while keep_all records)
        self.conds = {}          # slot of a where record -> the slot of its condition
        self.c2 = {}             # slot -> second constant of a scalar record (keep_all only)
        self.functions = {}      # slot of an autograd.Function output -> (its node, output
        #                          number): the sweep stops for its backward (engine.py)
        self.live = False        # see state.py
        self.dtypes = 0          # floating dtypes recorded: 1 float32, 2 float64
        self.big = False         # holds a matrix product for BLAS (see products.py)
        self.ptrs = None         # a tg.compile replay's data addresses (else read from objs)
        self.full = False        # holds a lane, gather, cat/stack or CopySlices record: the
        #                          sweep's full tier (_generated/sweeps.py)
        self.general = False     # holds an elementwise op of the sweep's core tier (ops.TIER)
        self.leaf_slots = (0, None)  # (records, {node id: slots}) cached by slots_of
        self.lists = False       # keep() was called: objs may hold int lists
        self.id = next(_ids)
        LIVE[self.id] = self

    def __len__(self):
        return self.n

    # ----- recording ---------------------------------------------------------------------
    def keep(self, array):
        """Keeps ``array`` for the backward; returns its index in ``objs``."""
        objs = self.objs
        objs.append(array)
        self.lists = True
        self.nbytes += array.nbytes
        return len(objs) - 1

    def record_array(self, head, b, static, aobj=-1, bobj=-1, yobj=-1, ints=None, gaddr=0):
        """Appends an array record (head: op | flags | a << SHIFT); returns its slot."""
        slot = self.n
        self.n = slot + 1
        k = self.rows
        self.rec += RECORD.pack(head, b, k)
        self.static += static
        if ints is None:
            self.dyn += DYN.pack(aobj, bobj, yobj, -1, 0, gaddr)
        else:
            self.dyn += DYN.pack(aobj, bobj, yobj, self.keep(ints), ints.size, gaddr)
        self.rows = k + 1
        return slot

    def set_dyn(self, slot, col, value):
        """Patches column ``col`` of the dynamic row of array record ``slot``."""
        k = int(_unpack(self.rec, slot * RECORD_SIZE)[2])
        struct.pack_into("<q", self.dyn, (k * DYN_WIDTH + col) * 8, value)

    # ----- reading -----------------------------------------------------------------------
    def head(self, slot):
        return _unpack(self.rec, slot * RECORD_SIZE)[0]

    def op_of(self, slot):
        return self.head(slot) & OPMASK

    def is_scalar(self, slot):
        return bool(self.head(slot) & SCALAR)

    def operands(self, slot):
        """(a, b, const_first): the operand slots of a record (-1: none, or a number)."""
        h, b, _ = _unpack(self.rec, slot * RECORD_SIZE)
        a = h >> SHIFT
        if h & CONST_A:
            return -1, a, True
        if h & CONST_B or FAMILY[h & OPMASK] not in _TWO_OPERANDS:
            return a, -1, False
        return a, int(b), False

    def scalar_value(self, slot):
        return _unpack(self.rec, slot * RECORD_SIZE)[2]

    def arrays(self):
        """The views the kernels take: rq, rd (records), ms, md (metadata rows). They
        export the bytearrays' buffers: drop them before recording again."""
        # frombuffer holds each bytearray's buffer while a view lives, so that appending
        # to it raises instead of moving the memory under the view (np.ndarray(buffer=)
        # would not hold it); dtype objects, not names, save a lookup per call
        rq = np.frombuffer(self.rec, _I64)
        rd = rq.view(_F64)
        ms = np.frombuffer(self.static, _I64).reshape(-1, STATIC_WIDTH)
        md = np.frombuffer(self.dyn, _I64).reshape(-1, DYN_WIDTH)
        return rq, rd, ms, md

    def sweep_tier(self, sweeps):
        """The least tier of the one-call backward that covers this tape
        (codegen_sweeps.py): it compiles only the kernels of what the tape holds."""
        if self.full:
            return sweeps.backward_all_full
        if self.rows == 0:                              # no array record: scalars only
            return sweeps.backward_all_scalar
        if self.general or self.rows != len(self.rec) // RECORD_SIZE:   # or scalar records
            return sweeps.backward_all
        return sweeps.backward_all_basic

    def left(self):
        """A backward leaves this tape: remembered while it may run again (LEFT)."""
        if self.leaf_nodes:
            LEFT[self.id] = weakref.ref(self)
            if len(LEFT) > 64 and len(LEFT) & (len(LEFT) - 1) == 0:   # now and then
                for key, r in LEFT.copy().items():    # (a copy: other threads add and
                    if r() is None:                         # pop meanwhile)
                        LEFT.pop(key, None)

    def slots_of(self, node):
        """The slots of the Python-float source records of leaf ``node`` here."""
        n = len(self.rec) // RECORD_SIZE
        if self.leaf_slots[0] != n:
            heads = np.frombuffer(self.rec, np.int64)[0::3]
            slots = np.nonzero(((heads & OPMASK) == LEAF) & ((heads & SCALAR) != 0))[0]
            found = {}
            for slot, i in zip(slots.tolist(), (heads[slots] >> SHIFT).tolist()):
                found.setdefault(id(self.leaf_nodes[i]), []).append(slot)
            self.leaf_slots = (n, found)
        return self.leaf_slots[1].get(id(node), ())

    # ----- freeing -----------------------------------------------------------------------
    def free(self, reach, rq):
        """Frees what a backward without retain_graph went through. A record whose
        backward reads no saved value (add, sum, views) stays usable, as in PyTorch; the
        records themselves stay, for grad_fn. When everything was reached, the kept
        values go."""
        went = ((reach > 0) & (_NEEDS[rq[0::3] & OPMASK] != 0)).view(np.uint8)
        if self.unsaved:
            went[self.unsaved] = 0
        if isinstance(self.freed, np.ndarray):
            went[:len(self.freed)] |= self.freed
        self.freed = went
        self.live = False
        if reach.all():
            self.drop_values()

    def drop_values(self):
        """Everything was swept and freed: the kept values go. The int lists stay (a reach
        pass reads cat's operand slots), and each value's place holds an empty array, so
        the kernels' object table keeps its length."""
        LEFT.pop(self.id, None)         # what reads a leaf's value can no longer run
        if not self.lists:              # no int list (they are kept by keep()): all go
            self.objs = [_GONE] * len(self.objs)
        else:
            md = np.frombuffer(self.dyn, np.int64).reshape(-1, DYN_WIDTH)
            lists = set(md[md[:, IOBJ] >= 0, IOBJ].tolist())
            self.objs = [o if i in lists else _GONE for i, o in enumerate(self.objs)]
        self.saved = []
        self.nbytes = 0
