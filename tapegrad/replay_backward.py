"""Numba: the reverse sweep of a replayed backward, with the hot records done by loops
shaped for them, the rest by the core sweep (``kernels.sweep``) in stretches.

The recording resolved what the core sweep works out at each record: a broadcast as rows
(``Program.fx``), a product's sizes (its static row). Here that becomes loops over plain
rows, each row a view of its own (so that LLVM vectorizes it: with offsets into the whole
arrays it cannot tell that they do not overlap), sums kept in arrays of the function's own:

- ``+``/``-`` with one operand broadcast: the full operand gets the adjoint, the other its
  sum over the broadcast rows or columns (d(a + b)/db = 1 on each element b reaches).

- a BLAS-sized matrix product (BIG), which eager's backward hands to products.py: the
  same np.matmul, by NumPy's matmul loop (``numpy_loops``), so the gradients are eager's.

Everything else goes to ``kernels.sweep`` (the derivative math lives there once), called
for each stretch of records between two done here: smaller products too, with eager's
own loops.
"""
# kernel sources: 9886e3edf5a112e2
import numpy as np

from ._generated.sweeps import sweep_full as sweep, sweep_scalar
from .kernels import prepare
from .kernels_base import jit
from .kernels_tape import _adjoint, _mark_freed, _needs_grad
from .layout import BIG, CONST_A, CONST_B, OPMASK, PB, PN, PP, PQ, SCALAR, SHIFT
from .numpy_loops import U_MATMUL, _call_matmul
from .ops import ADD, FAMILY, F_BINARY, F_MATMUL, SUB
from .replay_kernels import _val


@jit
def reverse(rq, rd, ms, md, ptrs, fx, sg, reach, off, work, start, cbuf):
    """The reverse sweep from record start down to 0 over what ``reach`` marks (leaves
    staged: the caller adds them into their grads); sg, work and cbuf (scratch,
    ``replay_kernels.sweep_scratch``) in the arena's element type."""
    top = start
    for r in range(start, -1, -1):
        if reach[r] == 0:
            continue
        h = rq[3 * r]
        if h & SCALAR:
            continue
        op = h & OPMASK
        fam = FAMILY[op]
        if fam == F_BINARY and (op == ADD or op == SUB) and not (h & (CONST_A | CONST_B)) \
                and fx[int(rd[3 * r + 2]), 0] != 0:
            if top > r:
                sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, top, r + 1, True)
            _add_rows(op, r, h, rq, rd, ms, md, fx, sg, off, work)
            top = r - 1
        elif fam == F_MATMUL and h & BIG:     # eager's products.py, in the jitted sweep
            if top > r:
                sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, top, r + 1, True)
            _big_product(r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf)
            top = r - 1
    if top >= 0:
        sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, top, 0, True)


@jit
def _add_rows(op, r, h, rq, rd, ms, md, fx, sg, off, work):
    """z = a +- b broadcast as rows (fx kinds 1-6, ``replay_kernels._binary_rows``): the
    full operand gets g, the broadcast one g summed over what it was spread on."""
    a = h >> SHIFT
    b = int(rd[3 * r + 1])
    k = int(rd[3 * r + 2])
    kind, outer, inner = fx[k, 0], fx[k, 1], fx[k, 2]
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    sign = 1.0 if op == ADD else -1.0
    full, part = (a, b) if kind in (1, 2, 5) else (b, a)
    sf = 1.0 if full == a else sign
    sp = sign if part == b else 1.0
    if _needs_grad(rq, full):
        gf = _adjoint(rq, rd, ms, md, sg, off, work, full)
        if gf.ctypes.data == g.ctypes.data:
            pass                    # its adjoint is g itself (replay_alias: z its one reader)
        elif sf == 1.0:             # one flat loop: the full operand is laid out as g
            for m in range(outer * inner):
                gf[m] += g[m]
        else:
            for m in range(outer * inner):
                gf[m] -= g[m]
    if not _needs_grad(rq, part):
        return
    gp = _adjoint(rq, rd, ms, md, sg, off, work, part)
    # g's values added into the part one by one in g's order, in the arena's type: as the
    # core sweep (and so eager's backward) adds them, to the bit
    if kind == 1 or kind == 3:          # the part is one row: each row of g added in
        for i in range(outer):
            gr = g[i * inner:(i + 1) * inner]
            for j in range(inner):
                gp[j] += sp * gr[j]
    elif kind == 2 or kind == 4:        # one value per row: the row's values added in
        for i in range(outer):
            gr = g[i * inner:(i + 1) * inner]
            for j in range(inner):
                gp[i] += sp * gr[j]
    else:                               # one value: every value added in
        for i in range(g.shape[0]):
            gp[0] += sp * g[i]


