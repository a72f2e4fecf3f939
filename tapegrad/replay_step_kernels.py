"""Numba: one replayed call in one jitted call (``run``): the forward sweep in segments,
between them the recording's effects in order: reverse sweeps (backward), stores of
values into tensors from outside (in-place updates), fills, grads set to None; the guards
checked before the first effect that changes anything outside the call.

Externals (tensors the call reads or writes outside its arena) are numbered; ``ext[j]`` =
(kind, code, size, address): kind 0 an object handed in per call (its id in ``ids[j]``: a
Python float, whose value goes to ``xs[j]``, or an ndarray, read at its data pointer), kind
1 a fixed address (a leaf's grad storage, a constant of the program); code the element
type (``replay_call.CODES``; -1 a Python float). A source record r with ``src_ext[r] >= 0``
loads that external when the sweep reaches it (after the stores before it).

Effects ``eff[e]`` = (position, kind, external, slot, backward number) with ``effv[e]``
a fill value: kind 0 backward, 1 store slot's value into the external, 2 fill it, 3 clear
leaf grad (external: the leaf's number), 4 check the guards. A backward b has its reach,
adjoint offsets and workspace size precomputed (``bw_reach[b]``, ``bw_off[b]``,
``bw_meta[b]`` = (workspace size, highest root)); its roots ``roots`` = (b, slot, seed
slot or -1) and the leaves it reaches ``lv`` = (b, leaf record, leaf number). A leaf's
grad goes into its storage (the record's cell, its GADDR buffer), or, when the engine
keeps it (``DEFERRED``: a grad the user assigned), into ``defer[leaf number]`` (the
address of the user's grad array, float64 or float32 as the leaf); a deferred leaf with
no such address (hooks) stops the call (status 2) before anything changed.

A call may hand in its argument tuple's address (``argt``, else 0) and, in ``ids``'s place,
what the arguments must be (``check_table``): the kernel then checks them (``_gather``:
the same objects as the last call, the same leaf nodes, tapes and requires_grad, values of
the recorded types, the arrays checked last) and finds the inputs' values itself, into the
scratch (``S_IDS``); a mismatch stops the call (status 3) before anything was read or
changed, and the caller checks and binds in Python.
"""
# kernel sources: 9886e3edf5a112e2
import numpy as np

from .kernels_base import jit
from .layout import (DYN_WIDTH, F32, GADDR, HAS_GRAD, DEFERRED, SCALAR, SIZE, STATE_OFFSET,
                     STATIC_WIDTH, S_ADDR, S_CBUF, S_IB, S_PTRS, S_SG, S_WORK, S_XS,
                     T_BW_META, T_BW_OFF, T_BW_REACH, T_C2S, T_COND, T_DYN, T_EFF, T_EFFV,
                     T_EXT, T_FX, T_GKIND, T_GOFF, T_GPAR, T_GSLOT, T_GVALS, T_LV, T_ROOTS,
                     T_SRC_EXT, T_STATIC)
from .ptr import as_u8_ptr, load_i64, view, view_f32, view_f64, view_i64
from .replay_call import guards_hold
from .replay_ptr import (_D_OFF, _F_OFF, _S_NODE, _S_RG, _S_TAPE, _S_V, _T_OFF, _TUPLE,
                         _f64, _i16, _i32, _i64, _i8, _u8)
from .replay_backward import reverse
from .replay_elementwise import _val
from .replay_kernels import forward_sweep


S_IDS = 7                   # the scratch's table of the inputs' values (after layout's S_*)
NO_SLOT = -1                # a check table's slot column: nothing to check there
ARG_W, IN_W = 4, 6          # a check table's row widths (see _gather)


