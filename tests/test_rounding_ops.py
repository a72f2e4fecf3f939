"""sign, floor, ceil, trunc, round (and round(decimals=)), frac and atan2, against PyTorch.

Values and gradients are compared with PyTorch 2.13's bit for bit wherever PyTorch's CPU
kernel computes what NumPy's does (the steps are exact; atan2's gradient is arithmetic on
the operands), in float32 and float64, for arrays and for 0-d tensors (tapegrad's
Python-float fast path), edge values included: -0, halves, subnormals, the largest
non-integers, inf and NaN. atan2's forward calls libm (0-d) or NumPy's loop (arrays),
where PyTorch's vectorized loop calls SLEEF: within an ulp there, to the bit for a 0-d
float64 (both std::atan2). The steps' gradients are 0 even where the incoming gradient is
inf or NaN (PyTorch's zeros_like(grad)); frac's is the incoming gradient itself.
"""
import math

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.usefixtures("isolated"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

STEPS = ("sign", "floor", "ceil", "trunc", "round", "frac")
NODES = {"sign": "SignBackward0", "floor": "FloorBackward0", "ceil": "CeilBackward0",
         "trunc": "TruncBackward0", "round": "RoundBackward0", "frac": "FracBackward0"}
INF, NAN = math.inf, math.nan
EDGES = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5, 0.49999999999999994,
         -0.49999999999999994, 0.7, -0.7, 1.0, -1.0, 2.0, -2.0, 1e-300, -1e-300, 5e-324,
         -5e-324, 1e-40, -1e-40, 8388607.5, -8388607.5, 4503599627370495.5,
         -4503599627370495.5, 4503599627370497.0, 1e30, -1e30, 3e38, 1e300, -1e300,
         INF, -INF, NAN]
DTYPES = {"float32": (tg.float32, torch.float32, np.float32),
          "float64": (tg.float64, torch.float64, np.float64)}
DECIMALS = (0, 1, 2, 3, -1, -2, 5, 30, 40, 309, 400, -400)


def _values(ndt, n=400, seed=0):
    """The edges, then random values of several scales, many of them near halves."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(n) * rng.choice([0.01, 1.0, 7.0, 1e3, 1e9], n)
    v[::3] = np.round(v[::3] * 2) / 2 + rng.choice([0.0, 1e-9, -1e-9], len(v[::3]))
    return np.concatenate([np.array(EDGES), v]).astype(ndt)


def _same(a, b):
    """Equal bit for bit (NaNs of any payload count as equal), dtypes and shapes too. (A
    leaf's gradient is +0 where PyTorch's is -0: README, Differences; compare a + 0.0.)"""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    if a.dtype.kind != "f":
        return np.array_equal(a, b)
    u = f"u{a.dtype.itemsize}"
    return bool(np.all((a.view(u) == b.view(u)) | (np.isnan(a) & np.isnan(b))))


def _np(t):
    return np.asarray(t.detach().numpy())


def _call(name, t, decimals=None):
    return getattr(t, name)() if decimals is None else t.round(decimals=decimals)


# ----- values ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", STEPS)
def test_array_values_are_pytorchs_to_the_bit(name, dtype):
    tdt, pdt, ndt = DTYPES[dtype]
    x = _values(ndt)
    mine = _call(name, tg.tensor(x, dtype=tdt, requires_grad=True))
    theirs = _call(name, torch.tensor(x, dtype=pdt, requires_grad=True))
    assert mine.dtype == tdt and mine.grad_fn.name() == theirs.grad_fn.name() == NODES[name]
    assert _same(_np(mine), theirs.detach().numpy())
    # shapes: 2-d, a transposed view, 0-d arrays (a reduction's result)
    x2 = x[:40].reshape(5, 8)
    assert _same(_np(_call(name, tg.tensor(x2, dtype=tdt).t())),
                 _call(name, torch.tensor(x2, dtype=pdt).t()).numpy())


@pytest.mark.parametrize("grad", [False, True], ids=["constant", "requires_grad"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", STEPS)
def test_0d_values_are_pytorchs_to_the_bit(name, dtype, grad):
    """A 0-d tensor holds a Python float: the fast path (inline in the method, or face's
    fallback for inf and NaN) gives PyTorch's bits, the sign of zero included."""
    tdt, pdt, ndt = DTYPES[dtype]
    for v in _values(ndt, 100, seed=1):
        t = tg.tensor(float(v), dtype=tdt, requires_grad=grad)
        assert type(t._v) is float
        mine = _call(name, t)
        theirs = _call(name, torch.tensor(float(v), dtype=pdt, requires_grad=grad))
        assert type(mine._v) is float and mine.dtype == tdt and mine.requires_grad == grad
        assert _same(np.asarray(mine._v, ndt), theirs.detach().numpy()), (name, v)


