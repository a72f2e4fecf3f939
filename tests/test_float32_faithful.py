"""Issue 10: a float32 gradient is PyTorch's to the last bit where PyTorch's can be had.

For every elementwise row of the op table (ops.py, families unary and binary), in float32,
for arrays (256 elements: ATen's vectorized loops) and for 0-d tensors (tapegrad's scalar
path), the gradient of each input is compared bitwise with PyTorch's, at the elements where
the two forwards agree bitwise (a formula that reads the result must read the same value).
Forwards differ at many elements: tapegrad's are NumPy's or Python's math, PyTorch's are
MKL's vector math or SLEEF; only the backward formulas are under test here.

Bitwise equality is the rule. A few gradients call a transcendental function of their
own that PyTorch takes from a library tapegrad cannot call (ATen's vectorized SLEEF/MKL
functions, 1-ulp accurate; the Numba sweep calls glibc's libm, or pow in float64): sin's
cos(x), cos's sin(x), erf's exp(-x^2), pow's x ** (c - 1) for an exponent that is not one
of ATen's special cases, pow(x, y)'s x ** (y - 1) and log(x). Those are bounded in ulps
instead (ULPS below). The float64 gradients are checked against finite differences in
test_ops.py and test_grad_faithful.py, and here against PyTorch's as well (the same
formulas: the same order of operations in float64).

``PYTHONPATH=. python tests/test_float32_faithful.py [float64]`` prints, per case, the
mismatches at equal forward values (arrays / 0-d) and the largest distance in ulps.
"""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad.ops import _ROWS

torch = pytest.importorskip("torch")

F = np.float32
N, N0 = 256, 64          # elements of the array case, values of the 0-d case
_rng = np.random.default_rng(10)
POS = (np.abs(_rng.standard_normal(N)) + 0.05).astype(F)      # |N(0,1)| + 0.05
SIGNED = (_rng.standard_normal(N) * 1.5).astype(F)
OTHER = (np.abs(_rng.standard_normal(N)) + 0.05).astype(F)
OTHER[::7] = POS[::7]                                          # ties for maximum/minimum
G = _rng.standard_normal(N).astype(F)                          # the upstream gradient
UNIT = _rng.uniform(-0.95, 0.95, N).astype(F)                  # asin, acos, atanh, tan
GT1 = (POS + 1.0).astype(F)                                    # acosh
WIDE = (SIGNED * 4.0).astype(F)                                # fmod, remainder: quotients
COND = _rng.random(N) < 0.5

# name: (function of (module, x[, y]) for tapegrad and torch alike, input, second input)
UNARY = {
    "neg": (lambda m, x: -x, SIGNED),
    "exp": (lambda m, x: x.exp(), SIGNED),
    "log": (lambda m, x: x.log(), POS),
    "tanh": (lambda m, x: x.tanh(), SIGNED),
    "sigmoid": (lambda m, x: x.sigmoid(), SIGNED),
    "sqrt": (lambda m, x: x.sqrt(), POS),
    "abs": (lambda m, x: x.abs(), SIGNED),
    "relu": (lambda m, x: x.relu(), SIGNED),
    "clamp": (lambda m, x: x.clamp(-0.5, 0.8), SIGNED),
    "rpow": (lambda m, x: 1.7 ** x, SIGNED),
    "rpow_e": (lambda m, x: 2.718281828459045 ** x, SIGNED),
    "reciprocal": (lambda m, x: x.reciprocal(), POS),
    "sin": (lambda m, x: x.sin(), SIGNED),
    "cos": (lambda m, x: x.cos(), SIGNED),
    "log1p": (lambda m, x: x.log1p(), POS),
    "expm1": (lambda m, x: x.expm1(), SIGNED),
    "rsqrt": (lambda m, x: x.rsqrt(), POS),
    "to": (lambda m, x: x.to(m.float64), SIGNED),
    "clone": (lambda m, x: x.clone(), SIGNED),
    "erf": (lambda m, x: x.erf(), SIGNED),
    "atan": (lambda m, x: x.atan(), SIGNED),
    "sign": (lambda m, x: x.sign(), SIGNED),
    "floor": (lambda m, x: x.floor(), SIGNED),
    "ceil": (lambda m, x: x.ceil(), SIGNED),
    "trunc": (lambda m, x: x.trunc(), SIGNED),
    "round": (lambda m, x: x.round(), SIGNED),
    "rounddec": (lambda m, x: x.round(decimals=2), SIGNED),
    "frac": (lambda m, x: x.frac(), SIGNED),
    "tan": (lambda m, x: x.tan(), UNIT),
    "sinh": (lambda m, x: x.sinh(), SIGNED),
    "cosh": (lambda m, x: x.cosh(), SIGNED),
    "asin": (lambda m, x: x.asin(), UNIT),
    "acos": (lambda m, x: x.acos(), UNIT),
    "asinh": (lambda m, x: x.asinh(), SIGNED),
    "acosh": (lambda m, x: x.acosh(), GT1),
    "atanh": (lambda m, x: x.atanh(), UNIT),
    "log2": (lambda m, x: x.log2(), POS),
    "log10": (lambda m, x: x.log10(), POS),
    "exp2": (lambda m, x: x.exp2(), SIGNED),
    "fmodc(0.7)": (lambda m, x: x.fmod(0.7), WIDE),
    "remainderc(-0.3)": (lambda m, x: x % -0.3, WIDE),
}
# powc: ATen's special exponents (2, 3, +-0.5, -1, -2 and their c - 1) and others
EXPONENTS = (0.0, 1.0, 2.0, 3.0, 4.0, 0.5, 1.5, -0.5, -1.0, -2.0, -1.5, 1.3)
for _c in EXPONENTS:
    UNARY[f"powc({_c})"] = ((lambda c: lambda m, x: x ** c)(_c), POS)
