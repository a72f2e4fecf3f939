"""Numba kernels: the forward replay sweep, which recomputes every record's value.

A recorded tape is a complete program: ``forward_sweep`` walks records start, start+1, ...,
stop-1 and writes each one's value from the values of its operands, so that a tape
recorded once (``tg.compile``) runs again at new input values with no Python per op. It
reads the tape in the layout the reverse sweep reads (``layout``: rq/rd the records, ms the
static rows, md the dynamic rows) and one table of data addresses, ``ptrs``, laid out by
``replay_program``: ``ptrs[k]`` is where array row k's value lives (the replay's arena),
``ptrs[md[k, IOBJ]]`` its int list. A scalar record's value is the ``v`` field of
its record (``rd[3r + 2]``), written in place.

Records of Python-float scalars take one inline branch (``value_of``); array records go
through one function per family (``ops.FAMILY``). Matrix products run in plain loops here;
``replay_program`` hands the large ones (``BIG``) to NumPy between sweep segments.

Preconditions (a program built from a ``keep_all`` recording meets them): every source's
value (leaves, constants, links) is in place, which the sweep does not touch; every array
record has its value's place. The int lists of gathers, cat/stack and CopySlices are
constants of the recording; max(dim)/min(dim) rewrite theirs (the new arg-extremes, which
the reverse sweep reads) and where rewrites its condition list from the condition's slot
(``cond[k]``).

The arena's element type is float32 for a recording of float32 values only, float64
otherwise (``Program.dtype``); the kernels see it as that of ``cbuf`` (``sweep_scratch``).
In a float64 arena a record of a float32 result is rounded to float32 after it is
computed, as the eager float32 operation rounds its result; a float32 arena rounds as it
stores. Reductions run NumPy's own loops in eager's dtype (``reduce_like``).
"""
# kernel sources: 9886e3edf5a112e2
import numpy as np

from numba import njit

from .kernels_base import jit, jit_internal
from .kernels_grads import _lane_index
from .kernels_tape import _stride_walk
from .layout import (AUX_BASE, AUX_ND, AUX_SHAPE, AUX_STR, CONST_A, CONST_B, F32, OPMASK,
                     PB, PN, PP, PQ, SCALAR, SHIFT, SIZE)
from .ops import (AMAX, AMIN, ASSTRIDED, BMM, CASTNG, CAT, CLAMP, COPYSLICES, DOT, EQ, EXPAND,
                  FAMILY, F_BINARY, F_COMPARE, F_GATHER, F_LANE, F_MATMUL, F_MULTI, F_REDUCE,
                  F_SETITEM, F_SOURCE, F_STRIDED, F_UNARY, GATHER, GE, GT, INDEX, INDEXSELECT,
                  LE, LOGSOFTMAX, LOGSUMEXP, LT, MAXALL, MAXD, MAXDIM, MEAN, MEANDIM, MINALL,
                  MINDIM, MM, MV, NE, NORM, NUM_OPS, PERMUTE, PROD, PRODDIM, ROUNDDEC, SELECT,
                  SLICE, SOFTMAX, SQUEEZE, SQUEEZEDIM, STACK, STD, SUM, SUMDIM, T, TRANSPOSE,
                  UNSQUEEZE, VAR, VIEW)
from .ptr import view, view_f64
from .numpy_loops import (U_ADD, U_EXP, U_LOG, U_MATMUL, U_MAX, U_MIN, U_MUL, U_POW,
                          _call_loop, _call_matmul)
from .replay_elementwise import _binary, _ints, _unary, _val, round_decimals, value_of
from .replay_ptr import _copy

# Every opcode the sweep recomputes (sources, LEAF/CONST/LINK, are the caller's): every
# elementwise row, through the per-element switches written from the table (value_of; a
# row with no branch traps), and the rows listed; the test of the table holds this list
# and the table in step.
ALL_FORWARD_OPCODES = tuple(op for op in range(NUM_OPS) if FAMILY[op] in (F_BINARY, F_UNARY)) + (
    SUM, SUMDIM, MEAN, MEANDIM,
    MAXALL, MINALL, AMAX, AMIN, PROD, PRODDIM, VAR, STD, NORM, LOGSUMEXP, SOFTMAX, LOGSOFTMAX,
    MM, BMM, DOT, MV,
    SELECT, SLICE, UNSQUEEZE, SQUEEZE, SQUEEZEDIM, VIEW, T, PERMUTE, TRANSPOSE, EXPAND, ASSTRIDED,
    INDEX, INDEXSELECT, GATHER, MAXDIM, MINDIM,
    CAT, STACK,
    COPYSLICES,
    GT, LT, GE, LE, EQ, NE, CASTNG,
)


