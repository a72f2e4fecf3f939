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
#         derivative from x, y, c), 'reduce' (linear reductions), 'lane' (nonlinear
#         reductions and softmax along dims), 'matmul', 'strided' (a view of its input),
#         'gather' (elements picked by saved flat indices), 'multi' (cat/stack of a list),
#         'setitem' (a copy with a slice replaced), 'compare' (no gradient: recorded only
#         inside a tg.compile recording, so that a replay can recompute branch conditions).
# arity: tensor inputs listed in next_functions (a Python-number operand of a binary op
#        still takes its place as (None, 0), as in PyTorch); -1: a list of inputs.
# saves: the values the backward reads: 'a' first operand, 'b' second, 'y' the result,
#        'i' an int list (indices or operand slots) kept in the value buffer,
#        'w' the condition of where, whose slot the record keeps in c.

# Opcodes are grouped by family so the sweep dispatches with range checks.
LEAF, CONST, LINK = 0, 1, 2
ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, WHERE = range(3, 11)              # binary
NEG, EXP, LOG, TANH, SIGMOID, SQRT, ABS, RELU = range(16, 24)                # unary
CLAMP, POWC, RPOW, RECIP, SIN, COS, LOG1P, EXPM1, RSQRT, CAST, CLONE, ERF = range(24, 36)
SUM, SUMDIM, MEAN, MEANDIM = range(48, 52)                                   # reduce
MAXALL, MINALL, AMAX, AMIN, PROD, PRODDIM, VAR, STD, NORM, LOGSUMEXP, SOFTMAX, \
    LOGSOFTMAX = range(52, 64)                                               # lane
MM, BMM, DOT, MV = range(64, 68)                                             # matmul
SELECT, SLICE, UNSQUEEZE, SQUEEZE, SQUEEZEDIM, VIEW, T, PERMUTE, TRANSPOSE, \
    EXPAND = range(72, 82)                                                   # strided
INDEX, INDEXSELECT, GATHER, MAXDIM, MINDIM = range(96, 101)                  # gather
CAT, STACK = 104, 105                                                        # multi
COPYSLICES = 108                                                             # setitem
GT, LT, GE, LE, EQ, NE, CASTNG = range(112, 119)                             # compare
FAMILY_RANGES = {"source": (0, 2), "binary": (3, 15), "unary": (16, 47), "reduce": (48, 51),
                 "lane": (52, 63), "matmul": (64, 71), "strided": (72, 95),
                 "gather": (96, 103), "multi": (104, 107), "setitem": (108, 111),
                 "compare": (112, 119)}
BINARY_LAST, UNARY_LAST, REDUCE_LAST, LANE_LAST, MATMUL_LAST = 15, 47, 51, 63, 71
STRIDED_LAST, GATHER_LAST, MULTI_LAST = 95, 103, 107