BINARY = {
    "add": (lambda m, x, y: x + y, SIGNED, OTHER),
    "sub": (lambda m, x, y: x - y, SIGNED, OTHER),
    "mul": (lambda m, x, y: x * y, SIGNED, OTHER),
    "div": (lambda m, x, y: x / y, SIGNED, OTHER),
    "pow": (lambda m, x, y: x ** y, POS, SIGNED),
    "maximum": (lambda m, x, y: m.maximum(x, y), POS, OTHER),
    "minimum": (lambda m, x, y: m.minimum(x, y), POS, OTHER),
    "where": (lambda m, x, y: m.where(x > 0.5, x, y), POS, OTHER),
    "atan2": (lambda m, x, y: m.atan2(x, y), SIGNED, OTHER),
    "hypot": (lambda m, x, y: m.hypot(x, y), SIGNED, OTHER),
    "logaddexp": (lambda m, x, y: m.logaddexp(x, y), SIGNED, OTHER),
    "fmod": (lambda m, x, y: m.fmod(x, y), WIDE, OTHER),
    "remainder": (lambda m, x, y: m.remainder(x, y), WIDE, OTHER),
}
# one tensor in both operands: its two shares accumulate
UNARY["mul_self"] = (lambda m, x: x * x, SIGNED)
UNARY["div_self"] = (lambda m, x: x / (x + 1), POS)
# a Python number in one operand: PyTorch casts it to float32 first (c / t is 1/t * c)
UNARY["div_number"] = (lambda m, x: x / 0.37, SIGNED)
UNARY["rdiv_number"] = (lambda m, x: 0.37 / x, SIGNED)
UNARY["mul_number"] = (lambda m, x: 0.37 * x, SIGNED)
UNARY["rsub_number"] = (lambda m, x: 0.37 - x, SIGNED)
# The gradients that call a function PyTorch takes from SLEEF or MKL's vector math (arrays
# and 0-d alike; 1-ulp accurate, glibc's libm in the sweep), at most this many ulps apart:
# sin's cos(x), cos's sin(x), erf's exp(-x^2), pow(x, y)'s x ** (y - 1) and log(x), and
# powc(1.5)'s x.pow(0.5), which ATen computes with its sqrt kernel (MKL's, not correctly
# rounded: the forward of sqrt differs too). For arrays, powc's x ** (c - 1) at exponents
# ATen has no special case for is SLEEF's powf (its 0-d is pow in float64, as the sweep's).
# One ulp of the function becomes up to two after g * f rounds; pow's up to four.
# So are logaddexp's exp(y - x) (arrays and 0-d) and, for arrays, sinh's cosh(x) and cosh's
# sinh(x) (SLEEF's vector functions; the 0-d ones are libm's in both).
ULPS_0D = {"sin": 2, "cos": 2, "erf": 2, "pow": 4, "powc(1.5)": 2, "logaddexp": 1}
ULPS = {**ULPS_0D, **{f"powc({c})": 4 for c in (-0.5, -2.0, -1.5, 1.3)}, "sinh": 2, "cosh": 2}
# fmod's and remainder's gradient of the divisor, -g * trunc(x / y) (floor), is -0 where the
# quotient rounds to 0 and g > 0 (or -0 and g < 0); PyTorch's leaf keeps that -0, tapegrad's
# sweep adds every gradient into zeros (-0 + 0 is +0): zeros compare by value for these two
ZERO_SIGN = ("fmod", "remainder")
CASES = [(name, 1) for name in UNARY] + [(name, 2) for name in BINARY]