@jit
def _gather(argt, chk, ids):
    """Do the arguments at tuple address ``argt`` fit the table ``chk`` (made by
    replay_calls.check_table or fast_table)? Header (number of arguments na, of inputs
    ni); per argument ARG_W columns: its address, the addresses its tensor's _node, _tape,
    _rg slots must hold (a column NO_SLOT: that slot is not checked); per input IN_W columns: the tensor's address,
    its slots' addresses, its value's type (the type object's address) and, when not 0,
    the very value it must be (an array checked before). The inputs' values go to ids.
    Addresses are read and compared, and the values' headers read: every object is held
    by the argument tuple or by the table's owner. (No call in the loops: a jitted call
    taking an array counts its references, atomically, each time.)"""
    na, ni = chk[0], chk[1]
    items = argt + _TUPLE
    for p in range(na):
        r = 2 + ARG_W * p
        o = load_i64(items + 8 * p)
        if o != chk[r]:
            return False
        if chk[r + 1] != NO_SLOT and load_i64(o + _S_NODE) != chk[r + 1]:
            return False
        if chk[r + 2] != NO_SLOT and load_i64(o + _S_TAPE) != chk[r + 2]:
            return False
        if chk[r + 3] != NO_SLOT and load_i64(o + _S_RG) != chk[r + 3]:
            return False
    r0 = 2 + ARG_W * na
    for j in range(ni):
        r = r0 + IN_W * j
        o = chk[r]
        if chk[r + 1] != NO_SLOT and load_i64(o + _S_NODE) != chk[r + 1]:
            return False
        if chk[r + 2] != NO_SLOT and load_i64(o + _S_TAPE) != chk[r + 2]:
            return False
        if chk[r + 3] != NO_SLOT and load_i64(o + _S_RG) != chk[r + 3]:
            return False
        v = load_i64(o + _S_V)
        if v == 0 or load_i64(v + _T_OFF) != chk[r + 4]:
            return False
        if chk[r + 5] != 0 and v != chk[r + 5]:
            return False
        ids[j] = v
    return True


@jit
def _resolve(ext, ids, xs, addr):
    """Each external's address this call (a Python float's value copied into xs)."""
    for j in range(ext.shape[0]):
        if ext[j, 0] == 1:
            addr[j] = ext[j, 3]
        elif ext[j, 1] < 0:
            xs[j] = _f64(ids[j] + _F_OFF)[0]
            addr[j] = xs[j:j + 1].ctypes.data
        else:
            addr[j] = load_i64(ids[j] + _D_OFF)


@jit
def _store(code, x, dst, n):
    """n values of x (one value broadcast when x has one) written at address dst, in
    element type code."""
    one = x.shape[0] == 1
    if code <= 0:
        y = view_f64(dst, n)
        for i in range(n):
            y[i] = x[0 if one else i]
    elif code == 1:
        y32 = view_f32(dst, n)
        for i in range(n):
            y32[i] = x[0 if one else i]
    else:
        tmp = np.empty(n)
        for i in range(n):
            tmp[i] = x[0 if one else i]
        _put(code, tmp, dst)


@jit
def _put(code, x, dst):
    """Integer element types: x's values truncated into dst."""
    n = x.shape[0]
    if code == 2:
        a = _i64(dst)
        for i in range(n):
            a[i] = np.int64(x[i])
    elif code == 3:
        b = _i32(dst)
        for i in range(n):
            b[i] = np.int32(x[i])
    elif code == 4:
        c = _i16(dst)
        for i in range(n):
            c[i] = np.int16(x[i])
    elif code == 5:
        d = _i8(dst)
        for i in range(n):
            d[i] = np.int8(x[i])
    else:
        e = _u8(dst)
        for i in range(n):
            e[i] = np.uint8(x[i] != 0.0) if code == 7 else np.uint8(x[i])


@jit
def _backward(b, rq, rd, ms, md, ptrs, fx, bw_reach, bw_off, bw_meta, roots, lv, defer, sg,
              work, cbuf):
    """Backward number b: adjoints zeroed, roots seeded, the reverse sweep over what they
    reach (leaves staged), then each reached leaf's adjoint added into its grad."""
    total = bw_meta[b, 0]
    reach = bw_reach[b]
    off = bw_off[b]
    w = work[:total]
    for i in range(total):
        w[i] = 0.0
    for i in range(sg.shape[0]):
        sg[i] = 0.0
    for i in range(lv.shape[0]):    # (before the roots: a root may be a leaf)
        r = lv[i, 1]
        if lv[i, 0] == b and _in_grad(rq[3 * r], np.int64(rd[3 * r + 1]), w):
            k = int(rd[3 * r + 2])
            g = w[off[k]:off[k] + ms[k, SIZE]]
            if rq[3 * r] & F32:
                g[:] = view_f32(md[k, GADDR], g.shape[0])
            else:
                g[:] = view_f64(md[k, GADDR], g.shape[0])
    for i in range(roots.shape[0]):
        if roots[i, 0] != b:
            continue
        s = roots[i, 1]
        if rq[3 * s] & SCALAR:
            g = sg[s:s + 1]
        else:
            k = int(rd[3 * s + 2])
            g = w[off[k]:off[k] + ms[k, SIZE]]
        if roots[i, 2] < 0:
            for j in range(g.shape[0]):
                g[j] += 1.0
        else:
            x = _val(rq, rd, ms, ptrs, roots[i, 2], cbuf[2:3])
            for j in range(g.shape[0]):
                g[j] += x[j]
    reverse(rq, rd, ms, md, ptrs, fx, sg, reach, off, w, bw_meta[b, 1], cbuf)
    for i in range(lv.shape[0]):
        if lv[i, 0] != b:
            continue
        r = lv[i, 1]
        h = rq[3 * r]
        cell = np.int64(rd[3 * r + 1])
        state = as_u8_ptr(cell)
        if _in_grad(h, cell, w):
            state[STATE_OFFSET] |= HAS_GRAD
            k = int(rd[3 * r + 2])
            g = w[off[k]:off[k] + ms[k, SIZE]]
            if h & F32:
                view_f32(md[k, GADDR], g.shape[0])[:] = g
            else:
                view_f64(md[k, GADDR], g.shape[0])[:] = g
            continue
        if h & SCALAR:
            g = sg[r:r + 1]
            dst = cell
        else:
            k = int(rd[3 * r + 2])
            g = w[off[k]:off[k] + ms[k, SIZE]]
            dst = md[k, GADDR]
        if state[STATE_OFFSET] & DEFERRED:
            dst = defer[lv[i, 2]]          # the user's grad array (checked by the caller)
        else:
            state[STATE_OFFSET] |= HAS_GRAD
        if h & F32:
            y32 = view_f32(dst, g.shape[0])
            for j in range(g.shape[0]):
                y32[j] += g[j]
        else:
            y = view_f64(dst, g.shape[0])
            for j in range(g.shape[0]):
                y[j] += g[j]


