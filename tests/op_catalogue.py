"""The elementwise unary ops the tests run, listed once: name -> input domain.

Each op here is a Tensor method of its name taking no argument, ``x.name()``, the same in
tapegrad and in PyTorch. The test files derive their cases from this table:
  tests/test_ops.py             finite differences, node names and PyTorch, four shapes
                                (and through it tests/test_create_graph.py, twice
                                differentiated);
  tests/test_properties.py      an op of the random graphs;
  tests/test_replay_kernels.py  the forward replay sweep, on an array and on a scalar;
  tests/test_readonly.py        a backward under Numba's bounds checking.
Each file maps a domain to its own inputs (``test_ops._DOMAIN``, ...). So adding an
elementwise unary op to the tests is one line below; ``test_ops.py``'s
``test_every_unary_row_is_in_the_catalogue`` fails for a unary row of the op table that has
neither a line here nor a place in ``SPECIAL``.

Domains:
  any   defined and smooth on all reals;
  kink  defined on all reals, not differentiable at 0 (finite differences keep away from 0);
  nz    a pole at 0, defined on both sides;
  pos   defined for x > 0 (or on a wider set that holds the positive numbers);
  unit  defined and smooth for |x| < 1 (asin, acos, atanh: infinite slopes or poles at -1
        and 1; tan, smooth on a wider set that holds it: poles at +-pi/2);
  gt1   defined for x > 1 (acosh: an infinite slope at 1);
  step  piecewise constant (frac: piecewise x + constant), jumps at multiples of 0.5 only
        (floor, ceil, trunc, frac at the integers, round at the half-integers, sign at 0):
        finite differences keep away from them.
"""
from operator import methodcaller

DOMAINS = ("any", "kink", "nz", "pos", "step", "unit", "gt1")

UNARY = {
    "neg": "any",
    "exp": "any",
    "log": "pos",
    "tanh": "any",
    "sigmoid": "any",
    "sqrt": "pos",
    "abs": "kink",
    "relu": "kink",
    "reciprocal": "nz",
    "sin": "any",
    "cos": "any",
    "log1p": "pos",
    "expm1": "any",
    "rsqrt": "pos",
    "clone": "any",
    "erf": "any",
    "atan": "any",
    "sign": "step",
    "floor": "step",
    "ceil": "step",
    "trunc": "step",
    "round": "step",
    "frac": "step",
    "tan": "unit",
    "sinh": "any",
    "cosh": "any",
    "asin": "unit",
    "acos": "unit",
    "asinh": "any",
    "acosh": "gt1",
    "atanh": "unit",
    "log2": "pos",
    "log10": "pos",
    "exp2": "any",
}

# Unary rows of the op table that are not a plain ``x.name()``: each test file keeps its own
# cases for them (constants, several spellings, dtypes).
SPECIAL = {
    "clamp": "x.clamp(min, max): its bounds",
    "powc": "x ** c, x.pow(c): its exponent",
    "rpow": "c ** x: its base",
    "to": "x.to(dtype), x.float(), x.double(): a cast",
    "rounddec": "x.round(decimals=d): its decimals",
    "fmodc": "x.fmod(c), tg.fmod(x, c): its divisor",
    "remainderc": "x.remainder(c), x % c: its divisor",
}


def call(name):
    """``x.name()``, for tapegrad's and PyTorch's tensors alike."""
    return methodcaller(name)


assert set(UNARY.values()) <= set(DOMAINS)
assert not set(UNARY) & set(SPECIAL)
