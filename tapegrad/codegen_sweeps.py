"""The generator of ``_generated/sweeps.py``: the reverse sweep in tiers, from one template.

A cold start compiles (once, then Numba's disk cache has it) the sweep of the tier a tape
needs and every kernel that sweep calls, for the tape's dtype. Each tier is the sweep's
loop with the branches of some families only, so that a tape compiles what it runs:

  scalar  a tape of Python-float scalars only (no array record): the inline scalar branch;
  basic   array records only (no scalar record), of ops whose kernels have loops of their
          own (``ops.TIER`` 0: + - *, a few unary ops, sums, products, views): the kernels'
          basic variants, which leave out the per-element switch of every op;
  core    elementwise (all ops), sums, matrix products, views, and scalar records;
  full    core and lanes, gathers, cat/stack, CopySlices.

Each tier has ``sweep_<tier>``, inlined into ``backward_all_<tier>`` (one whole backward in
one call) only, so that LLVM compiles its call tree once; the engine's general path (hooks,
retained grads, links) calls ``sweep`` and ``sweep_full`` themselves. The tiers with array
records are ``jit_light``: their module, the copies of every kernel they call, is not
optimized again at -O3 (half of a cold start's LLVM time).
"""

HEAD = '''@jit_inline_into("backward_all{tier}")
def sweep{tier}(rq, rd, ms, md, ptrs, sg, reach, off, work, start, stop, stage):
    """Accumulates adjoints from record ``start`` down to record ``stop`` (reached ones)."""
    cbuf = zeros(CBUF, sg.dtype)
    for r in range(start, stop - 1, -1):
        if reach[r] == 0:
            continue
        h = rq[3 * r]
        op = h & OPMASK
        fam = FAMILY_OF[op]
        if fam == F_SOURCE:
            if op == LEAF and not stage:
{leaf}            continue
'''
# a source: a 0-d leaf straight to _cell_add (numbers only: see its note), then any leaf
LEAF_SCALAR = """                if h & SCALAR:
                    _cell_add(h, np.int64(rd[3 * r + 1]), sg[r])
                else:
                    _leaf(r, h, rq, rd, ms, md, sg, off, work)
"""
LEAF_ANY = """                _leaf(r, h, rq, rd, ms, md, sg, off, work)
"""
SCALAR = '''        if h & SCALAR:          # Python-float scalars: inline, no array views
            g = sg[r]
            a = h >> SHIFT
            c = rd[3 * r + 1]
            zero = cbuf[7]
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
                    b = np.int64(c)
                    da, db = binary_grad(op, g, x, _f(rd[3 * b + 2], g), out, zero)
                    sg[a] += da
                    sg[b] += db
                    reach[b] = 1
            elif fam == F_UNARY:
                sg[a] += unary_grad(op, g, x, out, c)
            continue
'''
# The strided walk of record r's aux map (sums, views): written out at each of its two uses
# (an inlined helper would add a copy of its IR, and reference counts on its four arrays,
# to each tier's compile).
WALK = '''            a = h >> SHIFT
            if _needs_grad(rq, a):
                k = _row(rd, r)
                _stride_walk(ms[k, AUX_ND], row_part(ms, k, AUX_SHAPE, NDIM),
                             row_part(ms, k, AUX_STR, NDIM), ms[k, AUX_BASE],
                             _adjoint(rq, rd, ms, md, sg, off, work, r),
                             _adjoint(rq, rd, ms, md, sg, off, work, a), {how})
'''
ARRAYS = '''        if fam == F_BINARY:
            _binary{variant}(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_UNARY:
            _unary{variant}(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_REDUCE:   # d/dx sum = 1 (times 1/count for mean), broadcast back
''' + WALK.format(how="GATHER, rd[3 * r + 1]") + '''{lane}        elif fam == F_MATMUL:
            _matmul(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
        elif fam == F_STRIDED:  # a view: scatter the adjoint back to where it came from
''' + WALK.format(how="SCATTER, 1.0") + '''{rest}'''
LANE = """        elif fam == F_LANE:
            _lane(op, r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
"""
REST = """        elif fam == F_GATHER:
            _gather(r, h, rq, rd, ms, md, ptrs, sg, off, work)
        elif fam == F_MULTI:
            _multi(r, rq, rd, ms, md, ptrs, sg, off, work)
        elif fam == F_SETITEM:
            _copyslices(r, h, rq, rd, ms, md, ptrs, sg, off, work)
"""
BACKWARD_ALL = '''

@{jit}
def backward_all{tier}(rec, static, dyn, ids, root, seed, like, freed, check, retain):
    """A whole backward in one call, for the common case (one root; no hooks, links,
    retained or deferred leaves, large products): reach, adjoints, sweep, leaves, and
    marking what it freed (``freed``; ``retain``: nothing). ``check``: the tape was swept
    before (a reached record it freed must raise). Returns the number of records reached,
    or -1 (nothing done) when a reached record was freed before. A tape of scalars only,
    swept for the first time, needs no reach pass: the sweep marks as it goes.
    rec, static, dyn: the tape's bytearrays, viewed here (Tape.arrays' four views cost
    more in Python than the whole call's dispatch)."""
    rq = buffer_array(rec, np.int64, 0)
    rd = buffer_array(rec, np.float64, 0)
    ms = buffer_array(static, np.int64, STATIC_WIDTH)
    md = buffer_array(dyn, np.int64, DYN_WIDTH)
    ptrs = empty(ids.shape[0], np.int64)
    data_pointers(ids, ptrs)
    n = rq.shape[0] // 3
    reach = zeros(n, np.uint8)
    off = empty(ms.shape[0], np.int64)      # empty and loops: no np.full to compile
    for k in range(ms.shape[0]):
        off[k] = M1
    if ms.shape[0] > 0 or check:
        roots = empty(I1, np.int64)
        roots[0] = root
        total = _prepare{prep}(rq, rd, ms, md, ptrs, roots, NO, like.itemsize == 4, reach, off)
        if check:
            for r in range(root + 1):
                if reach[r] and freed[r]:
                    return -1
    else:
        reach[root] = 1
        total = 0
    work = zeros(total, like.dtype)
    sg = zeros(n, like.dtype)
    g = _adjoint(rq, rd, ms, md, sg, off, work, root)
    for i in range(g.shape[0]):
        g[i] += seed[i]
    sweep{tier}(rq, rd, ms, md, ptrs, sg, reach, off, work, root, I0, NO)
    return _mark_freed(rq, reach, root, retain, freed)
'''
# tier: (with the scalar branch, with the array families, kernel variant, lanes, the rest)
TIERS = {"": (True, True, "", "", ""), "_full": (True, True, "", LANE, REST),
         "_basic": (False, True, "_b", "", ""), "_scalar": (True, False, "", "", "")}
