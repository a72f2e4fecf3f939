"""Numba kernels: the reverse sweep over a tape and the derivative math of every opcode.

``prepare`` finds what the roots reach and gives every reached array record an adjoint:
a slice of one zeroed workspace, or, for a leaf, its persistent grad buffer itself (the
sweep accumulates into ``.grad`` with no scatter step). ``sweep`` then walks records
start, start-1, ..., stop: a reached record adds its adjoint times the local partial
derivatives into its operands' adjoints. Scalar records (``SCALAR`` in the head) take an
inline branch with no array views; array records go through one function per family
(``ops.FAMILY``). A reached leaf adds its adjoint into its grad cell or buffer and marks
it as holding a grad; a leaf ``DEFERRED`` to Python (hooks, a grad the user assigned),
and every leaf when ``stage`` is set (``autograd.grad``), keeps its adjoint for the engine.

Arguments (see ``layout``): rq/rd the records as int64/float64; ms/md the static and
dynamic metadata rows; ptrs the data addresses of the arrays the tape keeps (indexed by
the dynamic rows); sg the adjoints of scalar records; off, work each
array record's adjoint (an offset in the workspace, or -1 for a leaf's grad buffer).
sg and work have the sweep's dtype: float32 for a float32 tape (its gradients are
computed in float32, as PyTorch does), float64 otherwise. No kernel returns an array:
Python allocates them (boxing an array result costs more than the call).
"""
# kernel sources: 4d81a9776f5d76df
import numpy as np

from .layout import (DYN_WIDTH, STATIC_WIDTH, CONST_A, CONST_B,
                     DEFERRED, F32, GADDR, HAS_GRAD, OPMASK, SCALAR,
                     SHIFT, SIZE, STATE_OFFSET)
from .ops import (NEEDS, FAMILY,
                  F_BINARY, F_COMPARE, F_CUSTOM, F_GATHER, F_LANE, F_MATMUL, F_MULTI,
                  F_REDUCE, F_SETITEM,
                  F_SOURCE, F_STRIDED, F_UNARY, LEAF)
from ._generated.elementwise import binary_grad, unary_grad
from .kernels_base import _f, jit
from .ptr import DATA_OFFSET, as_u8_ptr, load_i64, view_f32, view_f64


from .kernels_grads import (_binary, _copyslices, _gather, _lane, _matmul, _multi,
                            _unary)
from .kernels_tape import (_adjoint, _bcast_strides, _int_list, _is_scalar,  # noqa: F401
                           _needs_grad, _row, _saved, _shape, _size, _stride_walk,
                           _walk)


# ----- the sweep ----------------------------------------------------------------------
@jit
def data_pointers(ids, out):
    """The data address of each kept ndarray, read from the objects (ids: their id())."""
    for i in range(ids.shape[0]):
        out[i] = load_i64(ids[i] + DATA_OFFSET)