def test_sign_is_0_for_nan_and_minus_0_as_pytorchs():
    """ATen's sign is (0 < x) - (x < 0): +0 at -0 and for NaN, where NumPy gives NaN."""
    for dt in (tg.float32, tg.float64):
        y = tg.tensor([NAN, -0.0, 0.0, -INF, 1e-45], dtype=dt).sign().numpy()
        assert y.tolist() == [0.0, 0.0, 0.0, -1.0, 1.0] and not np.signbit(y[:3]).any()
        assert tg.tensor(NAN, dtype=dt).sign().item() == 0.0
        assert math.copysign(1.0, tg.tensor(-0.0, dtype=dt).sign().item()) == 1.0


def test_round_is_half_to_even_and_keeps_the_sign_of_zero():
    x = [-2.5, -1.5, -0.5, -0.4, 0.5, 1.5, 2.5, 0.49999999999999994]
    for t in (tg.tensor(x, dtype=tg.float64), *[tg.tensor(v, dtype=tg.float64) for v in x]):
        y = np.atleast_1d(_np(t.round()))
        assert _same(y, np.rint(np.atleast_1d(t.numpy())))
    assert tg.tensor([-2.5, 2.5, -0.4]).round().tolist() == [-2.0, 2.0, -0.0]
    assert math.copysign(1.0, tg.tensor(-0.4).round().item()) == -1.0
    assert math.copysign(1.0, tg.tensor(-0.5).ceil().item()) == -1.0
    assert math.copysign(1.0, tg.tensor(-0.5).trunc().item()) == -1.0
    assert math.copysign(1.0, tg.tensor(-2.0).frac().item()) == 1.0     # x - trunc(x)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("decimals", DECIMALS)
def test_round_decimals_is_pytorchs_to_the_bit(decimals, dtype):
    """ATen's round_decimals kernel: rint(x * 10**d) / 10**d in the tensor's dtype (x /
    10**-d, * 10**-d for d < 0; 10**d inf past the dtype's range: NaN results), arrays and
    0-d tensors (a float32 number rounded at each step, as PyTorch's float arithmetic)."""
    tdt, pdt, ndt = DTYPES[dtype]
    x = _values(ndt, 300, seed=2)
    mine = tg.tensor(x, dtype=tdt, requires_grad=True).round(decimals=decimals)
    theirs = torch.tensor(x, dtype=pdt, requires_grad=True).round(decimals=decimals)
    assert mine.grad_fn.name() == theirs.grad_fn.name() == "RoundBackward1"
    assert _same(_np(mine), theirs.detach().numpy())
    bad = [v for v in x if not _same(
        np.asarray(tg.tensor(float(v), dtype=tdt).round(decimals=decimals)._v, ndt),
        torch.tensor(float(v), dtype=pdt).round(decimals=decimals).numpy())]
    assert not bad, f"0-d round(decimals={decimals}) differs from PyTorch's at {bad[:5]}"


def test_round_decimals_of_a_0d_array_value():
    """A reduction's 0-d result holds a 0-d array (not a Python float): it stays one."""
    x = np.array([[0.123456, 2.5], [1.0, -7.25]])
    s = tg.tensor(x, requires_grad=True).mean()
    r = s.round(decimals=2)
    assert r.shape == () and r.grad_fn.name() == "RoundBackward1"
    assert r.item() == torch.tensor(x).mean().round(decimals=2).item()
    r.backward()


