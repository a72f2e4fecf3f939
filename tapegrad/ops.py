"""The op table: the single source of truth for every primitive on the tape.

One row per primitive: its name, the PyTorch node name its ``grad_fn`` shows, how many
tensor inputs it has, its family (which loop of the sweeps handles it) and which values its
backward reads. Opcodes are dense indices in table order (rows of a family stay together);
``FAMILY[op]`` gives the family, so adding a row renumbers nothing by hand.

A record on the tape is three numbers (see ``layout``): a head ``op | flags | a << SHIFT``
with the first operand's slot ``a``, a number ``b`` (the second operand's slot, or a
constant), and ``v`` (a scalar record's value, or an array record's metadata row).
"""
from collections import namedtuple

Op = namedtuple("Op", "name const node arity family saves")
# family: 'source' (no inputs), 'binary' (broadcasting elementwise), 'unary' (elementwise,
#         derivative from x, y and constants), 'reduce' (linear reductions), 'lane'
#         (nonlinear reductions and softmax along dims), 'matmul', 'strided' (a view of its
#         input), 'gather' (elements picked by saved flat indices), 'multi' (cat/stack of a
#         list), 'setitem' (a copy with positions replaced), 'custom' (an output of a
#         user's autograd.Function: its backward runs in Python), 'compare' (no gradient:
#         recorded only inside a tg.compile recording, so that a replay recomputes it).
# arity: tensor inputs listed in next_functions (a Python-number operand of a binary op
#        still takes its place as (None, 0), as in PyTorch); -1: a list of inputs.
# saves: the values the backward reads: 'a' first operand, 'b' second, 'y' the result,
#        'i' an int list (indices, operand slots, where's condition).
_ROWS = [
    # name          constant     node                     arity family     saves
    Op("leaf",       "LEAF",       "AccumulateGrad",          0, "source",  ""),
    Op("const",      "CONST",      None,                      0, "source",  ""),
    Op("link",       "LINK",       None,                      0, "source",  ""),
    Op("add",        "ADD",        "AddBackward0",            2, "binary",  ""),
    Op("sub",        "SUB",        "SubBackward0",            2, "binary",  ""),
    Op("mul",        "MUL",        "MulBackward0",            2, "binary",  "ab"),
    Op("div",        "DIV",        "DivBackward0",            2, "binary",  "ab"),
    Op("pow",        "POW",        "PowBackward1",            2, "binary",  "aby"),
    Op("maximum",    "MAXIMUM",    "MaximumBackward0",        2, "binary",  "ab"),
    Op("minimum",    "MINIMUM",    "MinimumBackward0",        2, "binary",  "ab"),
    Op("where",      "WHERE",      "WhereBackward0",          2, "binary",  "i"),
    Op("neg",        "NEG",        "NegBackward0",            1, "unary",   ""),
    Op("exp",        "EXP",        "ExpBackward0",            1, "unary",   "y"),
    Op("log",        "LOG",        "LogBackward0",            1, "unary",   "a"),
    Op("tanh",       "TANH",       "TanhBackward0",           1, "unary",   "y"),
    Op("sigmoid",    "SIGMOID",    "SigmoidBackward0",        1, "unary",   "y"),
    Op("sqrt",       "SQRT",       "SqrtBackward0",           1, "unary",   "y"),
    Op("abs",        "ABS",        "AbsBackward0",            1, "unary",   "a"),
    Op("relu",       "RELU",       "ReluBackward0",           1, "unary",   "y"),
    Op("clamp",      "CLAMP",      "ClampBackward1",          1, "unary",   "ay"),
    Op("powc",       "POWC",       "PowBackward0",            1, "unary",   "a"),
    Op("rpow",       "RPOW",       "PowBackward2",            1, "unary",   "ay"),
    Op("reciprocal", "RECIP",      "ReciprocalBackward0",     1, "unary",   "y"),
    Op("sin",        "SIN",        "SinBackward0",            1, "unary",   "a"),
    Op("cos",        "COS",        "CosBackward0",            1, "unary",   "a"),
    Op("log1p",      "LOG1P",      "Log1PBackward0",          1, "unary",   "a"),
    Op("expm1",      "EXPM1",      "Expm1Backward0",          1, "unary",   "y"),
    Op("rsqrt",      "RSQRT",      "RsqrtBackward0",          1, "unary",   "y"),
    Op("to",         "CAST",       "ToCopyBackward0",         1, "unary",   ""),
    Op("clone",      "CLONE",      "CloneBackward0",          1, "unary",   ""),
    Op("erf",        "ERF",        "ErfBackward0",            1, "unary",   "a"),
    Op("sum",        "SUM",        "SumBackward0",            1, "reduce",  ""),
    Op("sumdim",     "SUMDIM",     "SumBackward1",            1, "reduce",  ""),
    Op("mean",       "MEAN",       "MeanBackward0",           1, "reduce",  ""),
    Op("meandim",    "MEANDIM",    "MeanBackward1",           1, "reduce",  ""),
    Op("max",        "MAXALL",     "MaxBackward1",            1, "lane",    "ay"),
    Op("min",        "MINALL",     "MinBackward1",            1, "lane",    "ay"),
    Op("amax",       "AMAX",       "AmaxBackward0",           1, "lane",    "ay"),
    Op("amin",       "AMIN",       "AminBackward0",           1, "lane",    "ay"),
    Op("prod",       "PROD",       "ProdBackward0",           1, "lane",    "ay"),
    Op("proddim",    "PRODDIM",    "ProdBackward1",           1, "lane",    "ay"),
    Op("var",        "VAR",        "VarBackward0",            1, "lane",    "a"),
    Op("std",        "STD",        "StdBackward0",            1, "lane",    "ay"),
    Op("norm",       "NORM",       "LinalgVectorNormBackward0", 1, "lane",  "ay"),
    Op("logsumexp",  "LOGSUMEXP",  "LogsumexpBackward0",      1, "lane",    "ay"),
    Op("softmax",    "SOFTMAX",    "SoftmaxBackward0",        1, "lane",    "y"),
    Op("log_softmax", "LOGSOFTMAX", "LogSoftmaxBackward0",    1, "lane",    "y"),
    Op("mm",         "MM",         "MmBackward0",             2, "matmul",  "ab"),
    Op("bmm",        "BMM",        "BmmBackward0",            2, "matmul",  "ab"),
    Op("dot",        "DOT",        "DotBackward0",            2, "matmul",  "ab"),
    Op("mv",         "MV",         "MvBackward0",             2, "matmul",  "ab"),
    Op("select",     "SELECT",     "SelectBackward0",         1, "strided", ""),
    Op("slice",      "SLICE",      "SliceBackward0",          1, "strided", ""),
    Op("unsqueeze",  "UNSQUEEZE",  "UnsqueezeBackward0",      1, "strided", ""),
    Op("squeeze",    "SQUEEZE",    "SqueezeBackward0",        1, "strided", ""),
    Op("squeezedim", "SQUEEZEDIM", "SqueezeBackward1",        1, "strided", ""),
    Op("view",       "VIEW",       "ViewBackward0",           1, "strided", ""),
    Op("t",          "T",          "TBackward0",              1, "strided", ""),
    Op("permute",    "PERMUTE",    "PermuteBackward0",        1, "strided", ""),
    Op("transpose",  "TRANSPOSE",  "TransposeBackward0",      1, "strided", ""),
    Op("expand",     "EXPAND",     "ExpandBackward0",         1, "strided", ""),
    Op("index",      "INDEX",      "IndexBackward0",          1, "gather",  "i"),
    Op("index_select", "INDEXSELECT", "IndexSelectBackward0", 1, "gather",  "i"),
    Op("gather",     "GATHER",     "GatherBackward0",         1, "gather",  "i"),
    Op("maxdim",     "MAXDIM",     "MaxBackward0",            1, "gather",  "i"),
    Op("mindim",     "MINDIM",     "MinBackward0",            1, "gather",  "i"),
    Op("cat",        "CAT",        "CatBackward0",           -1, "multi",   "i"),
    Op("stack",      "STACK",      "StackBackward0",         -1, "multi",   "i"),
    Op("copyslices", "COPYSLICES", "CopySlices",              2, "setitem", "i"),
    Op("function",   "FUNCTION",   None,                     -1, "custom",  "i"),
    Op("gt",         "GT",         None,                      2, "compare", ""),
    Op("lt",         "LT",         None,                      2, "compare", ""),
    Op("ge",         "GE",         None,                      2, "compare", ""),
    Op("le",         "LE",         None,                      2, "compare", ""),
    Op("eq",         "EQ",         None,                      2, "compare", ""),
    Op("ne",         "NE",         None,                      2, "compare", ""),
    Op("castng",     "CASTNG",     None,                      1, "compare", ""),
]

