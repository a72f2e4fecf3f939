"""Numba kernels: reading a tape (see layout.py): a record's metadata row, shape and size,
the adjoint and the saved values of a slot, a record's int list, strided walks (the sweeps
walk a record's aux map, ptr.row_part of its metadata row), and what a whole backward marks
freed."""
# kernel sources: 9886e3edf5a112e2
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .layout import (AOBJ, BOBJ, GADDR, ILEN, IOBJ, ND, OPMASK, SCALAR, SHAPE, SIZE, YOBJ)
from .ops import (CONST, FAMILY, MAXD, NEEDS)
from .kernels_base import empty, jit_inline, jit_internal, zeros
from .ptr import view, view_i64

# Arguments of a fixed type: a Python literal (0, True) passed to a jitted function is
# typed Literal[int](0) or Literal[bool](True), and Numba compiles the callee once per
# distinct literal. These are plain int64 and bool, so each kernel has one signature.
I0, I1, I2 = np.int64(0), np.int64(1), np.int64(2)
COL_A, COL_B, COL_Y = np.int64(AOBJ), np.int64(BOBJ), np.int64(YOBJ)
SCATTER, GATHER = np.bool_(True), np.bool_(False)
NO = np.bool_(False)
NDIM, M1, CBUF = np.int64(MAXD), np.int64(-1), np.int64(8)

# The per-opcode tables of ops.py as constant arrays: a global tuple indexed at run time
# lowers to a switch over all its entries (some 400 lines of LLVM IR for each lookup, built,
# optimized and compiled on a cold start); an array, to one load.
FAMILY_OF = np.array(FAMILY, np.int64)
NEEDS_OF = np.array(NEEDS, np.int64)


# ----- reading the tape ---------------------------------------------------------------
# The smallest readers, emitted as LLVM where they are called (intrinsics): each is called
# at several places of one tier's kernels, and inlined as Numba IR each site cost its IR's
# copy, typing, and a reference count taken and dropped on each array passed; here, a
# multiply-add, a load and a compare (and a loop, for _shape). The records are written by
# the tape and read in bounds (as the IR versions read them: without wraparound, as s >= 0
# there).
def _at(context, builder, aryty, ary, s, times=1, plus=0, *more):
    """The element ``[times * s + plus, *more]`` of array ``ary`` (an int64 s)."""
    i = builder.add(builder.mul(s, s.type(times)), s.type(plus))
    a = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, a, [i, *more], wraparound=False)


def _load(context, builder, aryty, ary, s, times=1, plus=0, *more):
    return builder.load(_at(context, builder, aryty, ary, s, times, plus, *more))


def _if_array_slot(context, builder, sig, args, body):
    """body(k) where slot s = args[3] is an array record (s >= 0, not a scalar's), k its
    metadata row (args: rq, rd, ms, s, ...)."""
    s = args[3]
    with builder.if_then(builder.icmp_signed(">=", s, s.type(0))):
        h = _load(context, builder, sig.args[0], args[0], s, 3, 0)
        with builder.if_then(builder.icmp_unsigned("==", builder.and_(h, h.type(SCALAR)),
                                                   h.type(0))):
            body(context.cast(builder, _load(context, builder, sig.args[1], args[1], s, 3, 2),
                              sig.args[1].dtype, types.int64))


def _vector(ary):
    return isinstance(ary, types.Array) and ary.ndim == 1


@intrinsic
def _row(typingctx, rd, s):
    """The metadata row of array record s: rd[3 s + 2] as int64."""
    if not _vector(rd):
        return None

    def codegen(context, builder, sig, args):
        return context.cast(builder, _load(context, builder, rd, args[0], args[1], 3, 2),
                            rd.dtype, types.int64)
    return types.int64(rd, types.int64), codegen


