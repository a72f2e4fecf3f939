"""The math functions of the "ops10" rows: tan, sinh, cosh, asin, acos, asinh, acosh, atanh,
log2, log10, exp2 (and PyTorch's aliases arctan, arcsin, arccos, arcsinh, arccosh, arctanh),
hypot, logaddexp, fmod and remainder (of a tensor, or of a Python number: FmodBackward0,
RemainderBackward0), and ``%``.

tests/test_ops.py checks every row at random points (finite differences, PyTorch's values,
gradients and node names; test_create_graph.py twice differentiated, test_float32_faithful
bit for bit, test_compile_matches_eager replays); here: closed forms, the edges of each
domain and the sign conventions of fmod and remainder against PyTorch in float32 and
float64, arrays and 0-d Python-float scalars, dtypes, errors, in-place forms and tg.compile.
"""
import math

import numpy as np
import pytest

import tapegrad as tg

from conftest import fd_grad, t64

pytestmark = [pytest.mark.usefixtures("isolated"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

inf, nan = math.inf, math.nan
DTYPES = ["float32", "float64"]
UNARY = ("tan sinh cosh asin acos asinh acosh atanh log2 log10 exp2").split()
ALIASES = {"arctan": "atan", "arcsin": "asin", "arccos": "acos", "arcsinh": "asinh",
           "arccosh": "acosh", "arctanh": "atanh"}
BINARY = ("hypot", "logaddexp", "fmod", "remainder")


def _np(t):
    return np.asarray(t.detach().numpy(), np.float64)


def _run(L, fn, values, dtype, grad=True):
    """fn of tensors of library L (tg or torch) made from ``values`` (a 0-d value: a
    Python-float scalar); (the result, each input's gradient for an incoming 1) as float64
    arrays."""
    xs = [L.tensor(v, dtype=getattr(L, dtype), requires_grad=grad) for v in values]
    y = fn(L, *xs)
    if not grad:
        return _np(y), []
    (y.sum() if y.ndim else y).backward()
    return _np(y), [np.asarray(x.grad.numpy(), np.float64) for x in xs]


def _same(a, b, exact=False, rtol=1e-6):
    """Values equal to rtol (exact: to the bit, the sign of 0 included; NaN equals NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    if exact:
        assert np.array_equal(a, b, equal_nan=True), (a, b)
        assert np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)])), (a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True)


# ----- closed forms ------------------------------------------------------------------------
CLOSED = {  # name: (function, derivative, points)
    "tan": (np.tan, lambda x: 1 + np.tan(x) ** 2, [-1.2, -0.3, 0.0, 0.4, 1.5]),
    "sinh": (np.sinh, np.cosh, [-3.0, -0.5, 0.0, 0.7, 4.0]),
    "cosh": (np.cosh, np.sinh, [-3.0, -0.5, 0.25, 0.7, 4.0]),
    "asin": (np.arcsin, lambda x: 1 / np.sqrt(1 - x * x), [-0.99, -0.5, 0.0, 0.3, 0.9]),
    "acos": (np.arccos, lambda x: -1 / np.sqrt(1 - x * x), [-0.99, -0.5, 0.0, 0.3, 0.9]),
    "asinh": (np.arcsinh, lambda x: 1 / np.sqrt(x * x + 1), [-30.0, -0.5, 0.0, 0.3, 9.0]),
    "acosh": (np.arccosh, lambda x: 1 / np.sqrt(x * x - 1), [1.01, 1.5, 2.0, 10.0, 1e3]),
    "atanh": (np.arctanh, lambda x: 1 / (1 - x * x), [-0.99, -0.5, 0.0, 0.3, 0.9]),
    "log2": (np.log2, lambda x: 1 / (x * math.log(2)), [1e-3, 0.5, 1.0, 8.0, 1e5]),
    "log10": (np.log10, lambda x: 1 / (x * math.log(10)), [1e-3, 0.5, 1.0, 8.0, 1e5]),
    "exp2": (np.exp2, lambda x: np.exp2(x) * math.log(2), [-20.0, -0.5, 0.0, 3.0, 10.0]),
}


@pytest.mark.parametrize("zero_d", [False, True], ids=["array", "0d"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_values_and_gradients_are_the_closed_forms(name, zero_d):
    f, df, points = CLOSED[name]
    pts = np.array(points)
    for v in (pts if zero_d else [pts]):
        x = t64(v, requires_grad=True)
        y = getattr(x, name)()
        assert y.grad_fn.name() == name.capitalize() + "Backward0"
        assert type(y._v) is float if zero_d else y.shape == pts.shape
        (y.sum() if y.ndim else y).backward()
        np.testing.assert_allclose(_np(y), f(v), rtol=1e-15, atol=1e-300)
        np.testing.assert_allclose(x.grad.numpy(), df(v), rtol=1e-14)
        inner = np.asarray(v, np.float64)[np.abs(np.asarray(v)) < 100]   # and differences
        np.testing.assert_allclose(
            fd_grad(lambda u: float(np.sum(getattr(t64(u), name)().numpy())), inner),
            df(inner), rtol=1e-6, atol=1e-6)


def test_the_aliases_are_the_ops():
    x = t64([0.2, -0.6], requires_grad=True)
    for alias, name in ALIASES.items():
        v = x + 1.5 if name == "acosh" else x
        a, b = getattr(v, alias)(), getattr(v, name)()
        assert a.grad_fn.name() == b.grad_fn.name() == name.capitalize() + "Backward0"
        np.testing.assert_array_equal(_np(a), _np(b))
        assert getattr(tg, alias)(v).grad_fn.name() == a.grad_fn.name()
    for name in UNARY + list(ALIASES) + list(BINARY):
        assert callable(getattr(tg, name)) and getattr(tg, name).__name__ == name


# ----- fmod and remainder: the sign conventions, and the gradient of the divisor -------------
# (dividend, divisor): C's fmod keeps the dividend's sign, remainder the divisor's; a zero
# result keeps fmod's sign (the dividend's) in both; d/dy is -trunc(x / y) for fmod (of the
# rounded quotient) and the floor division of x by y (Python's //) for remainder
MOD_POINTS = [(-4.0, 2.0), (4.0, -2.0), (-0.0, 2.0), (0.0, -2.0), (-3.5, 2.0), (3.5, -2.0),
              (-3.5, -2.0), (7.25, 1.5), (-7.25, 1.5), (1.0, 0.1), (-1.0, 0.1), (0.3, 0.1),
              (5.0, 0.0), (-5.0, 0.0), (inf, 2.0), (2.0, inf), (-2.0, inf), (2.0, -inf),
              (nan, 1.0), (1.0, nan), (1e30, 3.0), (7.0, 7.0), (-7.0, 7.0), (0.0, 0.0)]


def _fmod_closed(x, y):
    return math.fmod(x, y) if y != 0 and math.isfinite(x) and not math.isnan(y) else nan


def _remainder_closed(x, y):
    if y == 0 or not math.isfinite(x) or math.isnan(y):
        return nan
    r = x % y
    return math.copysign(0.0, x) if r == 0 else r


@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_fmod_and_remainder_closed_forms_float64(name):
    """Values to the bit (signs of zeros included) and gradients: 1 and -trunc(x / y) or
    -(x // y) at each point, as arrays and as 0-d scalars, a tensor divisor and a number."""
    closed = _fmod_closed if name == "fmod" else _remainder_closed
    for x, y in MOD_POINTS:
        want = closed(x, y)
        if y != 0 and math.isfinite(x) and math.isfinite(y):
            q = x / y
            dy = -float(np.trunc(q)) if name == "fmod" else -float(np.floor_divide(x, y))
        else:
            dy = None
        for shape in ((), (2,)):
            a = t64(np.full(shape, x), requires_grad=True)
            b = t64(np.full(shape, y), requires_grad=True)
            z = getattr(a, name)(b)
            assert z.grad_fn.name() == name.capitalize() + "Backward1"
            z.sum().backward()
            _same(_np(z), np.full(shape, want), exact=True)
            np.testing.assert_array_equal(a.grad.numpy(), np.ones(shape))
            if dy is not None:
                np.testing.assert_array_equal(b.grad.numpy(), np.full(shape, dy) + 0.0)
            c = t64(np.full(shape, x), requires_grad=True)
            w = getattr(c, name)(y)                     # a Python number: one input
            assert w.grad_fn.name() == name.capitalize() + "Backward0"
            assert len(w.grad_fn.next_functions) == 1
            w.sum().backward()
            _same(_np(w), np.full(shape, want), exact=True)
            np.testing.assert_array_equal(c.grad.numpy(), np.ones(shape))


def test_the_rounded_quotient_decides_the_gradient_as_in_pytorch():
    """fmod(1, 0.1): 0.1 is a little over 1/10, so the remainder is 0.0999... and the floor
    division 9; PyTorch's fmod gradient is -trunc(1 / 0.1) = -10 (the rounded quotient),
    remainder's -9 (ATen's div_floor, Python's //)."""
    a, b = t64(1.0, requires_grad=True), t64(0.1, requires_grad=True)
    a.fmod(b).backward()
    assert b.grad.item() == -10.0
    b.grad = None
    (a % b).backward()
    assert b.grad.item() == -9.0 and 1.0 // 0.1 == 9.0


# ----- the edges of the domains, against PyTorch ---------------------------------------------
UNARY_EDGES = {
    "tan": [0.0, -0.0, 1.0, -1.5, 1e10, inf, nan],
    "sinh": [0.0, -0.0, 1.0, 89.0, -700.0, 711.0, inf, -inf, nan],
    "cosh": [0.0, 1.0, 89.0, -700.0, 711.0, inf, -inf, nan],
    "asin": [0.0, -0.0, 1.0, -1.0, 0.999999, -0.999999, 1.5, inf, nan],
    "acos": [0.0, -0.0, 1.0, -1.0, 0.999999, -0.999999, 1.5, nan],
    "asinh": [0.0, -0.0, 1e-300, 1e300, -inf, nan],
    "acosh": [1.0, 1.0000001, 0.5, 1e300, inf, nan],
    "atanh": [0.0, -0.0, 1.0, -1.0, 0.9999999, -0.9999999, 1.5, nan],
    "log2": [0.0, -0.0, 1.0, 8.0, -1.0, 1e-320, inf, nan],
    "log10": [0.0, -0.0, 1.0, 1000.0, -1.0, 1e-320, inf, nan],
    "exp2": [0.0, -0.0, 10.0, 127.0, 128.0, 1023.0, 1024.0, -1100.0, -150.0, inf, -inf, nan],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_edges_match_pytorch(name, dtype):
    """acosh at 1 (0, gradient inf), atanh at and near +-1 (+-inf), asin/acos at +-1,
    log2/log10 of 0 (-inf, gradient inf) and of negatives (NaN), exp2's overflow and
    underflow, sinh/cosh past their range, tan of inf (NaN): values and gradients, as arrays
    and 0-d scalars (the fast path, and past its domain the NumPy path)."""
    torch = pytest.importorskip("torch")
    vals = UNARY_EDGES[name]
    for v in [vals] + vals:
        fn = (lambda L, x: getattr(x, name)())
        (y, (g,)), (ty, (tgr,)) = _run(tg, fn, [v], dtype), _run(torch, fn, [v], dtype)
        _same(y, ty)
        assert np.array_equal(np.signbit(y[y == 0]), np.signbit(ty[ty == 0])), (v, y, ty)
        _same(g, tgr, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY)
def test_binary_edges_match_pytorch(name, dtype):
    """Negative operands, zero divisors (NaN), infinities and NaN, equal operands (hypot,
    logaddexp of inf and inf): fmod's and remainder's values to the bit, sign of zero
    included, and every gradient, as arrays and as 0-d scalars."""
    torch = pytest.importorskip("torch")
    fn = (lambda L, x, y: getattr(L, name)(x, y))
    exact = name in ("fmod", "remainder")
    sets = [([p[0] for p in MOD_POINTS], [p[1] for p in MOD_POINTS])] + \
        [(x, y) for x, y in MOD_POINTS]
    for xs, ys in sets:
        (z, gs), (tz, tgs) = _run(tg, fn, [xs, ys], dtype), _run(torch, fn, [xs, ys], dtype)
        _same(z, tz, exact=exact)
        for g, tgr in zip(gs, tgs):
            _same(g, tgr, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [2.0, -2.0, 0.1, -0.7, 0.0, inf, 3, -5])
@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_a_number_divisor_matches_pytorch(name, c, dtype):
    """fmod(x, c) / remainder(x, c) of a Python number: PyTorch casts it to the tensor's
    dtype first (float32's 0.1), and records one input; values to the bit, gradient 1."""
    torch = pytest.importorskip("torch")
    xs = [p[0] for p in MOD_POINTS]
    for v in [xs] + xs:
        res = []
        for L in (tg, torch):
            x = L.tensor(v, dtype=getattr(L, dtype), requires_grad=True)
            z = getattr(x, name)(c)
            assert z.grad_fn.name() == name.capitalize() + "Backward0"
            (z.sum() if z.ndim else z).backward()
            res.append((_np(z), x.grad.numpy()))
        _same(res[0][0], res[1][0], exact=True)
        np.testing.assert_array_equal(res[0][1], res[1][1])


# ----- dtypes ---------------------------------------------------------------------------------
def test_result_dtypes_are_pytorchs():
    torch = pytest.importorskip("torch")
    cases = [
        lambda L: L.tensor([5, -7, 3]).fmod(2),
        lambda L: L.tensor([5, -7, 3]).remainder(L.tensor([2, 3, -2])),
        lambda L: L.tensor([5, -7, 3]) % -2,
        lambda L: L.tensor([5, -7, 3]).fmod(2.5),
        lambda L: L.tensor([5, -7, 3]).remainder(L.tensor([1.5, 2.0, -2.5])),
        lambda L: L.tensor([True, False]).fmod(2),
        lambda L: L.remainder(2, L.tensor([3, -4])),
        lambda L: L.remainder(2.5, L.tensor([3, -4])),
        lambda L: L.tensor([1.5, -2.0], dtype=L.float64).fmod(L.tensor(0.75)),
        lambda L: L.tensor([1.5, -2.0]).hypot(L.tensor(0.75, dtype=L.float64)),
        lambda L: L.tensor([5, -7]).hypot(L.tensor([1.0, 2.0])),
        lambda L: L.tensor([5, -7]).logaddexp(L.tensor([1.0, 2.0], dtype=L.float64)),
    ] + [(lambda n: lambda L: getattr(L.tensor([2, 3]), n)())(n) for n in UNARY]
    for make in cases:
        a, b = make(tg), make(torch)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_allclose(a.numpy().astype(np.float64), b.numpy().astype(np.float64),
                                   rtol=1e-6, equal_nan=True)


# ----- errors ---------------------------------------------------------------------------------
def _error(L, make):
    with pytest.raises(Exception) as e:
        make(L)
    return type(e.value), str(e.value)


@pytest.mark.parametrize("make", [
    lambda L: L.tensor([1.0]).hypot(2.0),
    lambda L: L.tensor([1.0]).logaddexp(2),
    lambda L: L.tensor([1, 2]).hypot(L.tensor([3, 4])),
    lambda L: L.tensor([1, 2]).logaddexp(L.tensor([3, 4])),
    lambda L: L.tensor([True]).fmod(L.tensor([True])),
    lambda L: L.tensor([True]).remainder(True),
    lambda L: L.tensor([5, 6]).fmod(0),
    lambda L: L.tensor([5, 6]).remainder(L.tensor([1, 0])),
    lambda L: L.tensor([5, 6]) % 0,
    lambda L: L.tensor([1, 2]).fmod_(2.5),
    lambda L: L.tensor([1.0], requires_grad=True).tan_(),
], ids=["hypot-number", "logaddexp-number", "hypot-int", "logaddexp-int", "fmod-bool",
        "remainder-bool", "fmod-by-0", "remainder-by-0", "mod-by-0", "int-fmod_-float",
        "leaf-tan_"])
def test_bad_input_gets_pytorchs_error(make):
    torch = pytest.importorskip("torch")
    assert _error(tg, make) == _error(torch, make)


def test_other_bad_input():
    torch = pytest.importorskip("torch")
    x = tg.tensor([1.0, 2.0])
    for L, t in ((tg, x), (torch, torch.tensor([1.0, 2.0]))):
        with pytest.raises(TypeError, match=r"fmod\(\) received an invalid combination of "
                                            r"arguments - got \(str\)"):
            t.fmod("a")
        with pytest.raises(TypeError):
            L.fmod(2.0, t)                 # fmod takes no number first
    with pytest.raises(TypeError, match=r"hypot\(\): argument 'other' \(position 1\) must be "
                                        r"Tensor, not float"):
        tg.hypot(x, 2.0)


def test_a_number_first_remainder_has_no_derivative():
    """2 % t (remainder(Scalar, Tensor)): values as PyTorch's; PyTorch records a
    NotImplemented node whose backward raises, tapegrad raises its error at the call."""
    torch = pytest.importorskip("torch")
    for c in (2, 2.5, -3.0):
        for v in ([3.0, -4.0, 0.5], [3, -4, 7]):
            a, b = c % tg.tensor(v), c % torch.tensor(v)
            assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
            _same(a.numpy().astype(float), b.numpy().astype(float), exact=True)
            _same(tg.remainder(c, tg.tensor(v)).numpy().astype(float),
                  b.numpy().astype(float), exact=True)
    t = torch.tensor([3.0], requires_grad=True)
    with pytest.raises(RuntimeError) as e:
        (2.0 % t).sum().backward()
    x = tg.tensor([3.0], requires_grad=True)
    for make in (lambda: 2.0 % x, lambda: tg.remainder(2.0, x)):
        with pytest.raises(RuntimeError, match=str(e.value)):
            make()
    with tg.no_grad():
        assert (2.0 % x).tolist() == [2.0]


# ----- in place -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_binary_forms_match_pytorch(dtype):
    """hypot_, fmod_, remainder_ and %= (PyTorch has no logaddexp_): values, node names,
    versions and gradients through them."""
    torch = pytest.importorskip("torch")

    def program(L):
        x = L.tensor([[0.7, -1.3, 2.5], [3.1, -0.2, 0.0]], dtype=getattr(L, dtype),
                     requires_grad=True)
        o = L.tensor([0.5, -2.0, 1.5], dtype=getattr(L, dtype), requires_grad=True)
        y = x * 3.0
        y.fmod_(1.25)
        names = [y.grad_fn.name()]
        y.remainder_(o)
        names.append(y.grad_fn.name())
        y %= -0.75
        names.append(y.grad_fn.name())
        y.hypot_(o)                      # (last: its backward reads its result, y)
        names.append(y.grad_fn.name())
        (y * y).sum().backward()
        return names, y._version, _np(y), x.grad.numpy(), o.grad.numpy()
    mine, theirs = program(tg), program(torch)
    assert mine[0] == theirs[0] == ["FmodBackward0", "RemainderBackward1", "RemainderBackward0",
                                    "HypotBackward0"]
    assert mine[1] == theirs[1] == 4
    for a, b in zip(mine[2:], theirs[2:]):
        np.testing.assert_allclose(a, b, rtol=1e-6 if dtype == "float32" else 1e-14)


@pytest.mark.parametrize("name", ["tan", "exp2", "hypot"])
def test_a_saved_result_changed_again_raises_pytorchs_error(name):
    """tan's, exp2's and hypot's PyTorch backward read their result: after tan_() another
    in-place change makes the backward raise PyTorch's version error."""
    torch = pytest.importorskip("torch")
    msgs = []
    for L in (tg, torch):
        x = L.tensor([0.3, 0.6], dtype=L.float64, requires_grad=True)
        y = x * 1.0
        getattr(y, name + "_")(*([L.tensor([1.0, 2.0], dtype=L.float64)] * (name == "hypot")))
        y.add_(1.0)
        with pytest.raises(RuntimeError) as e:
            y.sum().backward()
        msgs.append(str(e.value).split("Hint")[0].replace(L.__name__ + ".", ""))
    assert msgs[0] == msgs[1]


# ----- tg.compile: replays equal eager to the bit ---------------------------------------------
def _every_op(a, b, s):
    """Each new op once: a (3, 4) array, b (4,) positive, s a 0-d scalar."""
    u = a.tanh() * 0.9                                  # in (-1, 1)
    terms = [u.tan(), a.sinh(), a.cosh(), u.asin(), u.arccos(), a.asinh(),
             (b + 1.0).acosh(), u.atanh(), b.log2(), b.log10(), a.exp2(), a.hypot(b),
             a.logaddexp(b), a.fmod(b), a % b, a.fmod(0.7), a.remainder(-0.3),
             s.tan() * a, s.sinh() + s.cosh() + s.asinh() + s.exp2() + s.hypot(s * 2.0)
             + s.logaddexp(s + 1.0) + (s * 3.0).fmod(s + 2.0) + (s * 3.0) % (s + 2.0)
             + s.fmod(0.3) + (s % -0.7) + (s * s + 1.5).acosh() + (s * 0.1).atanh()
             + (s * 0.1).asin() + (s * 0.1).acos() + (s * s + 1.0).log2()
             + (s * s + 1.0).log10()]
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_function_of_every_new_op_equals_eager(dtype):
    """A compiled function of every new op (arrays, 0-d scalars, number divisors): recorded
    once, replayed at new inputs twice; values and gradients equal eager's to the bit."""
    rng = np.random.default_rng(10)
    dt = getattr(tg, dtype)
    step = tg.compile(_every_op)

    def inputs(k):
        r = np.random.default_rng(k)
        return (r.uniform(-2.5, 2.5, (3, 4)), r.uniform(0.3, 2.0, 4), float(r.uniform(-1, 1)))

    def run(fn, vals, g):
        ts = [tg.tensor(v, dtype=dt, requires_grad=True) for v in vals]
        y = fn(*ts)
        y.backward(tg.tensor(g, dtype=dt))
        return [_np(y)] + [np.asarray(t.grad.numpy(), np.float64) for t in ts]
    g = rng.standard_normal((3, 4))
    run(step, inputs(0), g)                             # the recording
    for k in (1, 2):
        got, want = run(step, inputs(k), g), run(_every_op, inputs(k), g)
        for a, b in zip(got, want):
            _same(a, b, exact=True)
    assert step.stats()["replays"] >= 2


def test_a_replayed_integer_modulo_by_zero_raises():
    """An integer tensor divisor's zeros are tested with tensor operations: inside tg.compile
    a guard, so a replay whose divisor holds a 0 records again and raises PyTorch's error
    (rather than computing a NaN cast to an integer)."""
    f = tg.compile(lambda x, y: x % y + x.fmod(y))
    x = tg.tensor([5, -7])
    assert f(x, tg.tensor([2, 3])).tolist() == [1 + 1, 2 - 1]
    assert f(x, tg.tensor([-2, 3])).tolist() == [-1 + 1, 2 - 1]
    assert f.stats()["replays"] == 1
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        f(x, tg.tensor([0, 3]))


# ----- twice differentiated -------------------------------------------------------------------
def test_second_derivatives_closed_forms():
    """create_graph through the new formulas: d2/dx2 tan = 2 tan (1 + tan^2), asin's
    x (1 - x^2)^-3/2, acosh's -x (x^2 - 1)^-3/2, log2's -1/(x^2 ln 2), exp2's 2^x ln^2 2,
    hypot's y^2 / r^3 (in x); fmod's gradient is a step of the divisor: its own is 0."""
    v = np.array([0.3, -0.5, 0.8])
    cases = [
        (lambda x: x.tan(), lambda v: 2 * np.tan(v) * (1 + np.tan(v) ** 2), v),
        (lambda x: x.asin(), lambda v: v * (1 - v * v) ** -1.5, v),
        (lambda x: x.acosh(), lambda v: -v * (v * v - 1) ** -1.5, v + 2.0),
        (lambda x: x.log2(), lambda v: -1 / (v * v * math.log(2)), v + 1.0),
        (lambda x: x.exp2(), lambda v: np.exp2(v) * math.log(2) ** 2, v),
        (lambda x: x.hypot(tg.tensor([1.0, 2.0, 0.5], dtype=tg.float64)),
         lambda v: np.array([1.0, 4.0, 0.25]) / np.hypot(v, [1.0, 2.0, 0.5]) ** 3, v),
    ]
    for f, d2, at in cases:
        x = t64(at, requires_grad=True)
        (g,) = tg.autograd.grad(f(x).sum(), x, create_graph=True)
        (h,) = tg.autograd.grad(g.sum(), x)
        np.testing.assert_allclose(h.numpy(), d2(at), rtol=1e-13)
    x, y = t64([5.5, -3.2], requires_grad=True), t64([1.5, 2.0], requires_grad=True)
    (gy,) = tg.autograd.grad(x.fmod(y).sum(), y, create_graph=True)
    np.testing.assert_array_equal(_np(gy), [-3.0, 1.0])
    (gx,) = tg.autograd.grad((x % y).sum(), y, create_graph=True)
    np.testing.assert_array_equal(_np(gx), [-3.0, 2.0])