# ----- reductions, views and gathers --------------------------------------------------
# Every sum, product, max and min (and the exp, log and power inside logsumexp, softmax and
# norm) runs NumPy's own loop (numpy_loops) the way NumPy's reduce runs it, so that a
# replayed reduction equals eager's to the bit: x (C order) walked in its dims, size-1
# dims dropped and neighbours alike (both reduced or both kept) merged; the innermost dim
# reduced, one call of the loop per lane in reduce mode (steps 0, s, 0: add's pairwise
# summation), else one elementwise call per row (out += row: lanes summed row by row);
# out starts at the identity (0 for add, 1 for multiply) or, for max and min, at each
# lane's first element, which a single reduced dim then skips.
@jit_internal
def reduce_like(u, x, out, ms, k):
    """out[lane] = NumPy's ufunc u (numpy_loops.UFUNCS) reduced over the lanes of array
    row k (its lane map: x's shape, out's keepdim strides, 0 on reduced dims); x and out
    of one dtype, float32 or float64."""
    sz = x.itemsize
    w = np.zeros((4, MAXD + 1), np.int64)       # merged dims: extent, x and out strides, index
    m = 0
    xs = 1
    for d in range(ms[k, AUX_ND] - 1, -1, -1):
        e = ms[k, AUX_SHAPE + d]
        if e != 1:
            if m > 0 and (ms[k, AUX_STR + d] == 0) == (w[2, m - 1] == 0):
                w[0, m - 1] *= e
            else:
                w[0, m] = e
                w[1, m] = xs
                w[2, m] = ms[k, AUX_STR + d]
                m += 1
            xs *= e
    if m == 0:                                  # one element per lane
        w[0, 0] = 1
        m = 1
    first = u == U_MAX or u == U_MIN
    for j in range(out.shape[0]):
        out[j] = 0.0 if u == U_ADD else 1.0
    if x.shape[0] == 0:
        return
    skip = -1                                   # the one reduced dim starts at 1
    if first:
        seen = np.zeros(out.shape[0], np.bool_)
        for i in range(x.shape[0]):             # (w's index row walks x)
            o = 0
            for a in range(m):
                o += w[3, a] * w[2, a]
            if not seen[o]:
                seen[o] = True
                out[o] = x[i]
            _next(w, 0, m, -1)
        nred = 0
        for a in range(m):
            if w[2, a] == 0:
                nred += 1
                skip = a
        skip = skip if nred == 1 else -1
        if skip > 0:
            w[3, skip] = 1
    s0 = 1 if skip == 0 else 0
    while True:
        xo = s0 * w[1, 0]
        oo = 0
        for a in range(1, m):
            xo += w[3, a] * w[1, a]
            oo += w[3, a] * w[2, a]
        if w[0, 0] > s0:
            _call_loop(2 * u + (1 if sz == 8 else 0), w[0, 0] - s0, out[oo:], w[2, 0] * sz,
                       x[xo:], w[1, 0] * sz, out[oo:], w[2, 0] * sz)
        if _next(w, 1, m, skip):
            break


@njit(inline="always")
def _next(w, a, m, skip):
    """Steps the index w[3] over dims a, ..., m - 1 (dim skip from 1); True past the end."""
    while a < m:
        w[3, a] += 1
        if w[3, a] < w[0, a]:
            return False
        w[3, a] = 1 if a == skip else 0
        a += 1
    return True


@jit
def _reduce(r, h, rq, rd, ms, ptrs, cbuf):
    """sum/mean (``_in_dtype``)."""
    k = int(rd[3 * r + 2])
    x = _val(rq, rd, ms, ptrs, h >> SHIFT, cbuf[2:3])
    _result_dtype(h & OPMASK, x, view(ptrs[k], ms[k, SIZE], cbuf), ms, k, rd[3 * r + 1],
                  h & F32)