def test_x_round_and_x_round_decimals_0_are_different_nodes():
    for L in (tg, torch):
        x = L.tensor([1.5, 2.5], requires_grad=True)
        assert x.round().grad_fn.name() == "RoundBackward0"
        assert x.round(decimals=0).grad_fn.name() == "RoundBackward1"
        assert L.round(x, decimals=0).tolist() == [2.0, 2.0]


# ----- gradients ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", STEPS + ("rounddec",))
def test_gradients_are_pytorchs_with_inf_and_nan_incoming(name, dtype):
    """Zeros (+0, bit for bit) whatever the incoming gradient, inf and NaN included, for
    the steps; frac passes the incoming gradient as it is. Arrays and 0-d tensors."""
    tdt, pdt, ndt = DTYPES[dtype]
    x = np.array([0.3, -1.7, 2.5, -0.0, INF, NAN, 1e30, 7.0], ndt)
    g = np.array([1.0, INF, NAN, -INF, -2.5, NAN, 0.0, 3.0], ndt)   # (a -0.0 grad: README)
    f = (lambda t: t.round(decimals=1)) if name == "rounddec" else (lambda t: _call(name, t))
    grads = []
    for L in (tg, torch):
        t = L.tensor(x, dtype=tdt if L is tg else pdt, requires_grad=True)
        f(t).backward(L.tensor(g, dtype=t.dtype))
        grads.append(np.asarray(t.grad.numpy()))
        scalars = []
        for xi, gi in zip(x, g):          # 0-d: the scalar fast path and its record
            s = L.tensor(float(xi), dtype=t.dtype, requires_grad=True)
            f(s * 1.0).backward(L.tensor(float(gi), dtype=t.dtype))
            scalars.append(float(s.grad))
        grads.append(np.array(scalars, ndt))
    assert _same(grads[0], grads[2]) and _same(grads[1], grads[3])
    want = g if name == "frac" else np.zeros_like(g)
    assert _same(grads[0], want) and _same(grads[1], want)


def test_a_step_adds_nothing_to_the_gradient_of_a_sum():
    for L in (tg, torch):
        x = L.tensor([0.3, -1.7, 2.2], dtype=L.float64, requires_grad=True)
        y = x.floor() * 3 + x.ceil() + x.round() * x + x.sign() + x.trunc() + x.frac()
        y.sum().backward()
        if L is tg:
            mine = x.grad.numpy()
        else:
            assert np.array_equal(mine, x.grad.numpy())
    assert mine.tolist() == [1.0, -1.0, 3.0]        # round(x) + d/dx frac(x)


@pytest.mark.parametrize("name", STEPS)
def test_finite_differences(name):
    """The gradient is the derivative away from the jumps: 0 (frac: 1)."""
    from conftest import fd_grad
    x = np.array([0.3, -1.7, 2.2, -0.45, 5.6])
    t = tg.tensor(x, dtype=tg.float64, requires_grad=True)
    (_call(name, t) * tg.tensor(np.arange(1.0, 6.0))).sum().backward()
    want = fd_grad(lambda v: float((_call(name, tg.tensor(v, dtype=tg.float64)).numpy()
                                    * np.arange(1.0, 6.0)).sum()), x)
    np.testing.assert_allclose(t.grad.numpy(), want, atol=1e-6)
    assert t.grad.numpy().tolist() == ([1.0, 2.0, 3.0, 4.0, 5.0] if name == "frac" else
                                       [0.0] * 5)


def test_create_graph_of_a_step_is_a_constant_zero_as_pytorchs():
    """PyTorch's zeros_like(grad) does not require grad: the gradient has no node. frac's
    gradient is the incoming one: f = frac(x^2) x has f' = 2x^2 + frac(x^2), f'' = 6x."""
    got = []
    for L in (tg, torch):
        x = L.tensor([0.3, -1.7], dtype=L.float64, requires_grad=True)
        for name in STEPS[:-1]:
            (g,) = L.autograd.grad(_call(name, x).sum(), x, create_graph=True)
            assert g.grad_fn is None and not g.requires_grad and g.tolist() == [0.0, 0.0]
            (g,) = L.autograd.grad(_call(name, x * x).sum(), x, create_graph=True)
            got.append((g.grad_fn.name(), g.tolist()))      # MulBackward0's: AddBackward0
        (g,) = L.autograd.grad(((x * x).frac() * x).sum(), x, create_graph=True)
        (h,) = L.autograd.grad(g.sum(), x)
        got.append((g.detach().numpy(), h.numpy()))
    n = len(STEPS) - 1
    assert got[:n] == got[n + 1:-1] and got[0] == ("AddBackward0", [0.0, 0.0])
    (g1, h1), (g2, h2) = got[n], got[-1]
    np.testing.assert_allclose(g1, [0.27, 6.67], rtol=1e-14)
    np.testing.assert_allclose(h1, [1.8, -10.2], rtol=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-15)
    np.testing.assert_allclose(h1, h2, rtol=1e-15)


