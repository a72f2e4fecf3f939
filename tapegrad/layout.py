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