@jit_internal
def _result_dtype(op, x, y, ms, k, c, f32):
    """``_in_dtype`` in the result's dtype: on float32 copies in a float64 arena."""
    if f32 and x.itemsize == 8:
        y32 = np.empty(y.shape[0], np.float32)
        _in_dtype(op, x.astype(np.float32), y32, ms, k, c)
        for i in range(y.shape[0]):
            y[i] = y32[i]
    else:
        _in_dtype(op, x, y, ms, k, c)


@jit_internal
def _in_dtype(op, x, y, ms, k, c):
    """What eager computes in the result's dtype: sum, mean (the sum over the lane's count,
    as np.mean: its float64 quotient, rounded), max/min, prod, and var/std as np.var (the
    mean, then the sum of squared deviations over N - correction = c)."""
    u = U_MAX if op == MAXALL or op == AMAX else U_MIN if op == MINALL or op == AMIN else \
        U_MUL if op == PROD or op == PRODDIM else U_ADD
    reduce_like(u, x, y, ms, k)
    nk = y.shape[0]
    cnt = np.float64(x.shape[0] // nk if nk else 0)
    if op == MEAN or op == MEANDIM or op == VAR or op == STD:
        for j in range(nk):
            y[j] = y[j] / cnt
    if op != VAR and op != STD:
        return
    kidx = _lane_index(ms, k, x.shape[0])
    dev = np.empty_like(x)
    for i in range(x.shape[0]):
        d = x[i] - y[kidx[i]]
        dev[i] = d * d
    top = np.empty_like(y)
    low = np.empty_like(y)
    reduce_like(U_MAX, x, top, ms, k)
    reduce_like(U_MIN, x, low, ms, k)
    reduce_like(U_ADD, dev, y, ms, k)
    for j in range(nk):
        y[j] = y[j] / c if c > 0.0 else np.nan
        if c > 0.0 and top[j] == low[j] and np.isfinite(top[j]):
            y[j] = 0.0      # a lane of equal values: exactly 0, as eager (PyTorch's Welford)
        if op == STD:
            y[j] = np.sqrt(y[j])


@jit
def _view(r, h, rq, rd, ms, ptrs, cbuf):
    """A view: y[i] = x[base + sum(idx_i * strides)] over y's shape."""
    k = int(rd[3 * r + 2])
    x = _val(rq, rd, ms, ptrs, h >> SHIFT, cbuf[2:3])
    y = view(ptrs[k], ms[k, SIZE], cbuf)
    y[:] = -0.0                     # -0.0 + x is x to the bit (0.0 + -0.0 would be 0.0)
    _stride_walk(ms[k, AUX_ND], ms[k, AUX_SHAPE:AUX_SHAPE + MAXD],
                 ms[k, AUX_STR:AUX_STR + MAXD], ms[k, AUX_BASE], x, y, False, 1.0)


@jit
def _lane(op, r, h, rq, rd, ms, ptrs, cbuf):
    """Nonlinear reductions and softmaxes, as eager computes them with NumPy: norm (p = c),
    logsumexp and the softmaxes in float64 (|x| ** p, x - max and their sums, exp, log
    and powers by NumPy's loops), the others in the result's dtype (``_in_dtype``)."""
    k = int(rd[3 * r + 2])
    c = rd[3 * r + 1]
    x = _val(rq, rd, ms, ptrs, h >> SHIFT, cbuf[2:3])
    y = view(ptrs[k], ms[k, SIZE], cbuf)
    if op != NORM and op != LOGSUMEXP and op != SOFTMAX and op != LOGSOFTMAX:
        _result_dtype(op, x, y, ms, k, c, h & F32)
        return
    n = x.shape[0]
    kidx = _lane_index(ms, k, n)
    nk = y.shape[0]
    if op == SOFTMAX or op == LOGSOFTMAX:
        nk = 0
        for i in range(n):
            nk = max(nk, kidx[i] + 1)
    acc = np.empty(nk)
    t = np.empty(n)                             # eager's float64 copy, then its terms
    for i in range(n):
        t[i] = x[i]
    if op == NORM:                              # |x| ** p (x * x for 2), summed, ** (1/p)
        for i in range(n):
            t[i] = abs(t[i]) * abs(t[i]) if c == 2.0 else abs(t[i])
        if c != 2.0:
            _call_loop(2 * U_POW + 1, n, t, 8, np.full(1, c), 0, t, 8)
        reduce_like(U_ADD, t, acc, ms, k)
        if c == 2.0:
            for j in range(nk):
                acc[j] = np.sqrt(acc[j])
        else:
            _call_loop(2 * U_POW + 1, nk, acc, 8, np.full(1, 1.0 / c), 0, acc, 8)
        for j in range(nk):
            y[j] = acc[j]
        return
    mk = np.empty(nk)                           # shifted by the lane max (0 if not finite)
    reduce_like(U_MAX, t, mk, ms, k)
    for j in range(nk):
        if not np.isfinite(mk[j]):
            mk[j] = 0.0
    for i in range(n):
        t[i] = t[i] - mk[kidx[i]]
    e = np.empty(n)
    _call_loop(2 * U_EXP + 1, n, t, 8, e, 8, e, 0)
    reduce_like(U_ADD, e, acc, ms, k)
    if op == SOFTMAX:
        for i in range(n):
            y[i] = e[i] / acc[kidx[i]]
        return
    _call_loop(2 * U_LOG + 1, nk, acc, 8, acc, 8, acc, 0)
    for j in range(nk):
        if op == LOGSUMEXP:
            y[j] = mk[j] + acc[j]
    if op == LOGSOFTMAX:
        for i in range(n):
            y[i] = t[i] - acc[kidx[i]]


@jit
def _gather(op, r, h, rq, rd, ms, md, ptrs, cbuf):
    """y[i] = x[idx[i]]; max(dim)/min(dim) first find the new arg-extreme of each lane
    (the first one on ties, a NaN wins, as np.argmax) and keep it in the int list the
    reverse sweep reads."""
    k = int(rd[3 * r + 2])
    x = _val(rq, rd, ms, ptrs, h >> SHIFT, cbuf[2:3])
    y = view(ptrs[k], ms[k, SIZE], cbuf)
    idx = _ints(md, ptrs, k)
    if op == MAXDIM or op == MINDIM:
        n = x.shape[0]
        kidx = _lane_index(ms, k, n)
        for j in range(idx.shape[0]):
            idx[j] = -1
        for i in range(n):
            j = kidx[i]
            b = idx[j]
            if b < 0:
                idx[j] = i
                continue
            best = x[b]
            if best != best:          # a NaN already won the lane
                continue
            if (x[i] > best if op == MAXDIM else x[i] < best) or x[i] != x[i]:
                idx[j] = i
    for i in range(y.shape[0]):
        y[i] = x[idx[i]]


@jit
def _multi(r, rq, rd, ms, md, ptrs, cbuf):
    """cat/stack: ints = (outer, inner, extent, slot_0, extent_0, slot_1, extent_1, ...);
    part p fills extent_p of the output's extent along the joined dimension."""
    k = int(rd[3 * r + 2])
    y = view(ptrs[k], ms[k, SIZE], cbuf)
    ints = _ints(md, ptrs, k)
    outer = ints[0]
    inner = ints[1]
    total = ints[2]
    at = 0
    for p in range((ints.shape[0] - 3) // 2):
        xp = _val(rq, rd, ms, ptrs, ints[3 + 2 * p], cbuf[2:3])
        e = ints[4 + 2 * p]
        for o in range(outer):
            dst = (o * total + at) * inner
            src = o * e * inner
            for j in range(e * inner):
                y[dst + j] = xp[src + j]
        at += e


@jit
def _copyslices(r, h, rq, rd, ms, md, ptrs, cbuf):
    """z = a with z[pos[j]] = b[j] (b: one value per position, or the number c)."""
    k = int(rd[3 * r + 2])
    z = view(ptrs[k], ms[k, SIZE], cbuf)
    xa = _val(rq, rd, ms, ptrs, h >> SHIFT, cbuf[2:3])
    if h & CONST_B:
        cbuf[0] = rd[3 * r + 1]
        xb = cbuf[0:1]
    else:
        xb = _val(rq, rd, ms, ptrs, int(rd[3 * r + 1]), cbuf[3:4])
    pos = _ints(md, ptrs, k)
    for i in range(z.shape[0]):
        z[i] = xa[i]
    npos = pos.shape[0]
    one = xb.shape[0] != npos
    for j in range(npos):
        z[pos[j]] = xb[0 if one else j]


@jit
def _matmul(r, h, rq, rd, ms, ptrs, cbuf):
    """mm (n,p)@(p,q), bmm (B,n,p)@(B,p,q), dot (p)@(p), mv (n,p)@(p), batch by batch,
    by NumPy's matmul loop, which eager np.matmul runs (BLAS or NumPy's own loop, as it
    picks for these sizes and steps): the replay's products are eager's to the bit. The
    sizes (B, n, p, q) are in the record's static row; a float32 product held in a
    float64 arena runs float32's loop on float32 copies, as eager's does."""
    k = int(rd[3 * r + 2])
    xa = _val(rq, rd, ms, ptrs, h >> SHIFT, cbuf[2:3])
    xb = _val(rq, rd, ms, ptrs, int(rd[3 * r + 1]), cbuf[3:4])
    y = view(ptrs[k], ms[k, SIZE], cbuf)
    batch, n, p, q = ms[k, PB], ms[k, PN], ms[k, PP], ms[k, PQ]
    if h & F32 and cbuf.itemsize == 8:
        _product_f32(h & OPMASK, xa, xb, y, batch, n, p, q)
    else:
        _product(h & OPMASK, xa, xb, y, batch, n, p, q)


@jit
def _product(op, a, b, y, batch, n, p, q):
    """y = a @ b, matrix by matrix, with the steps np.matmul gives its loop for the
    operands' shapes: a 1-d operand lacks a core dimension (step 0), as dot's both and
    mv's second do."""
    s = y.itemsize
    u = 2 * U_MATMUL + (1 if s == 8 else 0)
    s1m = 0 if op == DOT else p * s
    s2p = s if op == MM or op == BMM else 0
    som = 0 if op == DOT else q * s
    for t in range(batch):
        _call_matmul(u, n, p, q, a[t * n * p:], b[t * p * q:], y[t * n * q:],
                     s1m, s, q * s, s2p, som, s2p)


@jit
def _product_f32(op, a, b, y, batch, n, p, q):
    a32 = np.empty(a.shape[0], np.float32)
    b32 = np.empty(b.shape[0], np.float32)
    y32 = np.empty(y.shape[0], np.float32)
    for i in range(a.shape[0]):
        a32[i] = a[i]
    for i in range(b.shape[0]):
        b32[i] = b[i]
    _product(op, a32, b32, y32, batch, n, p, q)
    for i in range(y.shape[0]):
        y[i] = y32[i]


@jit
def _round32(y):
    """A float32 result: each value rounded to float32, as the eager op rounds it."""
    for i in range(y.shape[0]):
        y[i] = np.float32(y[i])


# ----- what the recording says about gradients ---------------------------------------
@jit
def requires_of(rq, rd, md, ptrs, req):
    """Marks in ``req`` (sources marked by the caller) every record a gradient flows into
    from a marked record: through every operand but where's condition; comparisons and
    CASTNG pass none."""
    for r in range(rq.shape[0] // 3):
        h = rq[3 * r]
        fam = FAMILY[h & OPMASK]
        if fam == F_SOURCE or fam == F_COMPARE:
            continue
        if fam == F_MULTI:
            ints = _ints(md, ptrs, int(rd[3 * r + 2]))
            for p in range((ints.shape[0] - 3) // 2):
                if req[ints[3 + 2 * p]]:
                    req[r] = 1
            continue
        if req[h >> SHIFT]:
            req[r] = 1
        if (fam == F_BINARY or fam == F_MATMUL or fam == F_SETITEM) and \
                not (h & (CONST_A | CONST_B)) and req[int(rd[3 * r + 1])]:
            req[r] = 1


# ----- the sweep ----------------------------------------------------------------------
@jit
def sweep_scratch(like):
    """forward_sweep's scratch: (cbuf, ib); cbuf (8 values of the arena's element type,
    like's) holds a record's number (cbuf[0]) and scalars read as operands (cbuf[2:5])."""
    return np.zeros(8, like.dtype), np.zeros((5, MAXD), np.int64)



@jit
def _load(rq, rd, ms, ptrs, r, code, src, cbuf):
    """Source record r takes the values at address src (element type code; -1 a Python
    float's double)."""
    if rq[3 * r] & SCALAR:
        if code <= 0:
            rd[3 * r + 2] = view_f64(src, 1)[0]
        else:
            tmp = np.empty(1)
            _copy(code, src, tmp)
            rd[3 * r + 2] = tmp[0]
        return
    k = int(rd[3 * r + 2])
    _copy(0 if code < 0 else code, src, view(ptrs[k], ms[k, SIZE], cbuf))


@jit
def forward_sweep(rq, rd, ms, msd, md, ptrs, cond, c2s, fx, src_ext, ext, addr, start, stop,
                  cbuf, ib):
    """Recomputes the values of records start, ..., stop - 1 in place. A source record r
    with src_ext[r] = j >= 0 loads external j (its element type ext[j, 1], at address
    addr[j]); the others are the caller's. cond[k]: where's condition slot (array row k);
    c2s[r]: the second constant of a scalar record r (clamp's max; only read for scalar
    clamps); fx[k]: a broadcast resolved to rows (``_binary_rows``). cbuf and ib: scratch
    (``sweep_scratch``: cbuf's element type is the arena's), allocated once by the
    caller."""
    for r in range(start, stop):
        h = rq[3 * r]
        op = h & OPMASK
        fam = FAMILY[op]
        if fam == F_SOURCE:
            j = src_ext[r]
            if j >= 0:
                _load(rq, rd, ms, ptrs, r, ext[j, 1], addr[j], cbuf)
            continue
        if h & SCALAR:
            # a Python-float result from Python-float operands, written inline
            a = h >> SHIFT
            c = rd[3 * r + 1]
            if fam == F_BINARY or (fam == F_COMPARE and op != CASTNG):
                if h & CONST_A:
                    v = value_of(op, c, rd[3 * a + 2], 0.0, 0.0)
                elif h & CONST_B:
                    v = value_of(op, rd[3 * a + 2], c, 0.0, 0.0)
                else:
                    v = value_of(op, rd[3 * a + 2], rd[3 * int(c) + 2], 0.0, 0.0)
            else:               # unary ops (and views of a scalar): the constant in b
                v = value_of(op, rd[3 * a + 2], 0.0, c, c2s[r] if op == CLAMP else 0.0)
                if op == ROUNDDEC and h & F32:      # each step in float32, as eager's
                    v = round_decimals(np.float32(rd[3 * a + 2]), c)
            rd[3 * r + 2] = np.float32(v) if h & F32 else v
            continue
        if fx[int(rd[3 * r + 2]), 0] < 0:
            continue            # a detach: its values are its operand's (Program.alias)
        if fam == F_BINARY:
            _binary(op, r, h, rq, rd, ms, md, ptrs, cond, fx, cbuf, ib)
        elif fam == F_UNARY:
            _unary(op, r, h, rq, rd, ms, msd, ptrs, cbuf)
        elif fam == F_REDUCE:
            _reduce(r, h, rq, rd, ms, ptrs, cbuf)
        elif fam == F_LANE:
            _lane(op, r, h, rq, rd, ms, ptrs, cbuf)
        elif fam == F_MATMUL:
            _matmul(r, h, rq, rd, ms, ptrs, cbuf)
        elif fam == F_STRIDED:
            _view(r, h, rq, rd, ms, ptrs, cbuf)
        elif fam == F_GATHER:
            _gather(op, r, h, rq, rd, ms, md, ptrs, cbuf)
        elif fam == F_MULTI:
            _multi(r, rq, rd, ms, md, ptrs, cbuf)
        elif fam == F_SETITEM:
            _copyslices(r, h, rq, rd, ms, md, ptrs, cbuf)
        elif fam == F_COMPARE:
            if op == CASTNG:
                _unary(op, r, h, rq, rd, ms, msd, ptrs, cbuf)
            else:
                _binary(op, r, h, rq, rd, ms, md, ptrs, cond, fx, cbuf, ib)
        if h & F32 and cbuf.itemsize == 8:
            k = int(rd[3 * r + 2])
            _round32(view_f64(ptrs[k], ms[k, SIZE]))
