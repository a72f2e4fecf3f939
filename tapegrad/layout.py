"""The layout of a tape in memory: what the Numba kernels read (no Numba here: importing
tapegrad does not import Numba; the kernels are compiled or loaded at the first backward).

Records: 24 bytes each in one bytearray, packed ``<qdd`` (or ``SPLIT``) as they are made:
  head  op | flags | a << SHIFT   (op in the low byte; ``a``: first operand's slot, signed)
  b     the second operand's slot, or a constant (flags say which), or, for a leaf, the
        address of its grad cell
  v     a scalar record's value; an array record's metadata row
The kernels see the same bytes twice, as int64 (heads) and float64 (b, v): record r's
head is ``rq[3r]``, its b ``rd[3r + 1]``, its v ``rd[3r + 2]``. A slot is a record index.

Array records add a metadata row in two parts: a static row (shape, the strided map of
views and reductions, matrix-product sizes, a second constant), packed once per distinct
value and cached, and a dynamic row (where the values the backward reads are kept).
"""
import struct

from .ops import MAXD

# ----- record heads -----------------------------------------------------------------------
OPMASK = 0xFF
SCALAR = 1 << 8       # a Python-float record: v holds the value
F32 = 1 << 9          # float32 value (and, for a leaf, a float32 grad cell)
CONST_B = 1 << 10     # b holds a Python number standing in the second operand
CONST_A = 1 << 11     # b holds a Python number standing in the first operand; a is the second
BIG = 1 << 12         # a matrix product large enough for BLAS (the engine does it in NumPy)
SHIFT = 16
RECORD = struct.Struct("<qdd")
RECORD_SIZE = RECORD.size
# The same 24 bytes with the head in two fields, op | flags (16 bits) and a (32 bits, then
# two zero bytes): little-endian, that is the int64 op | flags | a << 16 for 0 <= a < 2**32.
# The scalar fast path packs its records so: no head arithmetic in Python (two int
# operations, and a two-digit int once a << SHIFT passes 2**30), a third of its packing.
SPLIT = struct.Struct("<HIxxdd")
assert SPLIT.size == RECORD_SIZE and SHIFT == 16

# ----- static metadata row (int64 columns; C2 holds a float64's bits) -----------------------
SIZE, ND, SHAPE = 0, 1, 2
AUX_ND = SHAPE + MAXD
AUX_BASE = AUX_ND + 1
AUX_SHAPE = AUX_BASE + 1
AUX_STR = AUX_SHAPE + MAXD
PB, PN, PP, PQ = AUX_STR + MAXD, AUX_STR + MAXD + 1, AUX_STR + MAXD + 2, AUX_STR + MAXD + 3
C2 = PQ + 1
STATIC_WIDTH = C2 + 1
STATIC = struct.Struct(f"<{C2}qd")

# ----- dynamic metadata row ------------------------------------------------------------------
# AOBJ, BOBJ, YOBJ: index in tape.objs of the saved value of operand a, b and the result
# (-1: not kept); IOBJ, ILEN: of the record's int64 list, and its length; GADDR: a leaf's
# grad buffer address.
AOBJ, BOBJ, YOBJ, IOBJ, ILEN, GADDR = range(6)
DYN_WIDTH = 6
DYN = struct.Struct(f"<{DYN_WIDTH}q")

# A replayed call's tables packed into one int64 buffer (replay_pack.py; Numba's dispatch
# costs about 80 ns per array argument): a header of (offset, rows, cols) per table, then
# the tables, in this order. Its scratch (per call or per binding) is a second such buffer.
(T_STATIC, T_DYN, T_COND, T_C2S, T_FX, T_SRC_EXT, T_EXT, T_EFF, T_EFFV, T_BW_REACH, T_BW_OFF,
 T_BW_META, T_ROOTS, T_LV, T_GSLOT, T_GKIND, T_GPAR, T_GOFF, T_GVALS) = range(19)
S_PTRS, S_XS, S_ADDR, S_SG, S_WORK, S_CBUF, S_IB = range(7)

# Matrix products of at least this many multiply-adds leave the jitted sweep for NumPy's
# BLAS (products.py); smaller ones run as loops inside the sweep (no stop, no call).
BLAS_MIN = 1 << 15

# Leaf grad cells (scalar leaves' grads; every leaf's flags): 16 bytes a cell, the grad
# (float64, or float32 at the same address) at +0 and a state byte at +8.
CELL = 16
STATE_OFFSET = 8
HAS_GRAD = 1          # state: the grad holds a value (else .grad is None)
DEFERRED = 2          # state: the sweep leaves this leaf to Python (hooks, a user's grad)

_rows = {}


def static_row(shape, aux=None, dims=None, c2=0.0):
    """The packed static metadata of an array record (cached by value)."""
    key = (shape, aux, dims, c2)
    row = _rows.get(key)
    if row is None:
        f = [0] * (STATIC_WIDTH - 1)
        size = 1
        for s in shape:
            size *= s
        f[SIZE], f[ND] = size, len(shape)
        f[SHAPE:SHAPE + len(shape)] = shape
        if aux is not None:
            base, ashape, astrides = aux
            f[AUX_ND], f[AUX_BASE] = len(ashape), base
            f[AUX_SHAPE:AUX_SHAPE + len(ashape)] = ashape
            f[AUX_STR:AUX_STR + len(astrides)] = astrides
        if dims is not None:
            f[PB:PQ + 1] = dims
        row = STATIC.pack(*f, c2)
        if len(_rows) > 8192:
            _rows.clear()
        _rows[key] = row
    return row