# ----- node names, printing ---------------------------------------------------------------
def test_nodes_and_printing_are_pytorchs():
    cases = [(name, lambda L, x, n=name: _call(n, x)) for name in STEPS] + [
        ("rounddec", lambda L, x: x.round(decimals=2)),
        ("atan2", lambda L, x: L.atan2(x, x * 2.0)),
        ("arctan2", lambda L, x: x.arctan2(x.exp()))]
    for label, f in cases:
        got = []
        for L in (tg, torch):
            x = L.tensor([0.25, -1.5], dtype=L.float64, requires_grad=True)
            y = f(L, x)
            fn = y.grad_fn
            got.append((fn.name(), [n and n.name().replace("torch::autograd::", "")
                                    for n, _ in fn.next_functions],
                        repr(fn).split(" object at 0x")[0],
                        repr(y).split("grad_fn=")[1],
                        repr(L.tensor(0.25, requires_grad=True).floor()).split("grad_fn=")[1]))
        assert got[0] == got[1], label


# ----- dtypes and errors ------------------------------------------------------------------
INTS = {"int64": (tg.int64, torch.int64), "int32": (tg.int32, torch.int32),
        "int16": (tg.int16, torch.int16), "int8": (tg.int8, torch.int8),
        "uint8": (tg.uint8, torch.uint8)}


@pytest.mark.parametrize("dtype", list(INTS))
@pytest.mark.parametrize("name", ("sign", "floor", "ceil", "trunc", "round"))
def test_integer_tensors_keep_their_dtype(name, dtype):
    tdt, pdt = INTS[dtype]
    x = np.array([-100, -3, -1, 0, 1, 2, 99], np.int64).astype(tdt.np)
    for data in (x, x[3]):
        mine = _call(name, tg.tensor(data, dtype=tdt))
        theirs = _call(name, torch.tensor(data, dtype=pdt))
        assert mine.dtype == tdt and theirs.dtype == pdt
        assert np.array_equal(mine.numpy(), theirs.numpy())
    if dtype == "int64":      # a copy: no trip through float64, which would round these
        big = np.array([2 ** 62 + 1, -(2 ** 53) - 1, 2 ** 63 - 1])
        want = big.tolist() if name != "sign" else [1, -1, 1]
        assert _call(name, tg.tensor(big)).tolist() == want


def _message(f, L):
    with pytest.raises(Exception) as e:
        f(L)
    return type(e.value).__name__, str(e.value)


@pytest.mark.parametrize("case", [
    ("sign of bool", lambda L: L.tensor([True, False]).sign()),
    ("floor of bool", lambda L: L.tensor([True, False]).floor()),
    ("ceil of bool", lambda L: L.tensor(True).ceil()),
    ("trunc of bool", lambda L: L.tensor([True]).trunc()),
    ("round of bool", lambda L: L.tensor([True]).round()),
    ("frac of int64", lambda L: L.tensor([1, 2]).frac()),
    ("frac of uint8", lambda L: L.tensor([1, 2], dtype=L.uint8).frac()),
    ("frac of bool", lambda L: L.tensor([True]).frac()),
    ("round(decimals=1) of int64", lambda L: L.tensor([15, 25]).round(decimals=1)),
    ("round(decimals=0) of int32", lambda L: L.tensor([15], dtype=L.int32).round(decimals=0)),
    ("round(decimals=2) of bool", lambda L: L.tensor([True]).round(decimals=2)),
    ("decimals a float", lambda L: L.tensor([1.5]).round(decimals=1.0)),
    ("decimals None", lambda L: L.tensor([1.5]).round(decimals=None)),
    ("decimals a bool", lambda L: L.tensor([1.5]).round(decimals=True)),
    ("atan2 of a number", lambda L: L.tensor([1.5]).atan2(2.0)),
    ("atan2 of an int", lambda L: L.tensor([1.5]).arctan2(2)),
    ("atan2 shapes", lambda L: L.atan2(L.ones(3), L.ones(2))),
], ids=lambda c: c[0])
def test_errors_are_pytorchs(case):
    """What PyTorch raises, tapegrad raises in PyTorch's words; sign of a bool tensor is
    the tensor (PyTorch's too)."""
    _, f = case
    try:
        theirs = f(torch)
    except Exception:
        assert _message(f, tg) == _message(f, torch)
        return
    mine = f(tg)
    assert mine.dtype == tg.bool and mine.tolist() == theirs.tolist()