@intrinsic
def _is_scalar(typingctx, rq, s):
    """Is slot s a Python-float scalar record: rq[3 s] & SCALAR."""
    if not _vector(rq):
        return None

    def codegen(context, builder, sig, args):
        h = _load(context, builder, rq, args[0], args[1], 3, 0)
        return builder.icmp_unsigned("!=", builder.and_(h, h.type(SCALAR)), h.type(0))
    return types.boolean(rq, types.int64), codegen


@intrinsic
def _needs_grad(typingctx, rq, s):
    """False for Python constants (s < 0) and tensors recorded as constants:
    s >= 0 and (rq[3 s] & OPMASK) != CONST."""
    if not _vector(rq):
        return None

    def codegen(context, builder, sig, args):
        out = cgutils.alloca_once_value(builder, cgutils.false_bit)
        with builder.if_then(builder.icmp_signed(">=", args[1], args[1].type(0))):
            h = _load(context, builder, rq, args[0], args[1], 3, 0)
            builder.store(builder.icmp_unsigned("!=", builder.and_(h, h.type(OPMASK)),
                                                h.type(CONST)), out)
        return builder.load(out)
    return types.boolean(rq, types.int64), codegen


@intrinsic
def _size(typingctx, rq, rd, ms, s):
    """Number of elements of operand slot s (1 for scalars and Python constants)."""
    if not (_vector(rq) and _vector(rd) and isinstance(ms, types.Array)):
        return None

    def codegen(context, builder, sig, args):
        out = cgutils.alloca_once_value(builder, context.get_constant(types.int64, 1))
        _if_array_slot(context, builder, sig, args, lambda k: builder.store(
            _load(context, builder, sig.args[2], args[2], k, 1, 0, k.type(SIZE)), out))
        return builder.load(out)
    return types.int64(rq, rd, ms, types.int64), codegen


@intrinsic
def _shape(typingctx, rq, rd, ms, s, out):
    """Writes the shape of slot s into out; returns its ndim (0 for scalars, constants)."""
    if not (_vector(rq) and _vector(rd) and isinstance(ms, types.Array) and _vector(out)):
        return None

    def codegen(context, builder, sig, args):
        nd = cgutils.alloca_once_value(builder, context.get_constant(types.int64, 0))

        def body(k):
            n = _load(context, builder, sig.args[2], args[2], k, 1, 0, k.type(ND))
            builder.store(n, nd)
            with cgutils.for_range(builder, n) as loop:
                d = loop.index
                builder.store(_load(context, builder, sig.args[2], args[2], k, 1, 0,
                                    builder.add(d, d.type(SHAPE))),
                              _at(context, builder, sig.args[4], args[4], d))
        _if_array_slot(context, builder, sig, args, body)
        return builder.load(nd)
    return types.int64(rq, rd, ms, types.int64, out), codegen


@jit_internal
def _adjoint(rq, rd, ms, md, sg, off, work, s):
    """The flat adjoint of slot s: a cell of sg, a slice of the workspace, or (a leaf's,
    ``off`` -1) its grad buffer itself."""
    if _is_scalar(rq, s):
        return sg[s:s + 1]
    k = _row(rd, s)
    o = off[k]
    if o >= 0:
        return work[o:o + ms[k, SIZE]]
    return view(md[k, GADDR], ms[k, SIZE], work)


@jit_internal
def _saved(rq, rd, ms, md, ptrs, r, col, s, cbuf, i):
    """The value of slot s that record r saved in column col (AOBJ, BOBJ, YOBJ) of its
    dynamic row: a view of the kept array; a scalar's value from its record (through
    cbuf[i]); empty when r did not keep it."""
    if s < 0:
        return cbuf[i:i]
    if _is_scalar(rq, s):
        cbuf[i] = rd[3 * s + 2]
        return cbuf[i:i + 1]
    idx = md[_row(rd, r), col]
    if idx < 0:
        return cbuf[i:i]
    return view(ptrs[idx], ms[_row(rd, s), SIZE], cbuf)


@jit_inline
def _int_list(md, ptrs, r_row):
    """The int64 list (indices, operand slots, a condition) of the record with metadata
    row r_row."""
    return view_i64(ptrs[md[r_row, IOBJ]], md[r_row, ILEN])


