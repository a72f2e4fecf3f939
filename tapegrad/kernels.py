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
# kernel sources: 9886e3edf5a112e2
import numpy as np

from .layout import (DYN_WIDTH, STATIC_WIDTH, CONST_A, CONST_B,
                     DEFERRED, F32, GADDR, HAS_GRAD, OPMASK, SCALAR,
                     SHIFT, SIZE, STATE_OFFSET)
from .ops import (F_BINARY, F_COMPARE, F_CUSTOM, F_GATHER, F_LANE, F_MATMUL, F_MULTI,
                  F_REDUCE, F_SETITEM,
                  F_SOURCE, F_STRIDED, F_UNARY, LEAF)
from ._generated.elementwise import binary_grad, unary_grad
from .kernels_base import _f, jit, jit_inline, jit_internal
from .ptr import DATA_OFFSET, as_u8_ptr, load_i64, view_f32, view_f64


from .kernels_tape import (FAMILY_OF, I1, _adjoint, _bcast_strides, _int_list,  # noqa: F401
                           _is_scalar, _needs_grad, _row, _saved, _shape, _size,
                           _stride_walk)


# ----- the sweep ----------------------------------------------------------------------
@jit_inline
def data_pointers(ids, out):
    """The data address of each kept ndarray, read from the objects (ids: their id())."""
    for i in range(ids.shape[0]):
        out[i] = load_i64(ids[i] + DATA_OFFSET)


def _operands_reach_kernel(general):
    def _operands_reach(r, h, rq, rd, md, ptrs, reach):
        """Marks the operands of reached record r that need a gradient."""
        op = h & OPMASK
        fam = FAMILY_OF[op]
        if fam == F_SOURCE or fam == F_COMPARE:
            return
        if general:                  # (pruned before typing in the plain variant)
            if fam == F_MULTI:
                ints = _int_list(md, ptrs, _row(rd, r))
                for p in range((ints.shape[0] - 3) // 2):
                    s = ints[3 + 2 * p]
                    if _needs_grad(rq, s):
                        reach[s] = 1
                return
            if fam == F_CUSTOM:      # a Function's output: its inputs are its int list
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
            b = np.int64(rd[3 * r + 1])
            if _needs_grad(rq, b):
                reach[b] = 1
    _operands_reach.__name__ = _operands_reach.__qualname__ = \
        "_operands_reach" if general else "_operands_reach_p"
    return jit_inline(_operands_reach)


def _prepare_kernel(general):
    """``_prepare`` in two variants, as the elementwise kernels (kernels_grads.py): general
    (cat/stack records, whose operands are an int list, and custom Functions' outputs), and
    plain, for the one-call backwards of tapes that hold neither (all tiers but full):
    their cold start compiles no int-list reads. (Its one closure variable is ``general``:
    Numba's disk cache keys a closure by its variables pickled, and a dispatcher pickles
    differently in each process.)"""

    def _prepare(rq, rd, ms, md, ptrs, roots, stage, f32, reach, off):
        """Marks in ``reach`` what the roots reach and gives each reached array record its
        adjoint: ``off[k]``, an offset in the workspace (whose size it returns), or -1 for
        a leaf whose grad buffer is its adjoint (unless staged: ``stage``, deferred, or a
        dtype other than the sweep's, ``f32``). Buffers are sized by what a backward
        reaches."""
        top = -1
        for i in range(roots.shape[0]):
            reach[roots[i]] = 1
            if roots[i] > top:               # (no max(): an overload compiled of its own)
                top = roots[i]
        for r in range(top, -1, -1):
            if reach[r] and general:
                _operands_reach(r, rq[3 * r], rq, rd, md, ptrs, reach)
            elif reach[r]:
                _operands_reach_p(r, rq[3 * r], rq, rd, md, ptrs, reach)
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
    _prepare.__name__ = _prepare.__qualname__ = "_prepare" if general else "_prepare_p"
    return jit_internal(_prepare)


_operands_reach, _operands_reach_p = _operands_reach_kernel(True), _operands_reach_kernel(False)
_prepare, _prepare_p = _prepare_kernel(True), _prepare_kernel(False)


@jit
def prepare(rq, rd, ms, md, ptrs, roots, stage, f32, reach, off):
    """``_prepare``, for Python (the engine's general path). The one-call backwards call
    ``_prepare`` itself: a kernel Python can call carries a wrapper that unboxes each
    argument, compiled with it (a tenth of a cold start's ``prepare``)."""
    return _prepare(rq, rd, ms, md, ptrs, roots, stage, f32, reach, off)


@jit_inline
def _cell_add(h, cell, g):
    """A reached 0-d leaf of head h: add its adjoint g into its grad cell (address
    ``cell``; float32 for an F32 record) and mark it as holding a grad. Deferred leaves are
    left to the engine. Numbers in, none out: each array argument of an inlined helper
    costs the sweep an atomic incref and decref per call (NRT), twice the rest of a leaf."""
    state = as_u8_ptr(cell)
    if state[STATE_OFFSET] & DEFERRED:
        return
    if h & F32:
        view_f32(cell, I1)[0] += g
    else:
        view_f64(cell, I1)[0] += g
    state[STATE_OFFSET] |= HAS_GRAD


@jit_inline
def _leaf(r, h, rq, rd, ms, md, sg, off, work):
    """A reached leaf: add its adjoint into its grad (a cell, or its buffer when the
    adjoint was staged because of a dtype other than the sweep's) and mark it as holding
    a grad. Deferred leaves are left to the engine. (The sweeps call ``_cell_add`` for a
    0-d leaf themselves: see its note.)"""
    cell = np.int64(rd[3 * r + 1])
    if h & SCALAR:
        _cell_add(h, cell, sg[r])
        return
    state = as_u8_ptr(cell)
    if state[STATE_OFFSET] & DEFERRED:
        return
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