# ----- atan2 ------------------------------------------------------------------------------
# zeros, infs, NaN; squares that underflow to 0 (r is 0: PyTorch's mask) or to a
# subnormal sum (r is inf), that overflow (r is 0), in float64 and in float32
SPECIAL = [(0.0, 0.0), (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0), (1.0, 0.0), (-1.0, -0.0),
           (0.0, -1.0), (-0.0, -1.0), (INF, 1.0), (1.0, INF), (-1.0, -INF), (INF, INF),
           (-INF, -INF), (NAN, 1.0), (1.0, NAN), (1e-200, 1e-200), (1e-160, -1e-160),
           (1e-30, 1e-30), (1e-22, 1e-22), (1e20, 1e20), (-1e20, 3e20), (1e300, 1e300),
           (3.0, -4.0)]


def _atan2_pair(L, x, y, dt, g=None):
    """(value, grad of x, grad of y) of atan2(x, y) with incoming gradient g."""
    a = L.tensor(x, dtype=dt, requires_grad=True)
    b = L.tensor(y, dtype=dt, requires_grad=True)
    z = L.atan2(a, b)
    z.backward(L.ones_like(z) if g is None else L.tensor(g, dtype=dt))
    return [np.asarray(t.detach().numpy()) for t in (z, a.grad, b.grad)]


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_atan2_gradients_are_pytorchs_to_the_bit(dtype):
    """(g * y) * r and (g * -x) * r, r = 1 / (x*x + y*y) set to 0 where it is inf: the
    order of PyTorch's atan2_backward, so float32 gradients round as PyTorch's do; at
    (0, 0), underflowing and overflowing squares, inf and NaN as PyTorch's."""
    tdt, pdt, ndt = DTYPES[dtype]
    rng = np.random.default_rng(4)
    x = np.concatenate([[s[0] for s in SPECIAL], rng.standard_normal(300) * 3]).astype(ndt)
    y = np.concatenate([[s[1] for s in SPECIAL], rng.standard_normal(300) * 3]).astype(ndt)
    g = rng.standard_normal(len(x)).astype(ndt)
    (_, *mine), (_, *theirs) = _atan2_pair(tg, x, y, tdt, g), _atan2_pair(torch, x, y, pdt, g)
    assert _same(mine[0], theirs[0] + 0.0) and _same(mine[1], theirs[1] + 0.0)
    for i in range(len(SPECIAL)):          # 0-d: the scalar path and its record
        _, *m = _atan2_pair(tg, float(x[i]), float(y[i]), tdt, float(g[i]))
        _, *t = _atan2_pair(torch, float(x[i]), float(y[i]), pdt, float(g[i]))
        assert _same(m[0], t[0] + 0.0) and _same(m[1], t[1] + 0.0), SPECIAL[i]
    # broadcast: (3, 1) with (1, 4), the gradients summed back as PyTorch's
    xb, yb = x[-3:].reshape(3, 1), y[-4:].reshape(1, 4)
    (_, *mine), (_, *theirs) = _atan2_pair(tg, xb, yb, tdt), _atan2_pair(torch, xb, yb, pdt)
    assert mine[0].shape == (3, 1) and mine[1].shape == (1, 4)
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-6 if dtype == "float32" else 1e-15)
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-6 if dtype == "float32" else 1e-15)