def test_every_elementwise_row_has_a_case():
    rows = {r.name for r in _ROWS if r.family in ("unary", "binary")}
    names = {name.split("(")[0].split("_")[0] for name, _ in CASES}
    assert rows <= names, rows - names


def _run(module, fn, arity, xs, g):
    """(the forward's value, each input's gradient) as arrays of the inputs' dtype."""
    dt = np.asarray(xs[0]).dtype
    ts = [module.tensor(x, requires_grad=True) for x in xs]
    out = fn(module, *ts)
    gout = module.tensor(g, dtype=out.dtype)
    out.backward(gout)
    return (np.asarray(out.detach().numpy(), dt),
            [np.asarray(t.grad.numpy(), dt) for t in ts])


def _compare(name, arity, zero_d, dtype=F):
    """[(mismatches where the forwards agree, largest ulp distance there, count of agreeing
    elements)] for each input."""
    fn, *inputs = (UNARY[name] if arity == 1 else BINARY[name])
    inputs = [x.astype(dtype) for x in inputs[:arity]]
    bits, ints = (np.uint32, np.int32) if dtype == F else (np.uint64, np.int64)
    if zero_d:
        runs = [(_run(torch, fn, arity, [x[i] for x in inputs], G[i].astype(dtype)),
                 _run(tg, fn, arity, [x[i] for x in inputs], G[i].astype(dtype)))
                for i in range(N0)]
        want_y = np.array([r[0][0] for r in runs])
        got_y = np.array([r[1][0] for r in runs])
        want_g = [np.array([r[0][1][k] for r in runs]) for k in range(arity)]
        got_g = [np.array([r[1][1][k] for r in runs]) for k in range(arity)]
    else:
        (want_y, want_g), (got_y, got_g) = (_run(torch, fn, arity, inputs, G.astype(dtype)),
                                            _run(tg, fn, arity, inputs, G.astype(dtype)))
    same = want_y.view(bits) == got_y.view(bits)
    out = []
    if name in ZERO_SIGN:
        want_g, got_g = [[g + dtype(0.0) for g in gs] for gs in (want_g, got_g)]   # -0: +0
    for w, h in zip(want_g, got_g):     # same-signed gradients: ulps apart = ints apart
        assert w.dtype == h.dtype == dtype
        ws, hs = w[same].view(ints).astype(object), h[same].view(ints).astype(object)
        out.append((int((ws != hs).sum()), int(max(abs(ws - hs), default=0)),
                    int(same.sum())))
    return out


@pytest.mark.parametrize("zero_d", [False, True], ids=["array", "0d"])
@pytest.mark.parametrize("name,arity", CASES, ids=[c[0] for c in CASES])
def test_float32_gradient_is_pytorchs(name, arity, zero_d):
    _check(name, arity, zero_d, F)


@pytest.mark.parametrize("zero_d", [False, True], ids=["array", "0d"])
@pytest.mark.parametrize("name,arity", CASES, ids=[c[0] for c in CASES])
def test_float64_gradient_is_pytorchs(name, arity, zero_d):
    _check(name, arity, zero_d, np.float64)


def _check(name, arity, zero_d, dtype):
    if name == "tanh" and torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("ATen's kernels built without FMA: its tanh_backward rounds 1 - y*y")
    bound = (ULPS_0D if zero_d else ULPS).get(name, 0)
    for k, (bad, ulps, compared) in enumerate(_compare(name, arity, zero_d, dtype)):
        # the forwards agree at enough elements for the comparison to mean something
        assert compared >= (N0 if zero_d else N) // 4, (name, compared)
        if bound == 0:
            assert bad == 0, f"{name}: input {k}: {bad} of {compared} gradients differ " \
                             f"from PyTorch's (up to {ulps} ulps)"
        else:
            assert ulps <= bound, f"{name}: input {k}: {ulps} ulps from PyTorch's"


if __name__ == "__main__":      # python tests/test_float32_faithful.py [float64]
    import sys
    dtype = np.float64 if sys.argv[1:] == ["float64"] else F
    for name, arity in CASES:
        res = [_compare(name, arity, zd, dtype) for zd in (False, True)]
        print(f"{name:12s}", "  ".join(
            f"in{k}: {a[0]:3d}/{b[0]:3d} (ulps {a[1]}/{b[1]})"
            for k, (a, b) in enumerate(zip(*res))))