_ROWS = [
    # name          code        node                    arity family     saves
    Op("leaf",       LEAF,       "AccumulateGrad",          0, "source",  ""),
    Op("const",      CONST,      None,                      0, "source",  ""),
    Op("link",       LINK,      None,                      0, "source",  ""),
    Op("add",        ADD,        "AddBackward0",            2, "binary",  ""),
    Op("sub",        SUB,        "SubBackward0",            2, "binary",  ""),
    Op("mul",        MUL,        "MulBackward0",            2, "binary",  "ab"),
    Op("div",        DIV,        "DivBackward0",            2, "binary",  "ab"),
    Op("pow",        POW,        "PowBackward1",            2, "binary",  "aby"),
    Op("maximum",    MAXIMUM,    "MaximumBackward0",        2, "binary",  "ab"),
    Op("minimum",    MINIMUM,    "MinimumBackward0",        2, "binary",  "ab"),
    Op("where",      WHERE,      "WhereBackward0",          2, "binary",  "w"),
    Op("neg",        NEG,        "NegBackward0",            1, "unary",   ""),
    Op("exp",        EXP,        "ExpBackward0",            1, "unary",   "y"),
    Op("log",        LOG,        "LogBackward0",            1, "unary",   "a"),
    Op("tanh",       TANH,       "TanhBackward0",           1, "unary",   "y"),
    Op("sigmoid",    SIGMOID,    "SigmoidBackward0",        1, "unary",   "y"),
    Op("sqrt",       SQRT,       "SqrtBackward0",           1, "unary",   "y"),
    Op("abs",        ABS,        "AbsBackward0",            1, "unary",   "a"),
    Op("relu",       RELU,       "ReluBackward0",           1, "unary",   "y"),
    Op("clamp",      CLAMP,      "ClampBackward1",          1, "unary",   "a"),
    Op("powc",       POWC,       "PowBackward0",            1, "unary",   "a"),
    Op("rpow",       RPOW,       "PowBackward2",            1, "unary",   "ay"),
    Op("reciprocal", RECIP,      "ReciprocalBackward0",     1, "unary",   "y"),
    Op("sin",        SIN,        "SinBackward0",            1, "unary",   "a"),
    Op("cos",        COS,        "CosBackward0",            1, "unary",   "a"),
    Op("log1p",      LOG1P,      "Log1PBackward0",          1, "unary",   "a"),
    Op("expm1",      EXPM1,      "Expm1Backward0",          1, "unary",   "y"),
    Op("erf",        ERF,        "ErfBackward0",            1, "unary",   "a"),
    Op("rsqrt",      RSQRT,      "RsqrtBackward0",          1, "unary",   "y"),
    Op("to",         CAST,       "ToCopyBackward0",         1, "unary",   ""),
    Op("clone",      CLONE,      "CloneBackward0",          1, "unary",   ""),
    Op("sum",        SUM,        "SumBackward0",            1, "reduce",  ""),
    Op("sumdim",     SUMDIM,     "SumBackward1",            1, "reduce",  ""),
    Op("mean",       MEAN,       "MeanBackward0",           1, "reduce",  ""),
    Op("meandim",    MEANDIM,    "MeanBackward1",           1, "reduce",  ""),
    Op("max",        MAXALL,     "MaxBackward1",            1, "lane",    "ay"),
    Op("min",        MINALL,     "MinBackward1",            1, "lane",    "ay"),
    Op("amax",       AMAX,       "AmaxBackward0",           1, "lane",    "ay"),
    Op("amin",       AMIN,       "AminBackward0",           1, "lane",    "ay"),
    Op("prod",       PROD,       "ProdBackward0",           1, "lane",    "ay"),
    Op("proddim",    PRODDIM,    "ProdBackward1",           1, "lane",    "ay"),
    Op("var",        VAR,        "VarBackward0",            1, "lane",    "a"),
    Op("std",        STD,        "StdBackward0",            1, "lane",    "ay"),
    Op("norm",       NORM,       "LinalgVectorNormBackward0", 1, "lane",  "ay"),
    Op("logsumexp",  LOGSUMEXP,  "LogsumexpBackward0",      1, "lane",    "ay"),
    Op("softmax",    SOFTMAX,    "SoftmaxBackward0",        1, "lane",    "y"),
    Op("log_softmax", LOGSOFTMAX, "LogSoftmaxBackward0",    1, "lane",    "y"),
    Op("mm",         MM,         "MmBackward0",             2, "matmul",  "ab"),
    Op("bmm",        BMM,        "BmmBackward0",            2, "matmul",  "ab"),
    Op("dot",        DOT,        "DotBackward0",            2, "matmul",  "ab"),
    Op("mv",         MV,         "MvBackward0",             2, "matmul",  "ab"),
    Op("select",     SELECT,     "SelectBackward0",         1, "strided", ""),
    Op("slice",      SLICE,      "SliceBackward0",          1, "strided", ""),
    Op("unsqueeze",  UNSQUEEZE,  "UnsqueezeBackward0",      1, "strided", ""),
    Op("squeeze",    SQUEEZE,    "SqueezeBackward0",        1, "strided", ""),
    Op("squeezedim", SQUEEZEDIM, "SqueezeBackward1",        1, "strided", ""),
    Op("view",       VIEW,       "ViewBackward0",           1, "strided", ""),
    Op("t",          T,          "TBackward0",              1, "strided", ""),
    Op("permute",    PERMUTE,    "PermuteBackward0",        1, "strided", ""),
    Op("transpose",  TRANSPOSE,  "TransposeBackward0",      1, "strided", ""),
    Op("expand",     EXPAND,     "ExpandBackward0",         1, "strided", ""),
    Op("index",      INDEX,      "IndexBackward0",          1, "gather",  "i"),
    Op("index_select", INDEXSELECT, "IndexSelectBackward0", 1, "gather",  "i"),
    Op("gather",     GATHER,     "GatherBackward0",         1, "gather",  "i"),
    Op("maxdim",     MAXDIM,     "MaxBackward0",            1, "gather",  "i"),
    Op("mindim",     MINDIM,     "MinBackward0",            1, "gather",  "i"),
    Op("cat",        CAT,        "CatBackward0",           -1, "multi",   "i"),
    Op("stack",      STACK,      "StackBackward0",         -1, "multi",   "i"),
    Op("copyslices", COPYSLICES, "CopySlices",              2, "setitem", "i"),
    Op("gt",         GT,         None,                      2, "compare", ""),
    Op("lt",         LT,         None,                      2, "compare", ""),
    Op("ge",         GE,         None,                      2, "compare", ""),
    Op("le",         LE,         None,                      2, "compare", ""),
    Op("eq",         EQ,         None,                      2, "compare", ""),
    Op("ne",         NE,         None,                      2, "compare", ""),
    Op("castng",     CASTNG,     None,                      1, "compare", ""),
]

TABLE = {row.name: row for row in _ROWS}
BY_CODE = {row.code: row for row in _ROWS}
NUM_OPS = 120
SCALAR = 128         # added to an opcode when all operands are Python-float scalars
MAXD = 8             # most dimensions a tensor may have

# NEEDS[op] is a bit mask of the values the backward reads: 1 = a, 2 = b, 4 = the result,
# 8 = the int list of the record (indices, operand slots), 16 = the operand in slot c.
NEEDS = [0] * NUM_OPS
for _row in _ROWS:
    NEEDS[_row.code] = (("a" in _row.saves) * 1 + ("b" in _row.saves) * 2
                        + ("y" in _row.saves) * 4 + ("i" in _row.saves) * 8
                        + ("w" in _row.saves) * 16)

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
    for row in _ROWS:
        lo, hi = FAMILY_RANGES[row.family]
        assert lo <= row.code <= hi, row
    assert len(BY_CODE) == len(_ROWS) and max(BY_CODE) < NUM_OPS <= SCALAR


_check_consistent()