def test_atan2_values():
    """0-d float64: std::atan2 in both, to the bit; arrays: NumPy's loop, within an ulp of
    PyTorch's SLEEF (float32 and float64); the quadrants and signed zeros as C's."""
    x = np.array([s[0] for s in SPECIAL])
    y = np.array([s[1] for s in SPECIAL])
    for xi, yi in zip(x, y):
        mine = tg.atan2(tg.tensor(xi, dtype=tg.float64), tg.tensor(yi, dtype=tg.float64))
        assert type(mine._v) is float
        theirs = torch.atan2(torch.tensor(xi, dtype=torch.float64),
                             torch.tensor(yi, dtype=torch.float64))
        assert _same(np.float64(mine.item()), theirs.numpy())
    mine = tg.atan2(tg.tensor(x, dtype=tg.float64), tg.tensor(y, dtype=tg.float64))
    assert _same(mine.numpy(), np.arctan2(x, y))
    rng = np.random.default_rng(5)
    for tdt, pdt, ndt in DTYPES.values():
        a = (rng.standard_normal(2000) * np.exp(rng.uniform(-10, 10, 2000))).astype(ndt)
        b = (rng.standard_normal(2000) * np.exp(rng.uniform(-10, 10, 2000))).astype(ndt)
        mine = tg.tensor(a, dtype=tdt).atan2(tg.tensor(b, dtype=tdt)).numpy()
        theirs = torch.atan2(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        ints = np.int32 if ndt == np.float32 else np.int64
        assert np.abs(mine.view(ints).astype(np.int64) - theirs.view(ints)).max() <= 1
        assert _same(mine, np.arctan2(a, b))


def _sum_to(v, shape):
    """v summed over the dims broadcasting added or stretched to reach it from shape."""
    v = v.sum(tuple(range(v.ndim - len(shape))))
    return v.sum(tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def test_atan2_gradients_are_the_derivative():
    """Against the closed form and central finite differences, float64, with broadcasting
    and a 0-d operand."""
    from conftest import fd_grad
    rng = np.random.default_rng(6)
    for xs, ys in [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (5,)), ((2, 3), ())]:
        x = rng.uniform(0.3, 2.0, xs) * rng.choice([-1.0, 1.0], xs)
        y = rng.uniform(-2.0, 2.0, ys)
        w = rng.standard_normal(np.broadcast_shapes(xs, ys))
        a = tg.tensor(x, dtype=tg.float64, requires_grad=True)
        b = tg.tensor(y, dtype=tg.float64, requires_grad=True)
        (a.atan2(b) * tg.tensor(w)).sum().backward()
        xb, yb = np.broadcast_arrays(x, y)
        r = w / (xb * xb + yb * yb)
        np.testing.assert_allclose(a.grad.numpy(), _sum_to(r * yb, xs), rtol=1e-13)
        np.testing.assert_allclose(b.grad.numpy(), _sum_to(-r * xb, ys), rtol=1e-13)

        def loss(xv, yv):
            return float((np.arctan2(xv, yv) * w).sum())
        np.testing.assert_allclose(a.grad.numpy(), fd_grad(lambda v: loss(v, y), x), rtol=1e-6)
        np.testing.assert_allclose(b.grad.numpy(), fd_grad(lambda v: loss(x, v), y), rtol=1e-6)


def test_atan2_second_derivative_is_the_closed_form():
    """d2/dx2 atan2(x, y) = -2xy / (x^2 + y^2)^2, d2/dxdy = (x^2 - y^2) / (x^2 + y^2)^2."""
    x0, y0 = 0.7, -1.3
    for x0s in (x0, [x0, -x0]):
        x = tg.tensor(x0s, dtype=tg.float64, requires_grad=True)
        y = tg.tensor(y0, dtype=tg.float64, requires_grad=True)
        (gx,) = tg.autograd.grad(tg.atan2(x, y).sum(), x, create_graph=True)
        hxx, hxy = tg.autograd.grad(gx.sum(), (x, y))
        xv = np.asarray(x0s)
        q = (xv * xv + y0 * y0) ** 2
        np.testing.assert_allclose(hxx.numpy(), -2 * xv * y0 / q, rtol=1e-14)
        np.testing.assert_allclose(hxy.numpy(), ((xv * xv - y0 * y0) / q).sum(), rtol=1e-14)


def test_atan2_dtypes_are_pytorchs():
    """Integer operands compute in the default float dtype (PyTorch's float ops); otherwise
    the usual promotion, a 0-d tensor's category counting."""
    cases = [(lambda L: L.tensor([1, -2, 3]), lambda L: L.tensor([3, 4, -5])),
             (lambda L: L.tensor([True, False]), lambda L: L.tensor([1, 0])),
             (lambda L: L.tensor(1), lambda L: L.tensor(2)),
             (lambda L: L.tensor([1, 2]), lambda L: L.tensor(3.0, dtype=L.float64)),
             (lambda L: L.tensor([1.0, 2.0]), lambda L: L.tensor([3.0], dtype=L.float64)),
             (lambda L: L.tensor([1.0, 2.0], dtype=L.float64), lambda L: L.tensor(3))]
    for a, b in cases:
        mine, theirs = tg.atan2(a(tg), b(tg)), torch.atan2(a(torch), b(torch))
        assert str(mine.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=2e-7)


def test_functions_and_aliases():
    x = tg.tensor([0.3, -1.7, 2.5], dtype=tg.float64, requires_grad=True)
    y = tg.tensor([1.0, 0.5, -2.0], dtype=tg.float64)
    for name in STEPS:
        assert getattr(tg, name)(x).tolist() == _call(name, x).tolist()
        assert getattr(tg, name)(x).grad_fn.name() == NODES[name]
    assert tg.round(x, decimals=1).grad_fn.name() == "RoundBackward1"
    assert tg.atan2(x, y).tolist() == tg.arctan2(x, y).tolist() == x.arctan2(y).tolist() \
        == np.arctan2(x.detach().numpy(), y.numpy()).tolist()
    out = tg.empty(3, dtype=tg.float64)
    tg.floor(x.detach(), out=out)
    assert out.tolist() == [0.0, -2.0, 2.0]


# ----- tg.compile -------------------------------------------------------------------------
def _run_all(a, b):
    return (a.sign() * 1.5 + a.floor() + a.ceil() * 2 + a.trunc() * 3 + a.round() * 4
            + a.frac() * 5 + a.round(decimals=2) * 6 + a.round(decimals=-1) * 7
            + tg.atan2(a, b) * 8, a.round(decimals=1) + a.frac() * b)


def _step(fn, a0, b0, dt):
    a = tg.tensor(a0, dtype=dt, requires_grad=True)
    b = tg.tensor(b0, dtype=dt, requires_grad=True)
    u, v = fn(a, b)
    (u.sum() + (v * v).sum()).backward()
    return [np.asarray(t.detach().numpy()) for t in (u, v, a.grad, b.grad)]


@pytest.mark.parametrize("shape", ["array", "0-d"])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_compile_replays_equal_eager_to_the_bit(dtype, shape):
    """Record at one input, replay at others (edges, halves, float32 values whose
    round(decimals=) differs when computed in float64): values and gradients as eager's."""
    tdt, _, ndt = DTYPES[dtype]
    rng = np.random.default_rng(7)
    near = (np.arange(-300, 300) / 200.0 + rng.choice([0.0, 1e-7, -1e-7], 600)).astype(ndt)
    xs = np.concatenate([_values(ndt, 200, seed=8), near])
    ys = np.roll(xs, 7)
    compiled = tg.compile(_run_all)
    if shape == "array":
        sets = [(xs[:17], ys[:17])] * 2 + [(xs[i:i + 17], ys[i:i + 17])
                                           for i in range(0, len(xs) - 17, 17)]
    else:
        sets = [(0.3, 0.7)] * 2 + list(zip(xs.tolist(), ys.tolist()))
    for i, (a0, b0) in enumerate(sets):
        got = _step(compiled, a0, b0, tdt)
        if i >= 2:
            want = _step(_run_all, a0, b0, tdt)
            assert all(_same(w, g) for w, g in zip(want, got)), (a0, b0)
    assert compiled.stats()["replays"] >= len(sets) - 2