@jit
def _big_product(r, h, rq, rd, ms, md, ptrs, sg, off, work, cbuf):
    """A BLAS-sized product (BIG: eager's backward stops its sweep there for products.py):
    ga += g b^T and gb += a^T g, batch by batch, as products.py computes them."""
    a = h >> SHIFT
    b = int(rd[3 * r + 1])
    k = int(rd[3 * r + 2])
    batch, n, p, q = ms[k, PB], ms[k, PN], ms[k, PP], ms[k, PQ]
    g = _adjoint(rq, rd, ms, md, sg, off, work, r)
    if _needs_grad(rq, a):
        ga = _adjoint(rq, rd, ms, md, sg, off, work, a)
        xb = _val(rq, rd, ms, ptrs, b, cbuf[3:4])
        for t in range(batch):
            _big_ga(g, xb, ga, t * n * q, t * p * q, t * n * p, n, p, q)
    if _needs_grad(rq, b):
        gb = _adjoint(rq, rd, ms, md, sg, off, work, b)
        xa = _val(rq, rd, ms, ptrs, a, cbuf[2:3])
        for t in range(batch):
            _big_gb(g, xa, gb, t * n * q, t * n * p, t * p * q, n, p, q)


@jit
def _big_ga(g, b, ga, og, ob, oa, n, p, q):
    """ga (n, p) += g (n, q) b (p, q)^T as products.py computes it (np.matmul of g and b's
    transposed view, then added): NumPy's matmul loop with those arrays' steps, in the
    arena's type (b copied into it, as NumPy casts a float32 b for a float64 g)."""
    s = g.itemsize
    bc = np.empty(p * q, g.dtype)
    for i in range(p * q):
        bc[i] = b[ob + i]
    t = np.empty(n * p, g.dtype)
    _call_matmul(2 * U_MATMUL + (1 if s == 8 else 0), n, q, p, g[og:], bc, t,
                 q * s, s, s, q * s, p * s, s)
    for i in range(n * p):
        ga[oa + i] += t[i]


@jit
def _big_gb(g, a, gb, og, oa, ob, n, p, q):
    """gb (p, q) += a (n, p)^T g (n, q) as products.py computes it (see _big_ga)."""
    s = g.itemsize
    ac = np.empty(n * p, g.dtype)
    for i in range(n * p):
        ac[i] = a[oa + i]
    t = np.empty(p * q, g.dtype)
    _call_matmul(2 * U_MATMUL + (1 if s == 8 else 0), p, n, q, ac, g[og:], t,
                 s, p * s, q * s, s, q * s, s)
    for i in range(p * q):
        gb[ob + i] += t[i]


@jit
def backward_all_at(rq, rd, ms, md, ptrs, root, seed, like, freed, check, retain):
    """A replayed call's output's whole backward in one call (``_generated.sweeps``'s
    ``backward_all`` with the data addresses given: the call's arena): reach, adjoints,
    the sweep, leaves, and marking what it freed. Returns the number of records reached,
    or -1 (nothing done) when a reached record was freed before."""
    n = rq.shape[0] // 3
    reach = np.zeros(n, np.uint8)
    off = np.full(ms.shape[0], -1, np.int64)
    roots = np.full(1, root, np.int64)
    total = prepare(rq, rd, ms, md, ptrs, roots, False, like.itemsize == 4, reach, off)
    if check:
        for r in range(root + 1):
            if reach[r] and freed[r]:
                return -1
    work = np.zeros(total, like.dtype)
    sg = np.zeros(n, like.dtype)
    g = _adjoint(rq, rd, ms, md, sg, off, work, root)
    for i in range(g.shape[0]):
        g[i] += seed[i]
    sweep(rq, rd, ms, md, ptrs, sg, reach, off, work, root, 0, False)
    return _mark_freed(rq, reach, root, retain, freed)


@jit
def backward_scalars_at(rq, rd, ms, md, ptrs, root, seed, like, freed, check, retain):
    """``backward_all_at`` for a call of scalar records only (no array record): the scalar
    tier's sweep, the one eager tapes of scalars take (``backward_all_scalar``), which marks
    what it reaches as it goes and adds each 0-d leaf's adjoint into its grad cell. The
    general sweep costs such a tape about six times as much. A reach pass runs only to
    check a second backward."""
    n = rq.shape[0] // 3
    reach = np.zeros(n, np.uint8)
    off = np.empty(0, np.int64)
    if check:
        roots = np.full(1, root, np.int64)
        prepare(rq, rd, ms, md, ptrs, roots, False, like.itemsize == 4, reach, off)
        for r in range(root + 1):
            if reach[r] and freed[r]:
                return -1
    else:
        reach[root] = 1
    work = np.zeros(0, like.dtype)
    sg = np.zeros(n, like.dtype)
    sg[root] += seed[0]
    sweep_scalar(rq, rd, ms, md, ptrs, sg, reach, off, work, root, 0, False)
    return _mark_freed(rq, reach, root, retain, freed)
