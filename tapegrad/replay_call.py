"""Numba kernels of one replayed call, around the forward sweep: where the values go
(``place``), the inputs written in (``store_inputs``), the guards checked
(``guards_hold``).

An input is read where its tensor keeps it: a Python float's value at ``FLOAT_OFFSET``
in the float object, an ndarray's data through its data pointer (``ptr.DATA_OFFSET``), so
that one call writes every input whatever their number, with no Python per input. Both
offsets are checked at import against CPython's own answers; where one does not hold
(``None``), ``replay_program`` writes the inputs from Python instead.
"""
import numpy as np

from .kernels import jit
from .layout import SCALAR, SIZE
from .ptr import load_i64, view_f64
from .replay_kernels import _val
from .replay_ptr import (CODES, DIRECT, FLOAT_OFFSET, _D_OFF, _F_OFF, _copy,  # noqa: F401
                         _f64)


@jit
def place(base, rel, arena, ptrs):
    """ptrs[i] = base[i], plus the arena's address where rel[i] (a place in this call's
    arena; else an address of its own, a constant int list)."""
    at = arena.ctypes.data
    for i in range(ptrs.shape[0]):
        ptrs[i] = base[i] + at if rel[i] else base[i]


@jit
def store_inputs(rq, rd, ms, ptrs, ids, islot, icode):
    """Writes input i (the object at address ids[i]: a Python float, or a C-contiguous
    ndarray of element type icode[i]) into source slot islot[i]: a scalar record's value,
    or its place in the arena."""
    for i in range(ids.shape[0]):
        s = islot[i]
        if rq[3 * s] & SCALAR:
            rd[3 * s + 2] = _f64(ids[i] + _F_OFF)[0]
        else:
            k = int(rd[3 * s + 2])
            _copy(icode[i], load_i64(ids[i] + _D_OFF), view_f64(ptrs[k], ms[k, SIZE]))


@jit
def guards_hold(rq, rd, ms, ptrs, gslot, gkind, gpar, goff, gvals):
    """Do the guards hold? Guard g: slot gslot[g] holds the values gvals[goff[g]:] (kind 0;
    NaN equals NaN), or its arg-extremes along a dim are the recorded ones (kind 1 argmax,
    2 argmin, the first on ties and a NaN winning as np.argmax; gpar[g] = (outer, n, inner):
    the value seen as (outer, n, inner), the extreme taken over n)."""
    for g in range(gslot.shape[0]):
        x = _val(rq, rd, ms, ptrs, gslot[g])
        o0 = goff[g]
        if gkind[g] == 0:
            for i in range(x.shape[0]):
                a = x[i]
                b = gvals[o0 + i]
                if a != b and not (a != a and b != b):
                    return False
            continue
        outer, n, inner = gpar[g, 0], gpar[g, 1], gpar[g, 2]
        for o in range(outer):
            for i in range(inner):
                best = 0
                for j in range(1, n):
                    v = x[(o * n + j) * inner + i]
                    bv = x[(o * n + best) * inner + i]
                    if bv != bv:
                        break
                    if v != v or (v > bv if gkind[g] == 1 else v < bv):
                        best = j
                if best != gvals[o0 + o * inner + i]:
                    return False
    return True


def store_inputs_py(rq, rd, ms, ptrs, arena, vals, islot):
    """``store_inputs`` from Python, one input at a time (where the object layouts could
    not be checked)."""
    base = arena.ctypes.data
    for v, s in zip(vals, islot.tolist()):
        if rq[3 * s] & SCALAR:
            rd[3 * s + 2] = float(v)
        else:
            k = int(rd[3 * s + 2])
            o = (int(ptrs[k]) - base) // 8
            arena[o:o + int(ms[k, SIZE])] = np.ravel(v)