IMPORTS = """import numpy as np

from ..kernels import _cell_add, _leaf, _prepare, _prepare_p, data_pointers
from ..kernels_base import _f, empty, jit, jit_inline_into, jit_light, zeros
from ..ptr import buffer_array, row_part
from ..kernels_grads import (_binary, _binary_b, _copyslices, _gather, _lane, _matmul,
                             _multi, _unary, _unary_b)
from ..kernels_tape import (CBUF, FAMILY_OF, GATHER, I0, I1, M1, NDIM, NO, SCATTER,
                            _adjoint, _mark_freed, _needs_grad, _row, _stride_walk)
from ..layout import (AUX_BASE, AUX_ND, AUX_SHAPE, AUX_STR, CONST_A, CONST_B, DYN_WIDTH, OPMASK,
                      SCALAR, SHIFT, STATIC_WIDTH)
from ..ops import (F_BINARY, F_GATHER, F_LANE, F_MATMUL, F_MULTI, F_REDUCE, F_SETITEM,
                   F_SOURCE, F_STRIDED, F_UNARY, LEAF)
from .elementwise import binary_grad, unary_grad

"""


def tier_source(tier):
    """sweep<tier> and backward_all<tier>."""
    scalars, arrays, variant, lane, rest = TIERS[tier]
    text = HEAD.format(tier=tier, leaf=LEAF_SCALAR if scalars else LEAF_ANY)
    if scalars:
        text += SCALAR
    if arrays:
        text += ARRAYS.format(variant=variant, lane=lane, rest=rest)
    # a tier with array records calls a kernel for each family (their loops): its own code
    # dispatches (jit_light); the scalar tier's arithmetic is its own (Numba's -O3)
    # the reach pass of cat/stack records (int lists) in the full tier's _prepare only
    return text.rstrip() + "\n" + BACKWARD_ALL.format(tier=tier, prep="" if rest else "_p",
                                                     jit="jit_light" if arrays else "jit")


def sweeps_source(header):
    """Every tier, core first (the engine's general path calls sweep and sweep_full)."""
    return header + "\n" + IMPORTS + "\n" + "\n\n".join(
        tier_source(t) for t in ("", "_full", "_basic", "_scalar"))