@jit
def _in_grad(h, cell, w):
    """Does this leaf's adjoint accumulate from its grad's value, as eager's sweep adds
    into the grad of an array leaf of the sweep's dtype (so the sums round alike)? Such an
    adjoint starts as the grad and is written back; a 0-d leaf's, another dtype's and a
    DEFERRED leaf's start at 0 and are added, as eager stages them."""
    if h & SCALAR or ((h & F32) != 0) != (w.itemsize == 4):
        return False
    return not as_u8_ptr(cell)[STATE_OFFSET] & DEFERRED


@jit
def _clear(rq, rd, ms, md, r):
    """grad = None for the leaf of record r: its storage zeroed, HAS_GRAD and DEFERRED
    unset (a grad the user assigned is dropped: the leaf's own storage serves again)."""
    h = rq[3 * r]
    cell = np.int64(rd[3 * r + 1])
    state = as_u8_ptr(cell)
    state[STATE_OFFSET] &= ~(HAS_GRAD | DEFERRED) & 0xFF
    if h & SCALAR:
        view_f64(cell, 1)[0] = 0.0
    else:
        k = int(rd[3 * r + 2])
        n = ms[k, SIZE]
        if h & F32:
            view_f32(md[k, GADDR], n)[:] = 0.0
        else:
            view_f64(md[k, GADDR], n)[:] = 0.0


@jit
def _deferred_unknown(rq, rd, lv, defer):
    """Is a leaf a backward reaches DEFERRED (its grad kept by the engine) while the caller
    gave no address for it? Checked before anything is done."""
    for i in range(lv.shape[0]):
        state = as_u8_ptr(np.int64(rd[3 * lv[i, 1] + 1]))
        if state[STATE_OFFSET] & DEFERRED:
            num = lv[i, 2]
            if num >= defer.shape[0] or defer[num] == 0:
                return True
    return False


@jit
def deferred_leaves(rq, rd, lv, out):
    """Marks out[leaf number] for each leaf a backward reaches whose grad the engine keeps
    (DEFERRED: a grad the user assigned, or hooks); returns how many."""
    count = 0
    for i in range(lv.shape[0]):
        r = lv[i, 1]
        state = as_u8_ptr(np.int64(rd[3 * r + 1]))
        if state[STATE_OFFSET] & DEFERRED:
            if out[lv[i, 2]] == 0:
                count += 1
            out[lv[i, 2]] = 1
    return count


@jit
def _i1(p, k):
    """Table k of packed buffer p (replay_pack.py) as 1-d int64."""
    at = p[3 * k]
    return p[at:at + p[3 * k + 1] * p[3 * k + 2]]


@jit
def _i2(p, k):
    """Table k of p as 2-d int64 (rows, cols)."""
    return _i1(p, k).reshape((p[3 * k + 1], p[3 * k + 2]))


@jit
def _f1(p, k):
    """Table k of p as 1-d float64."""
    return _i1(p, k).view(np.float64)


@jit
def _typed(p, k, like):
    """Table k of p (sized in float64s) as values of like's element type."""
    return view(p.ctypes.data + 8 * p[3 * k], p[3 * k + 1] * p[3 * k + 2], like)


