"""A recorded tape made a program that replays run: where every value goes, and the
tables the kernels read.

A ``tg.compile`` recording records on a ``keep_all`` tape: every array record keeps its
value (``YOBJ``), every source a copy. A ``Program`` lays those values out in one
**arena** (array row k at ``voff[k]``, ``SIZE`` values) and gives the int lists a replay
recomputes (max(dim)/min(dim)'s arg-extremes, where's condition) places after them; the
int lists that never change (gather indices, cat/stack's slots, CopySlices' positions)
stay the arrays the recording made. One table of data addresses, ``ptrs``, serves both
sweeps: ``ptrs[k]`` is row k's value, ``ptrs[nrows + j]`` int list j. The dynamic rows are
rewritten to index it: a record's AOBJ/BOBJ point at its operands' rows, YOBJ at its own,
IOBJ at its int list, so the reverse sweep of a replayed call reads that call's values.
A call allocates an arena, computes ``ptrs`` from its address in one step (``place``),
writes its inputs, and runs the forward sweep.

The arena's element type (``dtype``) is float32 when every record is a float32 value
(or a comparison's 0/1):
the replay then computes, stores and sweeps in float32, as eager float32 does; otherwise
float64 (a float32 result rounded to float32 as it is made). An int list in a float32
arena takes two places per int, from an even place (8-byte aligned).
"""
import numpy as np

from .layout import (AOBJ, BIG, BOBJ, CONST_A, CONST_B, DYN_WIDTH, F32, ILEN, IOBJ, ND,
                     OPMASK, PB, PQ, SCALAR, SHAPE, SHIFT, SIZE, STATIC_WIDTH, YOBJ)
from .ops import (CASTNG, CLAMP, FAMILY, F_BINARY, F_COMPARE, F_MATMUL, F_SETITEM, F_SOURCE,
                  MAXDIM, MINDIM, NEEDS, WHERE)
from .quiet import quietly

_FAMILY = np.array(FAMILY, np.int64)
_PLACE = [None]           # replay_call.place, once imported


