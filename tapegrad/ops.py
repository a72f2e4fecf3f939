"""The op table: the single source of truth for every primitive on the tape.

One row per primitive: its opcode, the PyTorch node name its ``grad_fn`` shows, how many
tensor inputs it has, which values its backward needs saved, and the family of sweep
loop that differentiates it. ``kernels.py`` imports only the opcode constants and the
``NEEDS`` table; ``tensor.py`` records rows; ``graph.py`` names nodes from them.

A record on the tape is five numbers ``(op, a, b, c, v)``:
  op  opcode (plus ``SCALAR`` when every operand is a Python-float scalar),
  a   slot of the first operand (-1: the operand is the Python number ``c``),
  b   slot of the second operand (-1: the number ``c``); unary ops keep a second constant here,
  c   a constant (pow exponent, clamp min, a Python-number operand, a mean's 1/count),
  v   the value of a scalar result (arrays keep their values beside the tape).
A slot is the flat position of its record in the tape, so slots are SSA by construction.
"""
from collections import namedtuple

Op = namedtuple("Op", "name code node arity family saves")
# family: 'source' (no inputs), 'binary' (broadcasting elementwise), 'unary' (elementwise,
#         derivative from x, y, c), 'reduce', 'matmul', 'strided' (a view of its input).
# arity: tensor inputs listed in next_functions (a Python-number operand of a binary op
#        still takes its place as (None, 0), as in PyTorch).
# saves: the values the backward reads: 'a' first operand, 'b' second, 'y' the result.

# Opcodes are grouped by family so the sweep dispatches with range checks.
LEAF, CONST, FREED = 0, 1, 2
ADD, SUB, MUL, DIV, POW = 3, 4, 5, 6, 7                                   # binary 3..7
NEG, EXP, LOG, TANH, SIGMOID, SQRT, ABS, RELU = 8, 9, 10, 11, 12, 13, 14, 15  # unary 8..23
CLAMP, POWC, RPOW, RECIP = 16, 17, 18, 19
SUM, SUMDIM, MEAN, MEANDIM = 24, 25, 26, 27                               # reduce 24..27
MM = 28                                                                   # matmul
SELECT, SLICE, UNSQUEEZE, SQUEEZE, SQUEEZEDIM, VIEW, T, PERMUTE = range(32, 40)  # strided
BINARY_LAST, UNARY_LAST, REDUCE_LAST, STRIDED_FIRST, STRIDED_LAST = 7, 23, 27, 32, 47

_ROWS = [
    # name          code        node                  arity family     saves
    Op("leaf",       LEAF,       "AccumulateGrad",        0, "source",  ""),
    Op("const",      CONST,      None,                    0, "source",  ""),
    Op("freed",      FREED,      None,                    0, "source",  ""),
    Op("add",        ADD,        "AddBackward0",          2, "binary",  ""),
    Op("sub",        SUB,        "SubBackward0",          2, "binary",  ""),
    Op("mul",        MUL,        "MulBackward0",          2, "binary",  "ab"),
    Op("div",        DIV,        "DivBackward0",          2, "binary",  "ab"),
    Op("pow",        POW,        "PowBackward1",          2, "binary",  "aby"),
    Op("neg",        NEG,        "NegBackward0",          1, "unary",   ""),
    Op("exp",        EXP,        "ExpBackward0",          1, "unary",   "y"),
    Op("log",        LOG,        "LogBackward0",          1, "unary",   "a"),
    Op("tanh",       TANH,       "TanhBackward0",         1, "unary",   "y"),
    Op("sigmoid",    SIGMOID,    "SigmoidBackward0",      1, "unary",   "y"),
    Op("sqrt",       SQRT,       "SqrtBackward0",         1, "unary",   "y"),
    Op("abs",        ABS,        "AbsBackward0",          1, "unary",   "a"),
    Op("relu",       RELU,       "ReluBackward0",         1, "unary",   "y"),
    Op("clamp",      CLAMP,      "ClampBackward1",        1, "unary",   "a"),
    Op("powc",       POWC,       "PowBackward0",          1, "unary",   "a"),
    Op("rpow",       RPOW,       "PowBackward2",          1, "unary",   "ay"),
    Op("reciprocal", RECIP,      "ReciprocalBackward0",   1, "unary",   "y"),
    Op("sum",        SUM,        "SumBackward0",          1, "reduce",  ""),
    Op("sumdim",     SUMDIM,     "SumBackward1",          1, "reduce",  ""),
    Op("mean",       MEAN,       "MeanBackward0",         1, "reduce",  ""),
    Op("meandim",    MEANDIM,    "MeanBackward1",         1, "reduce",  ""),
    Op("mm",         MM,         "MmBackward0",           2, "matmul",  "ab"),
    Op("select",     SELECT,     "SelectBackward0",       1, "strided", ""),
    Op("slice",      SLICE,      "SliceBackward0",        1, "strided", ""),
    Op("unsqueeze",  UNSQUEEZE,  "UnsqueezeBackward0",    1, "strided", ""),
    Op("squeeze",    SQUEEZE,    "SqueezeBackward0",      1, "strided", ""),
    Op("squeezedim", SQUEEZEDIM, "SqueezeBackward1",      1, "strided", ""),
    Op("view",       VIEW,       "ViewBackward0",         1, "strided", ""),
    Op("t",          T,          "TBackward0",            1, "strided", ""),
    Op("permute",    PERMUTE,    "PermuteBackward0",      1, "strided", ""),
]

TABLE = {row.name: row for row in _ROWS}
BY_CODE = {row.code: row for row in _ROWS}
NUM_OPS = STRIDED_LAST + 1
SCALAR = 64          # added to an opcode when all operands are Python-float scalars
MAXD = 8             # most dimensions a tensor may have

# NEEDS[op] is a bit mask of the values the backward reads: 1 = a, 2 = b, 4 = the result.
NEEDS = [0] * NUM_OPS
for _row in _ROWS:
    NEEDS[_row.code] = (("a" in _row.saves) * 1 + ("b" in _row.saves) * 2
                        + ("y" in _row.saves) * 4)

# Names PyTorch gives a node when a Python number stands in one operand slot.
CONST_FIRST_NODE = {SUB: "RsubBackward1"}   # 2 - x
CONST_SECOND_NODE = {SUB: "SubBackward0", ADD: "AddBackward0", MUL: "MulBackward0",
                     DIV: "DivBackward0"}


def node_name(op, a, b):
    """The PyTorch node name for a record with opcode ``op`` (SCALAR bit removed)."""
    if a < 0 and op in CONST_FIRST_NODE:
        return CONST_FIRST_NODE[op]
    return BY_CODE[op].node


def code_of(name):
    return TABLE[name].code


def _check_consistent():
    bounds = {"source": (0, 2), "binary": (ADD, BINARY_LAST), "unary": (NEG, UNARY_LAST),
              "reduce": (SUM, REDUCE_LAST), "matmul": (MM, MM),
              "strided": (STRIDED_FIRST, STRIDED_LAST)}
    for row in _ROWS:
        lo, hi = bounds[row.family]
        assert lo <= row.code <= hi, row
    assert len(BY_CODE) == len(_ROWS) and NUM_OPS <= SCALAR


_check_consistent()
