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

Op = namedtuple("Op", "name const node arity family saves scalar array grads domain kernel ints",
               defaults=(None,) * 6)
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
#        'i' an int list PyTorch saves (indices, where's condition). A record's int list is
#        kept in any case (cat/stack's operand slots are structure, as PyTorch keeps sizes),
#        so a backward that reads no saved value runs again after a free, as in PyTorch.
# Elementwise rows (binary, unary) also hold their math, from which ``codegen.py`` writes
# the kernels' per-element switches, the Tensor methods and the create_graph backward:
#   scalar  the forward on Python floats (x, y the operands; c, c2 constants),
#   array   the forward on NumPy arrays,
#   grads   each operand's gradient, an expression of g (the incoming gradient), x, y,
#           out (the result), c, c2 and w (where's condition), with where(cond, a, b),
#           sign(x), exp/log/sqrt/sin/cos/tanh/sinh/cosh/trunc, rsqrt(x) = 1 / sqrt(x),
#           floordiv(x, y) = Python's x // y, fnma(a, b, c) = c - a*b rounded once and
#           powc(x, e) = ATen's x ** e (codegen_formulas.py); what it reads must match
#           ``saves``.
#           Each is PyTorch's (derivatives.yaml, FunctionsManual.cpp) in its order of
#           operations, so that a float32 gradient rounds as PyTorch's does;
#   domain  where the Python-float forward cannot raise (else NumPy computes it);
#   kernel  the per-element forward in Numba (replays), where ``scalar`` is Python's only;
#   ints    an integer or bool tensor: None, computed in the default float dtype; "keep",
#           its own dtype; "keep:K" its own, but bool raises PyTorch's NotImplementedError
#           for kernel K; "K" raises it for every dtype that is not floating point.
_ROWS = [
    # name          constant     node                     arity family     saves
    Op("leaf",       "LEAF",       "AccumulateGrad",          0, "source",  ""),
    Op("const",      "CONST",      None,                      0, "source",  ""),
    Op("link",       "LINK",       None,                      0, "source",  ""),
    Op("add",        "ADD",        "AddBackward0",            2, "binary",  "",
       "x + y", "np.add(x, y)", ("g", "g")),
    Op("sub",        "SUB",        "SubBackward0",            2, "binary",  "",
       "x - y", "np.subtract(x, y)", ("g", "-g")),
    Op("mul",        "MUL",        "MulBackward0",            2, "binary",  "ab",
       "x * y", "np.multiply(x, y)", ("g * y", "g * x")),
    Op("div",        "DIV",        "DivBackward0",            2, "binary",  "ab",
       "x / y", "np.true_divide(x, y)", ("g / y", "-g * ((x / y) / y)"), "y != 0.0"),
    # d/dx x^y = y x^(y-1) (0 where y == 0); d/dy x^y = x^y log x (0 where x == 0, y >= 0)
    Op("pow",        "POW",        "PowBackward1",            2, "binary",  "aby",
       "x ** y", "np.power(x, y)",
       ("where(y == 0.0, 0.0, g * (y * x ** (y - 1.0)))",
        "where(x == 0.0, where(y >= 0.0, 0.0, g * (out * log(x))), g * (out * log(x)))"),
       "x > 0.0"),
    # the larger gets the gradient, a tie splits it, NaN passes it (PyTorch's masks)
    Op("maximum",    "MAXIMUM",    "MaximumBackward0",        2, "binary",  "ab",
       "x if x > y or x != x else y", "np.maximum(x, y)",
       ("where(x == y, g / 2.0, where(x < y, 0.0, g))",
        "where(x == y, g / 2.0, where(y < x, 0.0, g))")),
    Op("minimum",    "MINIMUM",    "MinimumBackward0",        2, "binary",  "ab",
       "x if x < y or x != x else y", "np.minimum(x, y)",
       ("where(x == y, g / 2.0, where(x > y, 0.0, g))",
        "where(x == y, g / 2.0, where(y > x, 0.0, g))")),
    Op("where",      "WHERE",      "WhereBackward0",          2, "binary",  "i",
       "x if w else y", "np.where(w, x, y)", ("where(w, g, 0.0)", "where(w, 0.0, g)")),
    # atan(x / y) in the quadrant of (y, x); PyTorch's atan2_backward: r = 1 / (x*x + y*y),
    # 0 where x*x + y*y is 0 (x and y 0, or their squares underflow; a subnormal sum leaves
    # r inf), then (g * y) * r and (g * -x) * r
    Op("atan2",      "ATAN2",      "Atan2Backward0",          2, "binary",  "ab",
       "math.atan2(x, y)", "np.arctan2(x, y)",
       ("g * y * where(x * x + y * y == 0.0, 0.0, 1.0 / (x * x + y * y))",
        "g * -x * where(x * x + y * y == 0.0, 0.0, 1.0 / (x * x + y * y))")),
    # sqrt(x^2 + y^2) (libm's hypot, as ATen's: math.hypot is Python's own); PyTorch's
    # gradients read the result: (g * x) / out and (g * y) / out (NaN where both are 0)
    Op("hypot",      "HYPOT",      "HypotBackward0",          2, "binary",  "aby",
       "float(np.hypot(x, y))", "np.hypot(x, y)", ("g * x / out", "g * y / out"),
       kernel="math.hypot(x, y)"),
    # log(e^x + e^y) as ATen: max(x, y) + log1p(e^-|x - y|), x itself where x == y is inf
    # (x + log 2 where x == y: log1p(1)); d/dx = 1 / (1 + e^(y - x)), d/dy = 1 / (1 + e^(x - y))
    Op("logaddexp",  "LOGADDEXP",  "LogaddexpBackward0",      2, "binary",  "ab",
       "x + 0.6931471805599453 if x == y else max(x, y) + math.log1p(math.exp(-abs(x - y)))",
       "np.logaddexp(x, y)", ("g / (1.0 + exp(y - x))", "g / (1.0 + exp(x - y))")),
    # x - trunc(x / y) y, exactly (C's fmod: the sign of x); d/dx = 1, d/dy = -trunc(x / y),
    # PyTorch's -grad * x.div(y, rounding_mode="trunc") (trunc of the rounded quotient)
    Op("fmod",       "FMOD",       "FmodBackward1",           2, "binary",  "ab",
       "math.fmod(x, y)", "np.fmod(x, y)", ("g", "-g * trunc(x / y)"), kernel="np.fmod(x, y)"),
    # x - floor(x / y) y as ATen: fmod(x, y), plus y where that is not 0 and its sign is not
    # y's (so a zero keeps x's sign: Python's and NumPy's % give y's); d/dx = 1, d/dy = the
    # floor division of x by y, negated (ATen's div_floor, Python's and NumPy's //)
    Op("remainder",  "REMAINDER",  "RemainderBackward1",      2, "binary",  "ab",
       "math.copysign(0.0, x) if x % y == 0.0 else x % y", "_remainder(x, y)",
       ("g", "-g * floordiv(x, y)")),
    Op("neg",        "NEG",        "NegBackward0",            1, "unary",   "",
       "-x", "np.negative(x)", ("-g",), ints="keep"),
    Op("exp",        "EXP",        "ExpBackward0",            1, "unary",   "y",
       "math.exp(x)", "np.exp(x)", ("g * out",), "x < 709.0"),
    Op("log",        "LOG",        "LogBackward0",            1, "unary",   "a",
       "math.log(x)", "np.log(x)", ("g / x",), "x > 0.0"),
    # ATen's tanh_backward kernel a * (1 - b*b), its 1 - b*b contracted to one FMA by GCC
    Op("tanh",       "TANH",       "TanhBackward0",           1, "unary",   "y",
       "math.tanh(x)", "np.tanh(x)", ("g * fnma(out, out, 1.0)",)),
    # 1 / (1 + e^-x), as PyTorch's kernel: accurate to the last bits far below 0 too (the
    # form 0.5 (tanh(x/2) + 1) underflows there: 0 at x = -100, 6e-7 off at -5 in float32)
    Op("sigmoid",    "SIGMOID",    "SigmoidBackward0",        1, "unary",   "y",
       "1.0 / (1.0 + math.exp(-x))", "1.0 / (1.0 + np.exp(-x))",
       ("g * (1.0 - out) * out",), "x > -709.0"),
    Op("sqrt",       "SQRT",       "SqrtBackward0",           1, "unary",   "y",
       "math.sqrt(x)", "np.sqrt(x)", ("g / (2.0 * out)",), "x >= 0.0"),
    Op("abs",        "ABS",        "AbsBackward0",            1, "unary",   "a",
       "abs(x)", "np.abs(x)", ("g * sign(x)",), ints="keep"),
    # PyTorch's threshold_backward: 0 where the result is <= 0, so NaN passes the grad
    # the 0 branch reads out (0 there): with create_graph the gradient depends on out, as
    # PyTorch's threshold_backward(g, out) does, so it requires grad when out does
    Op("relu",       "RELU",       "ReluBackward0",           1, "unary",   "y",
       "x if not x <= 0.0 else 0.0", "np.maximum(x, 0.0)", ("where(out <= 0.0, out * 0.0, g)",),
       ints="keep"),
    # 1 where clamping left x as it was (the bounds included), 0 elsewhere and for NaN
    Op("clamp",      "CLAMP",      "ClampBackward1",          1, "unary",   "ay",
       "min(max(x, c), c2)", "np.clip(x, c, c2)", ("where(x == out, g, 0.0)",)),
    Op("powc",       "POWC",       "PowBackward0",            1, "unary",   "a",
       "x ** c", "np.power(x, c)",
       ("0.0 if c == 0.0 else g * (c * powc(x, c - 1.0))",), "x > 0.0"),
    Op("rpow",       "RPOW",       "PowBackward2",            1, "unary",   "ay",
       "c ** x", "np.power(c, x)",
       ("where(x >= 0.0, 0.0, g * (out * log(c))) if c == 0.0 else g * (out * log(c))",),
       "c > 0.0"),
    Op("reciprocal", "RECIP",      "ReciprocalBackward0",     1, "unary",   "y",
       "1.0 / x", "np.reciprocal(x)", ("g * -(out * out)",), "x != 0.0"),   # PyTorch's order
    Op("sin",        "SIN",        "SinBackward0",            1, "unary",   "a",
       "math.sin(x)", "np.sin(x)", ("g * cos(x)",), "abs(x) < 1e300"),
    Op("cos",        "COS",        "CosBackward0",            1, "unary",   "a",
       "math.cos(x)", "np.cos(x)", ("-g * sin(x)",), "abs(x) < 1e300"),
    Op("log1p",      "LOG1P",      "Log1PBackward0",          1, "unary",   "a",
       "math.log1p(x)", "np.log1p(x)", ("g / (1.0 + x)",), "x > -1.0"),
    Op("expm1",      "EXPM1",      "Expm1Backward0",          1, "unary",   "y",
       "math.expm1(x)", "np.expm1(x)", ("g * (out + 1.0)",), "x < 709.0"),
    Op("rsqrt",      "RSQRT",      "RsqrtBackward0",          1, "unary",   "y",
       "1.0 / math.sqrt(x)", "1.0 / np.sqrt(x)", ("(-0.5 * g) * (out * out * out)",),
       "x > 0.0"),
    Op("to",         "CAST",       "ToCopyBackward0",         1, "unary",   "",
       "x", "x", ("g",)),
    Op("clone",      "CLONE",      "CloneBackward0",          1, "unary",   "",
       "x", "np.copy(x)", ("g",)),
    # d/dx erf x = 2/sqrt(pi) e^(-x^2)
    Op("erf",        "ERF",        "ErfBackward0",            1, "unary",   "a",
       "math.erf(x)", "_erf(x)", ("g * (1.1283791670955126 * exp(-(x * x)))",)),
    # d/dx atan x = 1/(1 + x^2)
    Op("atan",       "ATAN",       "AtanBackward0",           1, "unary",   "a",
       "math.atan(x)", "np.arctan(x)", ("g / (1.0 + x * x)",)),
    # d/dx tan x = 1 + tan^2 x, from the result as PyTorch: g * (1 + out^2)
    Op("tan",        "TAN",        "TanBackward0",            1, "unary",   "y",
       "math.tan(x)", "np.tan(x)", ("g * (1.0 + out * out)",), "abs(x) < 1e300"),
    # d/dx sinh x = cosh x, d/dx cosh x = sinh x
    Op("sinh",       "SINH",       "SinhBackward0",           1, "unary",   "a",
       "math.sinh(x)", "np.sinh(x)", ("g * cosh(x)",), "abs(x) < 710.0"),
    Op("cosh",       "COSH",       "CoshBackward0",           1, "unary",   "a",
       "math.cosh(x)", "np.cosh(x)", ("g * sinh(x)",), "abs(x) < 710.0"),
    # d/dx asin x = 1/sqrt(1 - x^2) = -d/dx acos x, PyTorch's (-x * x + 1).rsqrt()
    Op("asin",       "ASIN",       "AsinBackward0",           1, "unary",   "a",
       "math.asin(x)", "np.arcsin(x)", ("g * rsqrt(-x * x + 1.0)",), "abs(x) <= 1.0"),
    Op("acos",       "ACOS",       "AcosBackward0",           1, "unary",   "a",
       "math.acos(x)", "np.arccos(x)", ("g * -rsqrt(-x * x + 1.0)",), "abs(x) <= 1.0"),
    # d/dx asinh x = 1/sqrt(x^2 + 1), d/dx acosh x = 1/sqrt(x^2 - 1), d/dx atanh x = 1/(1 - x^2)
    Op("asinh",      "ASINH",      "AsinhBackward0",          1, "unary",   "a",
       "math.asinh(x)", "np.arcsinh(x)", ("g * rsqrt(x * x + 1.0)",)),
    Op("acosh",      "ACOSH",      "AcoshBackward0",          1, "unary",   "a",
       "math.acosh(x)", "np.arccosh(x)", ("g * rsqrt(x * x - 1.0)",), "x >= 1.0"),
    Op("atanh",      "ATANH",      "AtanhBackward0",          1, "unary",   "a",
       "math.atanh(x)", "np.arctanh(x)", ("g / (1.0 - x * x)",), "abs(x) < 1.0"),
    # d/dx log2 x = 1/(x ln 2), d/dx log10 x = 1/(x ln 10), d/dx 2^x = 2^x ln 2 (PyTorch's
    # constants, in its order of operations); exp2 is libm's (2.0 ** x is pow's)
    Op("log2",       "LOG2",       "Log2Backward0",           1, "unary",   "a",
       "math.log2(x)", "np.log2(x)", ("g / (x * 0.6931471805599453)",), "x > 0.0"),
    Op("log10",      "LOG10",      "Log10Backward0",          1, "unary",   "a",
       "math.log10(x)", "np.log10(x)", ("g / (x * 2.3025850929940456)",), "x > 0.0"),
    Op("exp2",       "EXP2",       "Exp2Backward0",           1, "unary",   "y",
       "_exp2(x)", "np.exp2(x)", ("g * out * 0.6931471805599453",), "x < 1024.0",
       "np.exp2(x)"),
    # fmod(x, c) and remainder(x, c) of a Python number c (PyTorch's Scalar overloads: one
    # input, the gradient g); their forwards are the binary rows' (fmod, remainder)
    Op("fmodc",      "FMODC",      "FmodBackward0",           1, "unary",   "",
       "math.fmod(x, c)", "np.fmod(x, c)", ("g",), kernel="np.fmod(x, c)"),
    Op("remainderc", "REMAINDERC", "RemainderBackward0",      1, "unary",   "",
       "math.copysign(0.0, x) if x % c == 0.0 else x % c", "_remainder(x, c)", ("g",)),
    # Steps: PyTorch's gradient is zeros_like(grad), 0 where the incoming one is inf or NaN
    # too. sign is 0 at -0 and for NaN (ATen's (0 < x) - (x < 0); NumPy's sign gives NaN);
    # floor, ceil, trunc and round (half to even) keep the sign of -0 and of x in (-1, 0)
    Op("sign",       "SIGN",       "SignBackward0",           1, "unary",   "",
       "1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0",
       "np.where(x < 0, -1, x > 0).astype(x.dtype)", ("0.0",), ints="keep"),
    Op("floor",      "FLOOR",      "FloorBackward0",          1, "unary",   "",
       "math.copysign(float(math.floor(x)), x)", "np.floor(x)", ("0.0",), "x - x == 0.0",
       "np.floor(x)", "keep:floor_vml_cpu"),
    Op("ceil",       "CEIL",       "CeilBackward0",           1, "unary",   "",
       "math.copysign(float(math.ceil(x)), x)", "np.ceil(x)", ("0.0",), "x - x == 0.0",
       "np.ceil(x)", "keep:ceil_vml_cpu"),
    Op("trunc",      "TRUNC",      "TruncBackward0",          1, "unary",   "",
       "math.copysign(float(math.trunc(x)), x)", "np.trunc(x)", ("0.0",), "x - x == 0.0",
       "np.trunc(x)", "keep:trunc_vml_cpu"),
    # an integer tensor's round is a copy (NumPy's rint would go through float64)
    Op("round",      "ROUND",      "RoundBackward0",          1, "unary",   "",
       "math.copysign(float(round(x)), x)", "np.rint(x) if x.dtype.kind == 'f' else x.copy()",
       ("0.0",), "x - x == 0.0", "np.rint(x)", "keep:round_vml_cpu"),
    # round(decimals=c): ATen's round_decimals kernel (and NumPy's round), in the tensor's
    # dtype: rint(x * p) / p with p = 10 ** c, or rint(x / p) * p with p = 10 ** -c. Its
    # own method (step_methods._round_decimals) computes the forwards; the scalar column is
    # the replays' float64 one (replay_elementwise.round_decimals: float32's)
    Op("rounddec",   "ROUNDDEC",   "RoundBackward1",          1, "unary",   "",
       "np.rint(x * 10.0 ** c) / 10.0 ** c if c >= 0.0 else np.rint(x / 10.0 ** -c) * 10.0 ** -c",
       "_round_decimals(x, c)", ("0.0",)),
    # x - trunc(x), as ATen (frac(-0.0) and frac(-2.0) are +0)
    Op("frac",       "FRAC",       "FracBackward0",           1, "unary",   "",
       "x - math.copysign(float(math.trunc(x)), x)", "x - np.trunc(x)", ("g",), "x - x == 0.0",
       "x - np.trunc(x)", "frac_cpu"),
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
    Op("as_strided", "ASSTRIDED",  "AsStridedBackward0",      1, "strided", ""),
    Op("index",      "INDEX",      "IndexBackward0",          1, "gather",  "i"),
    Op("index_select", "INDEXSELECT", "IndexSelectBackward0", 1, "gather",  "i"),
    Op("gather",     "GATHER",     "GatherBackward0",         1, "gather",  "i"),
    Op("maxdim",     "MAXDIM",     "MaxBackward0",            1, "gather",  "i"),
    Op("mindim",     "MINDIM",     "MinBackward0",            1, "gather",  "i"),
    Op("cat",        "CAT",        "CatBackward0",           -1, "multi",   ""),
    Op("stack",      "STACK",      "StackBackward0",         -1, "multi",   ""),
    Op("copyslices", "COPYSLICES", "torch::autograd::CopySlices", 2, "setitem", "i"),
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

# TIER[op]: the sweep tier an array record of op needs (engine.py takes the least tier that
# covers a tape, so a tape compiles only the kernels it uses): 0 basic, the ops the
# kernels do with loops of their own (no per-element switch of all ops is compiled); 1
# core, the other elementwise ops; 2 full, lanes, gathers, cat/stack and CopySlices; 3
# POWC, basic for the exponent 2 only (recording.py checks its constant).
_BASIC = ("add", "sub", "mul", "neg", "relu", "clamp", "tanh", "to", "clone")
TIER = tuple(3 if row.name == "powc" else
             (0 if row.name in _BASIC else 1) if row.family in ("binary", "unary") else
             2 if row.family in ("lane", "gather", "multi", "setitem") else 0
             for row in _ROWS)

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