@jit_inline
def _bcast_strides(shape, nd, out_nd, strides):
    """C strides of an array of shape[:nd] broadcast to out_nd dims (0 on broadcast dims)."""
    acc = 1
    for d in range(out_nd - 1, -1, -1):
        j = d - (out_nd - nd)
        if j < 0 or shape[j] == 1:
            strides[d] = 0
        else:
            strides[d] = acc
            acc *= shape[j]


@jit_internal
def _stride_walk(nd, shape, strides, base, g, ga, scatter, scale):
    """Walks ``shape`` in C order, element i at offset o = base + sum(idx * strides):
    ga[o] += scale * g[i] (scatter) or ga[i] += scale * g[o] (gather)."""
    n = g.shape[0] if scatter else ga.shape[0]
    if n == 0:
        return
    if nd == 0:
        if scatter:
            ga[base] += scale * g[0]
        else:
            ga[0] += scale * g[base]
        return
    if not scatter:
        flat = True
        for d in range(nd):
            flat = flat and strides[d] == 0
        if flat:                 # a full reduction: every element gets the same share
            s = scale * g[base]
            for i in range(n):
                ga[i] += s
            return
    # The walk's own dims: size-1 dims dropped, and a dim merged into the next when the
    # two walk as one (stride[d] == stride[d + 1] * shape[d + 1]): fewer, longer rows
    # (a (100, 32) array walked whole is one row of 3,200; a (100, 1) one, one of 100).
    w = zeros(3 * NDIM, np.int64)       # its shape, strides, and index
    m = 0
    for d in range(nd):
        if shape[d] == 1:
            continue
        if m > 0 and w[NDIM + m - 1] == strides[d] * shape[d]:
            w[m - 1] *= shape[d]
            w[NDIM + m - 1] = strides[d]
        else:
            w[m] = shape[d]
            w[NDIM + m] = strides[d]
            m += 1
    if m == 0:                              # one element
        w[0] = 1
        m = 1
    shape = w[0:NDIM]
    strides = w[NDIM:2 * NDIM]
    idx = w[2 * NDIM:3 * NDIM]
    nd = m
    inner = shape[nd - 1]
    si = strides[nd - 1]
    o = base
    i = 0
    # rows of the last dim: contiguous ones as views of their own (vectorized), a sum
    # along a broadcast one (si = 0) in a one-value buffer (a register; ga's element type,
    # so each step rounds as ga[o] += ... does); 2.5-4x faster than one loop for all
    acc = empty(1, ga.dtype)
    sd, ss = (si, 1) if scatter else (1, si)       # strides of ga's and g's rows
    for _ in range(n // inner):
        d0, s0 = (o, i) if scatter else (i, o)     # where ga's and g's rows start
        if si == 1:                 # unsigned indices: no wraparound test, so the loop
            a0 = np.uint64(d0)         # vectorizes with no view of a row (a view costs
            u0 = np.uint64(s0)         # a reference count, 100 rows of a bias's grad 2 us)
            for u in range(np.uint64(inner)):
                ga[a0 + u] += scale * g[u0 + u]
        elif scatter and si == 0:
            acc[0] = ga[o]
            for j in range(inner):
                acc[0] += scale * g[i + j]
            ga[o] = acc[0]
        else:
            for j in range(inner):
                ga[d0 + j * sd] += scale * g[s0 + j * ss]
        i += inner
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            o += strides[d]
            if idx[d] < shape[d]:
                break
            o -= strides[d] * idx[d]
            idx[d] = 0
            d -= 1


@jit_internal
def _mark_freed(rq, reach, root, retain, freed):
    """The end of a whole backward from ``root``: the number of records it reached; without
    retain_graph, those whose backward read saved values are marked freed."""
    count = 0
    for r in range(root + 1):
        if reach[r]:
            count += 1
            if not retain and NEEDS_OF[rq[3 * r] & OPMASK] != 0:
                freed[r] = 1
    return count
