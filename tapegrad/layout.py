"""The layout of the frozen tape the kernels read (no Numba here: importing tapegrad does
not import Numba; the kernels are imported, and compiled, at the first backward).

Columns of the metadata table M (one row per array record):
  VO  offset of the record's value in av (-1: not kept)
  GO  offset of its adjoint in ag
  SIZE, ND, SHAPE[MAXD]        its size, ndim and shape
  IO, IN                       offset and length of its int list in av
  AUX_ND, AUX_BASE, AUX_SHAPE[MAXD], AUX_STR[MAXD]
                               the strided map of views and reductions
"""
import numpy as np

from .ops import MAXD, NEEDS

VO, GO, SIZE, ND, IO, IN, SHAPE = 0, 1, 2, 3, 4, 5, 6
AUX_ND, AUX_BASE, AUX_SHAPE = SHAPE + MAXD, SHAPE + MAXD + 1, SHAPE + MAXD + 2
AUX_STR = AUX_SHAPE + MAXD
META_WIDTH = AUX_STR + MAXD

NEEDS_TABLE = np.array(NEEDS, dtype=np.int64)

# Matrix products of at least this many multiply-adds leave the jitted sweeps for NumPy's
# BLAS (products.py); smaller ones run as plain loops inside the sweeps (no stop, no call).
BLAS_MIN = 1 << 15


def value_of(slot, m, M, sv, av):
    """The flat values of a record (a view into sv or av)."""
    r = slot // 5
    k = m[r]
    if k < 0:
        return sv[r:r + 1]
    o = M[k, VO]
    return av[o:o + M[k, SIZE]]


def adjoint_of(r, m, M, sg, ag):
    """The flat adjoint of record r (a view into sg or ag)."""
    k = m[r]
    if k < 0:
        return sg[r:r + 1]
    o = M[k, GO]
    return ag[o:o + M[k, SIZE]]


def shape_of(slot, m, M):
    k = m[slot // 5]
    return () if k < 0 else tuple(int(d) for d in M[k, SHAPE:SHAPE + M[k, ND]])
