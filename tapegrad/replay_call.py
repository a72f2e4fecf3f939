"""Numba kernels of one replayed call, around the sweeps: where the values go (``place``)
and whether the guards hold (``guards_hold``)."""

# kernel sources: 9886e3edf5a112e2
from .kernels_base import jit
from .replay_kernels import _val


@jit
def place(base, rel, arena, ptrs):
    """ptrs[i] = base[i], plus the arena's address where rel[i] (a place in this call's
    arena; else an address of its own, a constant int list)."""
    at = arena.ctypes.data
    for i in range(ptrs.shape[0]):
        ptrs[i] = base[i] + at if rel[i] else base[i]


@jit
def guards_hold(rq, rd, ms, ptrs, gslot, gkind, gpar, goff, gvals, buf):
    """Do the guards hold? Guard g: slot gslot[g] holds the values gvals[goff[g]:] (kind 0;
    NaN equals NaN), or its arg-extremes along a dim are the recorded ones (kind 1 argmax,
    2 argmin, the first on ties and a NaN winning as np.argmax; gpar[g] = (outer, n, inner):
    the value seen as (outer, n, inner), the extreme taken over n), or its integer values
    are exact in the arena's element type (kind 3: below 2^24 in magnitude, for float32).
    buf: a place for one value of the arena's element type."""
    for g in range(gslot.shape[0]):
        x = _val(rq, rd, ms, ptrs, gslot[g], buf)
        o0 = goff[g]
        if gkind[g] == 3:
            for i in range(x.shape[0]):
                if not abs(x[i]) < 16777216.0:
                    return False
            continue
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