class Program:
    """The replayable form of a recorded keep_all tape (see the module docstring)."""

    def __init__(self, tape):
        self.nrec = len(tape)
        self.nrows = nrows = tape.rows
        self.rec = np.frombuffer(tape.rec, np.uint8).copy()       # records (template)
        self.static = np.frombuffer(tape.static, np.int64).copy()
        self.ms = self.static.reshape(-1, STATIC_WIDTH)
        self.msd = self.static.view(np.float64).reshape(-1, STATIC_WIDTH)
        self.dyn = np.frombuffer(tape.dyn, np.int64).copy()
        md = self.md = self.dyn.reshape(-1, DYN_WIDTH)
        rq = self.rec.view(np.int64)
        rd = self.rec.view(np.float64)
        heads = rq[0::3]
        self.ops = ops = heads & OPMASK
        scalar = (heads & SCALAR) != 0
        row_slot = np.nonzero(~scalar)[0]              # array row k is record row_slot[k]
        assert len(row_slot) == nrows
        self.row_slot = row_slot
        row_of = np.where(scalar, -1.0, rd[2::3]).astype(np.int64)
        self.row_of = row_of
        sizes = self.ms[:, SIZE].copy()
        # a detach (CASTNG 2) of an array has its operand's values: it shares their place
        first_of_row = heads[row_slot] >> SHIFT
        self.alias = (ops[row_slot] == CASTNG) & (rd[3 * row_slot + 1] == 2.0) & \
            (row_of[np.maximum(first_of_row, 0)] >= 0) & (first_of_row >= 0)
        sizes[self.alias] = 0
        voff = np.zeros(nrows, np.int64)
        if nrows:
            voff[1:] = np.cumsum(sizes)[:-1]
        for k in np.nonzero(self.alias)[0].tolist():
            voff[k] = voff[row_of[first_of_row[k]]]
        self.f32 = (heads & F32) != 0
        # The arena is float32 when eager's sweep runs in float32: no float64 record on the
        # tape (tape.dtypes: bit 1 float32, bit 2 float64; integer and bool records set
        # neither). A comparison's 0/1 (a cast to bool's too) is exact in float32; an
        # integer record's value is exact while below 2^24 in magnitude, which a guard
        # checks at each call (``int_slots``; beyond it the call is eager's).
        bool01 = (_FAMILY[ops] == F_COMPARE) & ((ops != CASTNG) | (rd[1::3] == 0.0))
        f32_tape = (self.f32 | bool01).all() or tape.dtypes == 1
        self.dtype = np.dtype(np.float32 if f32_tape else np.float64)
        self.int_slots = np.nonzero(~(self.f32 | bool01))[0] if f32_tape else \
            np.zeros(0, np.int64)
        isz = self.dtype.itemsize
        total = int(sizes.sum())
        # ----- int lists: the recomputed ones in the arena, the others as recorded
        has_ints = np.nonzero(md[:, IOBJ] >= 0)[0]
        self.int_lists = []     # per list: (its arena offset, or None; the array, or None; length)
        base, rel = [isz * voff], [np.ones(nrows, np.uint8)]
        for j, k in enumerate(has_ints.tolist()):
            n = int(md[k, ILEN])
            if ops[row_slot[k]] in (MAXDIM, MINDIM, WHERE):     # rewritten by each call
                total += total % (8 // isz)
                self.int_lists.append((total, None, n))
                base.append(np.array([isz * total], np.int64))
                rel.append(np.ones(1, np.uint8))
                total += n * (8 // isz)
            else:
                ints = np.ascontiguousarray(tape.objs[md[k, IOBJ]], np.int64).ravel()
                self.int_lists.append((None, ints, n))
                base.append(np.array([ints.ctypes.data], np.int64))
                rel.append(np.zeros(1, np.uint8))
            md[k, IOBJ] = nrows + j
        self.ptr_base = np.concatenate(base)
        self.ptr_rel = np.concatenate(rel)
        self.nptrs = len(self.ptr_base)
        self.arena_size = max(total, 1)
        self.voff = voff
        # ----- what eager keeps for backward: (consumer, slot) pairs (a keep_all tape
        # also keeps every result's own value: only the ones eager keeps count)
        self.saved_pairs = [(c, s) for c, s, *_ in tape.saved
                            if c != s or NEEDS[ops[c]] & 4]
        self.kept_sources = {int(s): tape.objs[md[row_of[s], YOBJ]]
                             for s in np.nonzero((_FAMILY[ops] == F_SOURCE) & ~scalar)[0]}
        # ----- the kept values' columns point at the rows of the values they keep
        h = heads[row_slot]
        first = h >> SHIFT
        b = rd[3 * row_slot + 1]           # a slot where a value is kept; else a constant
        b = np.where(np.isfinite(b), b, -1.0).astype(np.int64)
        second = np.where((h & CONST_A) != 0, first, b)
        for col, slots in ((AOBJ, first), (BOBJ, second)):
            kept = md[:, col] >= 0
            rows = row_of[slots[kept]]
            assert (rows >= 0).all(), "a kept operand value is an array's"
            md[kept, col] = rows
        md[md[:, YOBJ] >= 0, YOBJ] = np.nonzero(md[:, YOBJ] >= 0)[0]
        # ----- where's condition slots; the second constants of scalar clamps
        self.cond = np.full(max(nrows, 1), -1, np.int64)
        for w, c in tape.conds.items():
            self.cond[row_of[w]] = c
        if (scalar & (ops == CLAMP)).any():
            self.c2s = np.zeros(self.nrec)
            for s, c2 in tape.c2.items():
                self.c2s[s] = c2
        else:
            self.c2s = np.zeros(1)
        # ----- matrix products for NumPy's BLAS: (record, a, b, (batch, n, p, q))
        self.products = [(int(r), int(heads[r]) >> SHIFT, int(rd[3 * r + 1]),
                          tuple(int(d) for d in self.ms[row_of[r], PB:PQ + 1]),
                          bool(heads[r] & BIG))
                         for r in np.nonzero(_FAMILY[ops] == F_MATMUL)[0]]
        self.big = [p for p in self.products if p[4]]
        self.sources = np.nonzero(_FAMILY[ops] == F_SOURCE)[0]
        self.fx = self._rows_of_broadcasts(heads, rd)
        self.fx[:nrows][self.alias, 0] = -1          # nothing to compute: shared values
        self.no_ext = np.full(self.nrec, -1, np.int64)     # no source loads (tests)
        self.no_tab = np.zeros((1, 4), np.int64)
        self.dtypes = tape.dtypes
        self.full = getattr(tape, "full", True)     # the sweep tier its backward needs
        self.multi = dict(tape.multi)

    def _rows_of_broadcasts(self, heads, rd):
        """fx[k] = (kind, outer, inner): a broadcasting binary record seen as rows
        (``replay_kernels._binary_rows``), resolved once here; kind 0: not one of those."""
        fx = np.zeros((max(self.nrows, 1), 3), np.int64)
        two = (_FAMILY[self.ops] == F_BINARY) | ((_FAMILY[self.ops] == F_COMPARE)
                                                 & (self.ops != CASTNG))
        for r in np.nonzero(two & ((heads & SCALAR) == 0))[0].tolist():
            h = int(heads[r])
            a = h >> SHIFT
            if h & CONST_A:
                sa, sb = (), self.shape(a)
            elif h & CONST_B:
                sa, sb = self.shape(a), ()
            else:
                sa, sb = self.shape(a), self.shape(int(rd[3 * r + 1]))
            fx[self.row_of[r]] = _rows(self.shape(r), sa, sb)
        return fx

    # ----- what the kernels read --------------------------------------------------------
    def new_arena(self):
        """A call's arena (uninitialized)."""
        return np.empty(self.arena_size, self.dtype)

    def ints_of(self, arena, j):
        """Int list j: the recording's array, or its place in ``arena``."""
        off, ints, n = self.int_lists[j]
        if ints is not None:
            return ints
        return arena[off:off + n * (8 // self.dtype.itemsize)].view(np.int64)

    def pointers(self, arena, ptrs=None):
        """The data addresses of a call whose arena is ``arena`` (written into ``ptrs``)."""
        place = _PLACE[0]
        if place is None:               # Numba loads at the first call, not at import
            from .replay_call import place
            _PLACE[0] = place
        if ptrs is None:
            ptrs = np.empty(self.nptrs, np.int64)
        place(self.ptr_base, self.ptr_rel, arena, ptrs)
        return ptrs

    def operands(self):
        """The slots every record reads (its operands, cat/stack's parts, where's
        condition), as one array."""
        rq, rd = self.rec.view(np.int64), self.rec.view(np.float64)
        h = rq[0::3]
        fam = _FAMILY[h & OPMASK]
        out = [np.where((fam != F_SOURCE) & ((h & CONST_A) == 0), h >> SHIFT, -1),
               np.where(fam != F_SOURCE, h >> SHIFT, -1)]
        two = np.isin(fam, (F_BINARY, F_MATMUL, F_SETITEM)) | \
            ((fam == F_COMPARE) & ((h & OPMASK) != CASTNG))
        b = rd[1::3]
        b = np.where(np.isfinite(b), b, -1.0).astype(np.int64)
        out.append(np.where(two & ((h & (CONST_A | CONST_B)) == 0), b, -1))
        out.append(self.cond[self.cond >= 0])
        for parts in self.multi.values():
            out.append(np.asarray(parts, np.int64))
        return np.unique(np.concatenate(out))

    def shape(self, slot):
        """The shape of slot's value (() for a scalar record)."""
        k = self.row_of[slot]
        if k < 0:
            return ()
        return tuple(int(d) for d in self.ms[k, SHAPE:SHAPE + self.ms[k, ND]])

    def value(self, arena, rec, slot):
        """Slot's value in a call (a view of its arena, or a scalar's float)."""
        k = self.row_of[slot]
        if k < 0:
            return float(rec.view(np.float64)[3 * slot + 2])
        o = self.voff[k]
        return arena[o:o + self.ms[k, SIZE]].reshape(self.shape(slot))

    def requires(self, sources):
        """Per record: does a gradient from one of the source slots ``sources`` reach it?"""
        from .replay_kernels import requires_of
        req = np.zeros(self.nrec, np.uint8)
        req[list(sources)] = 1
        arena = self.new_arena()
        requires_of(self.rec.view(np.int64), self.rec.view(np.float64), self.md,
                    self.pointers(arena), req)
        return req

    def forward(self, rec, arena, ptrs, start=0, stop=None, blas_min=None):
        """Recomputes records start..stop-1 of a call; matrix products of at least
        ``blas_min`` multiply-adds (default: the BIG ones) in NumPy between segments."""
        from .replay_kernels import forward_sweep, sweep_scratch
        stop = self.nrec if stop is None else stop
        rq, rd = rec.view(np.int64), rec.view(np.float64)
        args = (rq, rd, self.ms, self.msd, self.md, ptrs, self.cond, self.c2s, self.fx,
                self.no_ext, self.no_tab, self.no_tab[0])
        cbuf, ib = sweep_scratch(arena)
        prods = self.big if blas_min is None else \
            [p for p in self.products if p[3][0] * p[3][1] * p[3][2] * p[3][3] >= blas_min]
        lo = start
        for r, a, b, (batch, n, p, q), _ in prods:
            if not start <= r < stop:
                continue
            forward_sweep(*args, lo, r, cbuf, ib)
            y = self.value(arena, rec, r).reshape(batch, n, q)
            xa = self.value(arena, rec, a).reshape(batch, n, p)
            xb = self.value(arena, rec, b).reshape(batch, p, q)
            if self.f32[r] and y.dtype != np.float32:   # float32's product, as eager's
                y[...] = quietly(np.matmul, xa.astype(np.float32), xb.astype(np.float32))
            else:
                quietly(np.matmul, xa, xb, out=y)
            lo = r + 1
        forward_sweep(*args, lo, stop, cbuf, ib)


def _rows(out, sa, sb):
    """(kind, outer, inner) of ``replay_kernels._binary_rows`` for operands of shapes sa, sb
    broadcast to shape out, or (0, 0, 0)."""
    nd = len(out)

    def strides(shape):                 # C strides broadcast to out (0 on broadcast dims)
        st, acc = [0] * nd, 1
        for d in range(nd - 1, -1, -1):
            j = d - (nd - len(shape))
            if j >= 0 and shape[j] != 1:
                st[d] = acc
                acc *= shape[j]
        return st
    ta, tb = strides(sa), strides(sb)
    dims = []                           # (extent, a stride, b stride), size-1 dims dropped
    for d in range(nd):
        if out[d] == 1:
            continue
        if dims and dims[-1][1] == ta[d] * out[d] and dims[-1][2] == tb[d] * out[d]:
            dims[-1] = (dims[-1][0] * out[d], ta[d], tb[d])
        else:
            dims.append((out[d], ta[d], tb[d]))
    if len(dims) == 1:
        n, a, b = dims[0]
        return (5, 1, n) if (a, b) == (1, 0) else (6, 1, n) if (a, b) == (0, 1) else (0, 0, 0)
    if len(dims) == 2:
        (outer, a0, b0), (inner, a1, b1) = dims
        if (a0, a1) == (inner, 1) and (b0, b1) == (0, 1):
            return (1, outer, inner)
        if (a0, a1) == (inner, 1) and (b0, b1) == (1, 0):
            return (2, outer, inner)
        if (a0, a1) == (0, 1) and (b0, b1) == (inner, 1):
            return (3, outer, inner)
        if (a0, a1) == (1, 0) and (b0, b1) == (inner, 1):
            return (4, outer, inner)
    return (0, 0, 0)