@jit
def _operands_reach(r, h, rq, rd, md, ptrs, reach):
    """Marks the operands of reached record r that need a gradient."""
    op = h & OPMASK
    fam = FAMILY[op]
    if fam == F_SOURCE or fam == F_COMPARE:
        return
    if fam == F_MULTI:
        ints = _int_list(md, ptrs, _row(rd, r))
        for p in range((ints.shape[0] - 3) // 2):
            s = ints[3 + 2 * p]
            if _needs_grad(rq, s):
                reach[s] = 1
        return
    if fam == F_CUSTOM:          # a Function's output: its inputs are its int list
        ints = _int_list(md, ptrs, _row(rd, r))
        for p in range(ints.shape[0]):
            if _needs_grad(rq, ints[p]):
                reach[ints[p]] = 1
        return
    a = h >> SHIFT
    if _needs_grad(rq, a):
        reach[a] = 1
    if (fam == F_BINARY or fam == F_MATMUL or fam == F_SETITEM) and \
            not (h & (CONST_A | CONST_B)):
        b = int(rd[3 * r + 1])
        if _needs_grad(rq, b):
            reach[b] = 1


@jit
def prepare(rq, rd, ms, md, ptrs, roots, stage, f32, reach, off):
    """Marks in ``reach`` what the roots reach and gives each reached array record its
    adjoint: ``off[k]``, an offset in the workspace (whose size it returns), or -1 for a
    leaf whose grad buffer is its adjoint (unless staged: ``stage``, deferred, or a dtype
    other than the sweep's, ``f32``). Buffers are sized by what a backward reaches."""
    top = -1
    for i in range(roots.shape[0]):
        reach[roots[i]] = 1
        top = max(top, roots[i])
    for r in range(top, -1, -1):
        if reach[r]:
            _operands_reach(r, rq[3 * r], rq, rd, md, ptrs, reach)
    total = 0
    for r in range(top + 1):
        h = rq[3 * r]
        if reach[r] == 0 or h & SCALAR:
            continue
        k = _row(rd, r)
        off[k] = total
        if (h & OPMASK) == LEAF and not stage and ((h & F32) != 0) == f32:
            state = as_u8_ptr(np.int64(rd[3 * r + 1]))
            if not (state[STATE_OFFSET] & DEFERRED):
                off[k] = -1                  # accumulate straight into .grad
                continue
        total += ms[k, SIZE]
    return total


@jit
def _leaf(r, h, rq, rd, ms, md, sg, off, work):
    """A reached leaf: add its adjoint into its grad (a cell, or its buffer when the
    adjoint was staged because of a dtype other than the sweep's) and mark it as holding
    a grad. Deferred leaves are left to the engine."""
    cell = np.int64(rd[3 * r + 1])
    state = as_u8_ptr(cell)
    if state[STATE_OFFSET] & DEFERRED:
        return
    if h & SCALAR:
        if h & F32:
            view_f32(cell, 1)[0] += sg[r]
        else:
            view_f64(cell, 1)[0] += sg[r]
    else:
        k = _row(rd, r)
        o = off[k]
        if o >= 0:                                  # staged: another dtype
            g = work[o:o + ms[k, SIZE]]
            if h & F32:
                buf = view_f32(md[k, GADDR], ms[k, SIZE])
                for i in range(g.shape[0]):
                    buf[i] += g[i]
            else:
                buf64 = view_f64(md[k, GADDR], ms[k, SIZE])
                for i in range(g.shape[0]):
                    buf64[i] += g[i]
    state[STATE_OFFSET] |= HAS_GRAD


@jit
def sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, start, stop, stage):
    """Accumulates adjoints from record ``start`` down to record ``stop`` (reached ones)."""
    cbuf = np.zeros(8, sg.dtype)
    zero = cbuf[7]
    for r in range(start, stop - 1, -1):
        if reach[r] == 0:
            continue
        h = rq[3 * r]
        op = h & OPMASK
        fam = FAMILY[op]
        if fam == F_SOURCE:
            if op == LEAF and not stage:
                _leaf(r, h, rq, rd, ms, md, sg, off, work)
            continue
        if h & SCALAR:          # Python-float scalars: inline, no array views
            g = sg[r]
            a = h >> SHIFT
            c = rd[3 * r + 1]
            # values in the sweep's dtype (a float32 tape computes in float32); the operands
            # are marked reached here (a tape of scalars needs no reach pass before)
            x = _f(rd[3 * a + 2], g)
            out = _f(rd[3 * r + 2], g)
            reach[a] = 1
            if fam == F_BINARY:
                if h & CONST_B:
                    da, db = binary_grad(op, g, x, _f(c, g), out, zero)
                    sg[a] += da
                elif h & CONST_A:
                    da, db = binary_grad(op, g, _f(c, g), x, out, zero)
                    sg[a] += db
                else:
                    b = int(c)
                    da, db = binary_grad(op, g, x, _f(rd[3 * b + 2], g), out, zero)
                    sg[a] += da
                    sg[b] += db
                    reach[b] = 1
            elif fam == F_UNARY:
                sg[a] += unary_grad(op, g, x, out, c)
            continue
        if fam == F_BINARY:
            _binary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_UNARY:
            _unary(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_REDUCE:   # d/dx sum = 1 (times 1/count for mean), broadcast back
            a = h >> SHIFT
            if _needs_grad(rq, a):
                _walk(ms, _row(rd, r), _adjoint(rq, rd, ms, md, sg, off, work, r),
                      _adjoint(rq, rd, ms, md, sg, off, work, a), False, rd[3 * r + 1])
        elif fam == F_LANE:
            _lane(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_MATMUL:
            _matmul(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_STRIDED:  # a view: scatter the adjoint back to where it came from
            a = h >> SHIFT
            if _needs_grad(rq, a):
                _walk(ms, _row(rd, r), _adjoint(rq, rd, ms, md, sg, off, work, r),
                      _adjoint(rq, rd, ms, md, sg, off, work, a), True, 1.0)
        elif fam == F_GATHER:
            _gather(r, h, rq, rd, ms, md, ptrs, sg, off, work)
        elif fam == F_MULTI:
            _multi(r, rq, rd, ms, md, ptrs, sg, off, work)
        elif fam == F_SETITEM:
            _copyslices(r, h, rq, rd, ms, md, ptrs, sg, off, work)


@jit
def backward_all(rec, static, dyn, ids, root, seed, like, freed, check, retain):
    """A whole backward in one call, for the common case (one root; no hooks, links,
    retained or deferred leaves, large products): reach, adjoints, sweep, leaves, and
    marking what it freed (``freed``; ``retain``: nothing). ``check``: the tape was swept
    before (a reached record it freed must raise). Returns the number of records reached,
    or -1 (nothing done) when a reached record was freed before. A tape of scalars only,
    swept for the first time, needs no reach pass: the sweep marks as it goes."""
    rq = rec.view(np.int64)
    rd = rec.view(np.float64)
    ms = static.reshape(-1, STATIC_WIDTH)
    md = dyn.reshape(-1, DYN_WIDTH)
    ptrs = np.empty(ids.shape[0], np.int64)
    data_pointers(ids, ptrs)
    n = rq.shape[0] // 3
    reach = np.zeros(n, np.uint8)
    off = np.full(ms.shape[0], -1, np.int64)
    if ms.shape[0] > 0 or check:
        roots = np.full(1, root, np.int64)
        total = prepare(rq, rd, ms, md, ptrs, roots, False, like.itemsize == 4, reach, off)
        if check:
            for r in range(root + 1):
                if reach[r] and freed[r]:
                    return -1
    else:
        reach[root] = 1
        total = 0
    work = np.zeros(total, like.dtype)
    sg = np.zeros(n, like.dtype)
    g = _adjoint(rq, rd, ms, md, sg, off, work, root)
    for i in range(g.shape[0]):
        g[i] += seed[i]
    sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, root, 0, False)
    count = 0
    for r in range(root + 1):
        if reach[r]:
            count += 1
            if not retain and NEEDS[rq[3 * r] & OPMASK] != 0:
                freed[r] = 1
    return count