@jit
def run(rec, tables, scratch, ids, defer, argt):
    """One call (see the module docstring): ``tables`` the call's tables and ``scratch`` its
    scratch, each packed in one buffer (replay_pack.py); scratch is given as an array of
    the arena's element type (``Program.dtype``), in which the sweeps then run. Returns 0;
    1 when a guard fails, 2 when a leaf's grad is kept by the engine and ``defer`` has no
    address for it (nothing outside the call was changed), 3 when ``argt`` (the argument
    tuple's address, else 0) was given and the arguments do not fit the check table given
    as ``ids`` (see _gather; nothing was done)."""
    # the buffers seen through raw pointers: views of them carry no reference count (a
    # view of an array from Python increments and decrements its count, atomically, and
    # the sweeps take thousands of row views a call)
    rq = view_i64(rec.ctypes.data, rec.shape[0] // 8)
    rd = view_f64(rec.ctypes.data, rec.shape[0] // 8)
    tables = view_i64(tables.ctypes.data, tables.shape[0])
    sc = view_i64(scratch.ctypes.data, scratch.nbytes // 8)
    static = _i1(tables, T_STATIC)
    ms = static.reshape(-1, STATIC_WIDTH)
    msd = static.view(np.float64).reshape(-1, STATIC_WIDTH)
    md = _i1(tables, T_DYN).reshape(-1, DYN_WIDTH)
    cond, c2s, fx = _i1(tables, T_COND), _f1(tables, T_C2S), _i2(tables, T_FX)
    src_ext, ext = _i1(tables, T_SRC_EXT), _i2(tables, T_EXT)
    eff, effv = _i2(tables, T_EFF), _f1(tables, T_EFFV)
    rb, nb, width = tables[3 * T_BW_REACH], tables[3 * T_BW_REACH + 1], \
        tables[3 * T_BW_REACH + 2]
    bw_reach = tables[rb:].view(np.uint8)[:nb * width].reshape((nb, width))
    bw_off, bw_meta = _i2(tables, T_BW_OFF), _i2(tables, T_BW_META)
    roots, lv = _i2(tables, T_ROOTS), _i2(tables, T_LV)
    gslot, gkind, gpar = _i1(tables, T_GSLOT), _i1(tables, T_GKIND), _i2(tables, T_GPAR)
    goff, gvals = _i1(tables, T_GOFF), _f1(tables, T_GVALS)
    ptrs, xs, addr = _i1(sc, S_PTRS), _f1(sc, S_XS), _i1(sc, S_ADDR)
    # in the arena's element type, the scratch's (forward_sweep's cbuf, ib: sweep_scratch)
    sg, work = _typed(sc, S_SG, scratch), _typed(sc, S_WORK, scratch)
    cbuf, ib = _typed(sc, S_CBUF, scratch), _i2(sc, S_IB)
    if argt != 0:
        got = _i1(sc, S_IDS)
        if not _gather(argt, ids, got):
            return 3                    # the arguments changed: checked again in Python
        if _deferred_unknown(rq, rd, lv, defer):
            return 2
        _resolve(ext, got, xs, addr)
    else:
        if _deferred_unknown(rq, rd, lv, defer):
            return 2                    # a grad the engine keeps, with no address given
        _resolve(ext, ids, xs, addr)
    n = rq.shape[0] // 3
    at = 0
    for e in range(eff.shape[0] + 1):
        pos = n if e == eff.shape[0] else eff[e, 0]
        if pos > at:
            forward_sweep(rq, rd, ms, msd, md, ptrs, cond, c2s, fx, src_ext, ext, addr, at,
                          pos, cbuf, ib)
        at = pos
        if e == eff.shape[0]:
            break
        kind = eff[e, 1]
        if kind == 4:
            if not guards_hold(rq, rd, ms, ptrs, gslot, gkind, gpar, goff, gvals, cbuf[2:3]):
                return 1
        elif kind == 0:
            _backward(eff[e, 4], rq, rd, ms, md, ptrs, fx, bw_reach, bw_off, bw_meta, roots,
                      lv, defer, sg, work, cbuf)
        elif kind == 1:
            j = eff[e, 2]
            _store(ext[j, 1], _val(rq, rd, ms, ptrs, eff[e, 3], cbuf[2:3]), addr[j], ext[j, 2])
        elif kind == 2:
            j = eff[e, 2]
            _store(ext[j, 1], effv[e:e + 1], addr[j], ext[j, 2])
        elif kind == 3:
            _clear(rq, rd, ms, md, eff[e, 3])
    return 0