FAMILIES = ("source", "binary", "unary", "reduce", "lane", "matmul", "strided", "gather",
            "multi", "setitem", "custom", "compare")
(F_SOURCE, F_BINARY, F_UNARY, F_REDUCE, F_LANE, F_MATMUL, F_STRIDED, F_GATHER, F_MULTI,
 F_SETITEM, F_CUSTOM, F_COMPARE) = range(len(FAMILIES))

TABLE = {row.name: row for row in _ROWS}
BY_CODE = dict(enumerate(_ROWS))
NUM_OPS = len(_ROWS)
FAMILY = tuple(FAMILIES.index(row.family) for row in _ROWS)   # FAMILY[op]
for _code, _row in enumerate(_ROWS):
    globals()[_row.const] = _code          # ADD, MUL, ... : the opcodes
del _code, _row
MAXD = 8             # most dimensions a tensor may have

# NEEDS[op]: bit mask of the values the backward reads: 1 = a, 2 = b, 4 = the result,
# 8 = the int list of the record (indices, operand slots, a condition).
NEEDS = tuple(("a" in row.saves) * 1 + ("b" in row.saves) * 2 + ("y" in row.saves) * 4
              + ("i" in row.saves) * 8 for row in _ROWS)

# Names PyTorch gives a node when a Python number stands in one operand slot.
CONST_FIRST_NODE = {SUB: "RsubBackward1"}   # noqa: F821  (2 - x)


def node_name(op, const_first=False):
    """The PyTorch node name for a record with opcode ``op``."""
    if const_first and op in CONST_FIRST_NODE:
        return CONST_FIRST_NODE[op]
    return BY_CODE[op].node


def code_of(name):
    return list(TABLE).index(name)


def _check_consistent():
    seen = set()
    for code, row in enumerate(_ROWS):       # a family's rows stay together
        assert row.family in FAMILIES, row
        if code and row.family != _ROWS[code - 1].family:
            assert row.family not in seen, f"family {row.family} split at {row.name}"
        seen.add(row.family)
    assert NUM_OPS < 256                     # an opcode takes the head's low byte


_check_consistent()
