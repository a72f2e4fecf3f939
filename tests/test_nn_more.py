"""The nn pieces small networks use next: the activations SiLU ... PReLU, Unflatten, the
normalisations LayerNorm/BatchNorm1d/BatchNorm2d/GroupNorm, the losses KLDiv ...
PoissonNLL, CosineSimilarity/PairwiseDistance and F.pad.

Each is checked three ways: against closed forms (values and derivatives written out in
NumPy), against central finite differences in float64, and against PyTorch: the same
inputs and parameters in both libraries (a scenario written once against a module ``L``,
tapegrad or torch), values and input/parameter gradients to 1e-10 in float64 and 1e-5 in
float32; reprs, state_dict keys and shapes, running statistics, and errors in PyTorch's
words. The end: a small MLP with LayerNorm and SiLU trained by SGD in both libraries from
the same weights reaches the same parameters, and a compiled training step equals the
eager one."""
import copy
import math
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad.nn import functional as F

from conftest import fd_grad
from nn_twins import array, same_error, twin_from

pytestmark = pytest.mark.usefixtures("isolated")

TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6)}


def _torch():
    return pytest.importorskip("torch")


def data(*shape, seed=0, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale + shift


def close(a, b, dtype="float64"):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(array(a), array(b), rtol=rtol, atol=atol)


def compare(scenario, *arrays, dtype="float64", requires_grad=None, seed=0):
    """``scenario(L, *tensors)`` run with L = tapegrad and L = torch on the same values:
    the outputs, and the gradients of sum(out * w) (w random) for every input that
    requires grad, agree to TOL[dtype]. Returns the two outputs."""
    torch = _torch()
    flags = requires_grad or [True] * len(arrays)
    runs = []
    for L in (tg, torch):
        ts = [L.tensor(np.asarray(a), dtype=getattr(L, dtype), requires_grad=r)
              for a, r in zip(arrays, flags)]
        out = scenario(L, *ts)
        if out.requires_grad:
            w = np.random.default_rng(seed + 99).standard_normal(tuple(out.shape))
            (out * L.tensor(w, dtype=out.dtype)).sum().backward()
        runs.append((out, ts))
    (a, ta), (b, tb) = runs
    assert tuple(a.shape) == tuple(b.shape)
    close(a, b, dtype)
    for x, y in zip(ta, tb):
        assert (x.grad is None) == (y.grad is None)
        if x.grad is not None:
            close(x.grad, y.grad, dtype)
    return a, b


def randomize(module, seed=5):
    """Every parameter of ``module`` set to random values (so weight grads are tested
    with weights that are not all ones)."""
    rng = np.random.default_rng(seed)
    with tg.no_grad():
        for p in module.parameters():
            p.copy_(tg.tensor(rng.standard_normal(tuple(p.shape)), dtype=p.dtype))
    return module


def module_pair(make, dtype="float64", seed=5):
    """The module ``make(L)`` in both libraries with the same (random) parameters."""
    torch = _torch()
    m = randomize(make(tg).to(getattr(tg, dtype)), seed)
    return m, twin_from(m, make(torch).to(getattr(torch, dtype)))


def run_modules(m, tm, x, dtype="float64", seed=0):
    """Both modules on the same input: outputs, input grads, parameter grads agree."""
    torch = _torch()
    a = tg.tensor(x, dtype=getattr(tg, dtype), requires_grad=True)
    b = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    out, ref = m(a), tm(b)
    close(out, ref, dtype)
    w = np.random.default_rng(seed + 7).standard_normal(tuple(ref.shape))
    (out * tg.tensor(w, dtype=out.dtype)).sum().backward()
    (ref * torch.tensor(w, dtype=ref.dtype)).sum().backward()
    close(a.grad, b.grad, dtype)
    for (name, p), q in zip(m.named_parameters(), tm.parameters()):
        close(p.grad, q.grad, dtype)
    return out, ref


# ----- activations: closed forms --------------------------------------------------------
def _sig(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x))
                    / (1 + np.exp(-np.abs(x))))


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


SA, SS = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
INSIDE = lambda x, lo, hi: ((x > lo) & (x < hi)).astype(float)     # noqa: E731
# name: (tapegrad call, value, derivative); derivatives at kinks as PyTorch's kernels
CLOSED = {
    "silu": (F.silu, lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x)))),
    "mish": (F.mish, lambda x: x * np.tanh(_softplus(x)),
             lambda x: np.tanh(_softplus(x)) + x * _sig(x) * (1 - np.tanh(_softplus(x)) ** 2)),
    "elu": (lambda t: F.elu(t, 1.3), lambda x: np.where(x > 0, x, 1.3 * np.expm1(x)),
            lambda x: np.where(x > 0, 1.0, 1.3 * np.exp(x))),
    "selu": (F.selu, lambda x: SS * np.where(x > 0, x, SA * np.expm1(x)),
             lambda x: SS * np.where(x > 0, 1.0, SA * np.exp(x))),
    "celu": (lambda t: F.celu(t, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x / 0.5)),
             lambda x: np.where(x > 0, 1.0, np.exp(x / 0.5))),
    "hardtanh": (lambda t: F.hardtanh(t, -2.0, 3.0), lambda x: np.clip(x, -2.0, 3.0),
                 lambda x: INSIDE(x, -2.0, 3.0)),
    "relu6": (F.relu6, lambda x: np.clip(x, 0, 6), lambda x: INSIDE(x, 0, 6)),
    "logsigmoid": (F.logsigmoid, lambda x: -_softplus(-x), lambda x: _sig(-x)),
    "softsign": (F.softsign, lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
    "tanhshrink": (F.tanhshrink, lambda x: x - np.tanh(x), lambda x: np.tanh(x) ** 2),
    # PyTorch's hardsigmoid backward multiplies by float(1/6) in every dtype
    "hardsigmoid": (F.hardsigmoid, lambda x: np.clip(x + 3, 0, 6) / 6,
                    lambda x: INSIDE(x, -3, 3) * float(np.float32(1 / 6))),
    "hardswish": (F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6,
                  lambda x: np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, x / 3 + 0.5))),
}
KINKS = [-30.0, -6.0, -3.0, -2.0, -1.0, 0.0, 1.0, 3.0, 6.0, 30.0]


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_activation_values_and_derivatives_are_the_closed_forms(name):
    f, value, slope = CLOSED[name]
    x = np.concatenate([data(40, seed=1, scale=3.0), KINKS])
    t = tg.tensor(x, dtype=tg.float64, requires_grad=True)
    y = f(t)
    y.sum().backward()
    np.testing.assert_allclose(array(y), value(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(array(t.grad), slope(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(CLOSED) + ["softmin", "prelu"])
def test_activation_gradients_match_finite_differences(name):
    calls = {"softmin": lambda t: F.softmin(t, 0),
             "prelu": lambda t: F.prelu(t, tg.tensor([0.3], dtype=tg.float64))}
    f = calls.get(name) or CLOSED[name][0]
    x = data(12, seed=2, scale=2.0)
    x = x[np.min(np.abs(x[:, None] - np.array([-3.0, -2.0, 0.0, 3.0, 6.0])), 1) > 0.05]
    w = data(*x.shape, seed=3)

    def loss(v):
        with tg.no_grad():
            return float((f(tg.tensor(v, dtype=tg.float64)) * tg.tensor(w)).sum())
    t = tg.tensor(x, dtype=tg.float64, requires_grad=True)
    (f(t) * tg.tensor(w)).sum().backward()
    np.testing.assert_allclose(array(t.grad), fd_grad(loss, x), rtol=1e-6, atol=1e-8)


# ----- activations: against PyTorch -----------------------------------------------------
ACTIVATIONS = {
    "silu": lambda L, x: L.nn.functional.silu(x),
    "mish": lambda L, x: L.nn.functional.mish(x),
    "elu": lambda L, x: L.nn.functional.elu(x),
    "elu_alpha": lambda L, x: L.nn.functional.elu(x, 0.3),
    "selu": lambda L, x: L.nn.functional.selu(x),
    "celu": lambda L, x: L.nn.functional.celu(x),
    "celu_alpha": lambda L, x: L.nn.functional.celu(x, 0.7),     # PyTorch's float(1/0.7)
    "hardtanh": lambda L, x: L.nn.functional.hardtanh(x),
    "hardtanh_range": lambda L, x: L.nn.functional.hardtanh(x, -3.0, 1.0),
    "relu6": lambda L, x: L.nn.functional.relu6(x),
    "logsigmoid": lambda L, x: L.nn.functional.logsigmoid(x),
    "softsign": lambda L, x: L.nn.functional.softsign(x),
    "hardsigmoid": lambda L, x: L.nn.functional.hardsigmoid(x),
    "hardswish": lambda L, x: L.nn.functional.hardswish(x),
    "tanhshrink": lambda L, x: L.nn.functional.tanhshrink(x),
    "softmin0": lambda L, x: L.nn.functional.softmin(x, 0),
    "softmin1": lambda L, x: L.nn.functional.softmin(x.reshape(5, -1), dim=1),
    "softmin_dtype": lambda L, x: L.nn.functional.softmin(x, -1, dtype=L.float64),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_pytorch(name, dtype):
    x = np.concatenate([data(40, seed=4, scale=3.0), KINKS])
    compare(ACTIVATIONS[name], x, dtype=dtype)


@pytest.mark.parametrize("name", ["silu", "elu", "selu", "logsigmoid", "mish"])
def test_activation_tails_match_pytorch_to_the_last_digits(name):
    """Far out, where tapegrad's sigmoid (0.5 (tanh(x / 2) + 1)) or expm1's gradient
    (out + 1) would lose relative precision, the values and gradients stay PyTorch's."""
    x = np.array([-700.0, -200.0, -60.0, -35.0, -20.0, 20.0, 35.0, 60.0])
    compare(ACTIVATIONS[name], x)


def test_celu_gradient_takes_pytorchs_float_rounded_alpha():
    """PyTorch's CeluBackward takes s = 1 / float(alpha), alpha rounded to float32: for
    alpha = 0.7 the gradient is alpha s exp(x s), not exp(x / 0.7); tapegrad's is
    PyTorch's (its value uses 1 / 0.7, as PyTorch's forward)."""
    x = tg.tensor([-1.0, -2.5], dtype=tg.float64, requires_grad=True)
    F.celu(x, 0.7).sum().backward()
    s = 1 / float(np.float32(0.7))
    np.testing.assert_allclose(array(x.grad), 0.7 * s * np.exp(np.array([-1.0, -2.5]) * s),
                               rtol=1e-15)
    assert not np.allclose(array(x.grad), np.exp(np.array([-1.0, -2.5]) / 0.7), rtol=1e-9,
                           atol=0)


@pytest.mark.parametrize("shape,n", [((4, 3), 3), ((4, 3, 5), 3), ((4, 3), 1), ((6,), 1),
                                     ((), 1), ((2, 3, 2, 2), 3)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_prelu_matches_pytorch(shape, n, dtype):
    x = data(*shape, seed=6, scale=2.0)
    x.reshape(-1)[:1] = 0.0 if x.size else x.reshape(-1)[:1]     # x = 0 takes the a x side
    compare(lambda L, x, w: L.nn.functional.prelu(x, w), x, data(n, seed=7), dtype=dtype)
    if shape != ():
        m, tm = module_pair(lambda L: L.nn.PReLU(n), dtype)
        run_modules(m, tm, x, dtype)


def test_prelu_module_parameter_and_state_dict():
    torch = _torch()
    for args in [(), (3,), (4, 0.1)]:
        m, tm = nn.PReLU(*args), torch.nn.PReLU(*args)
        assert repr(m) == repr(tm)
        assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
        close(m.weight, tm.weight, "float32")
        assert m.weight.requires_grad and m.weight.dtype is tg.float32
    assert nn.PReLU(2, dtype=tg.float64).weight.dtype is tg.float64


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.prelu(L.ones(2, 3), L.ones(3, dtype=L.float64)),
    lambda L: L.nn.functional.prelu(L.ones(2, 3), L.ones(4)),
    lambda L: L.nn.functional.prelu(L.ones(2, 3), L.ones(1, 3)),
    lambda L: L.nn.functional.prelu(L.tensor(2.0), L.ones(3)),
    lambda L: L.nn.functional.prelu(L.ones(4), L.ones(4)),
    lambda L: L.nn.functional.prelu(L.tensor([1, 2]), L.tensor([1])),
    lambda L: L.nn.functional.celu(L.ones(2), 0.0),
    lambda L: L.nn.functional.hardtanh(L.ones(2), 2.0, 1.0),
    lambda L: L.nn.functional.hardtanh(L.tensor([True])),
    lambda L: L.nn.Hardtanh(1.0, 1.0),
    lambda L: L.nn.functional.silu(L.tensor([1, 2])),
    lambda L: L.nn.functional.elu(L.tensor([True])),
    lambda L: L.nn.functional.selu(L.tensor([1])),
    lambda L: L.nn.functional.mish(L.tensor([1])),
    lambda L: L.nn.functional.hardsigmoid(L.tensor([1])),
    lambda L: L.nn.functional.hardswish(L.tensor([1])),
    lambda L: L.nn.functional.logsigmoid(L.tensor([1])),
])
def test_activation_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


def test_hardtanh_on_integers_and_deprecated_names_as_pytorch():
    torch = _torch()
    for L in (tg, torch):
        assert L.nn.functional.hardtanh(L.tensor([-3, 0, 5]), -1.0, 2.0).tolist() == [-1, 0, 2]
        assert L.nn.functional.relu6(L.tensor([-3, 0, 9])).dtype is L.int64
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            m = L.nn.Hardtanh(min_value=-2.0, max_value=4.0)
        assert [(w.category, str(w.message)) for w in seen] == [
            (FutureWarning, "keyword argument `min_value` is deprecated and renamed to "
                            "`min_val`"),
            (FutureWarning, "keyword argument `max_value` is deprecated and renamed to "
                            "`max_val`")]
        assert (m.min_val, m.max_val) == (-2.0, 4.0)


def test_softmin_implicit_dim_warns_as_pytorch():
    torch = _torch()
    for L in (tg, torch):
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
            y = L.nn.functional.softmin(L.tensor([[1.0, 2.0], [3.0, 5.0]]))
        np.testing.assert_allclose(array(y).sum(1), [1.0, 1.0], rtol=1e-6)


# ----- activation modules ---------------------------------------------------------------
MODULES = [
    ("SiLU", ()), ("SiLU", (True,)), ("Mish", ()), ("Mish", (True,)), ("ELU", ()),
    ("ELU", (0.5, True)), ("CELU", (2.0,)), ("CELU", (1.0, True)), ("SELU", ()),
    ("SELU", (True,)), ("Hardtanh", ()), ("Hardtanh", (-2.0, 0.5, True)), ("ReLU6", ()),
    ("ReLU6", (True,)), ("LogSigmoid", ()), ("Softsign", ()), ("Hardsigmoid", ()),
    ("Hardsigmoid", (True,)), ("Hardswish", ()), ("Hardswish", (True,)), ("Tanhshrink", ()),
    ("Softmin", (1,)), ("Softmin", ()), ("PReLU", ()), ("PReLU", (3, 0.5)),
]


@pytest.mark.parametrize("name,args", MODULES)
def test_activation_module_prints_and_computes_as_pytorch(name, args):
    torch = _torch()
    m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(m) == repr(tm)
    assert list(m.state_dict()) == list(tm.state_dict())
    if name == "Softmin" and not args:
        return
    x = data(4, 3, seed=8, scale=3.0)
    m, tm = module_pair(lambda L: getattr(L.nn, name)(*args))
    if getattr(m, "inplace", False):                # in place on a non-leaf: x * 1
        m0, tm0 = m, tm
        m = nn.Sequential(nn.Identity(), m0)
        m.forward = lambda a: m0(a * 1)
        tm = torch.nn.Sequential(torch.nn.Identity(), tm0)
        tm.forward = lambda a: tm0(a * 1)
    run_modules(m, tm, x)


# ----- in place --------------------------------------------------------------------------
INPLACE = ["silu", "mish", "elu", "selu", "celu", "hardtanh", "relu6", "hardsigmoid",
           "hardswish", "relu", "leaky_relu"]


SAVES_RESULT = {"elu", "selu", "celu", "relu", "leaky_relu"}


@pytest.mark.parametrize("x0", [np.array([-4.0, -1.5, -0.2, 0.5, 2.0, 7.0]), np.array(-0.5)],
                         ids=["array", "0-d"])
@pytest.mark.parametrize("name", INPLACE)
def test_in_place_activation_behaves_as_pytorchs(name, x0):
    """The input is written and returned, its version bumped once; the gradient through it
    is PyTorch's; a later in-place change of the result raises where PyTorch's raises
    (its backward reads the result: the ELU family, relu, leaky_relu) and runs where
    PyTorch's runs (for a 0-d tensor of those, tapegrad runs: README's Differences); a
    leaf that requires grad is refused in PyTorch's words."""
    torch = _torch()
    seen = []
    for L in (tg, torch):
        f = getattr(L.nn.functional, name)
        x = L.tensor(x0, dtype=L.float64, requires_grad=True)
        h = x * 1
        before = h._version
        y = f(h, inplace=True)
        assert y is h and h._version == before + 1
        np.testing.assert_allclose(array(h), array(f(x)), rtol=1e-15)
        y.sum().backward(retain_graph=True)
        grad = array(x.grad).copy()
        h.mul_(2)
        try:
            y.sum().backward()
            after = ("ran", array(x.grad).tolist())
        except RuntimeError as e:                    # the node's name differs by design
            after = ("raised", str(e).split(", which is output")[0].replace("torch.",
                                                                             "tapegrad."))
        seen.append((grad, after))
    np.testing.assert_allclose(seen[0][0], seen[1][0], rtol=1e-12)
    if x0.ndim == 0 and name in SAVES_RESULT and name != "relu":
        assert seen[0][1][0] == "ran" and seen[1][1][0] == "raised"
        return
    assert seen[0][1][0] == seen[1][1][0]
    if seen[0][1][0] == "ran":
        np.testing.assert_allclose(seen[0][1][1], seen[1][1][1], rtol=1e-12)
    else:
        assert seen[0][1][1] == seen[1][1][1]
    same_error(lambda L: getattr(L.nn.functional, name)(L.ones(2, requires_grad=True),
                                                        inplace=True), torch)


@pytest.mark.parametrize("name", INPLACE)
def test_in_place_activation_without_a_recorded_gradient(name):
    """No gradient recorded (a plain tensor; a leaf under no_grad): written in place, the
    result equal to the out-of-place one, no graph."""
    f = getattr(F, name)
    x0 = data(7, seed=9, scale=3.0)
    a = tg.tensor(x0, dtype=tg.float64)
    assert f(a, inplace=True) is a and a._version == 1
    np.testing.assert_array_equal(array(a), array(f(tg.tensor(x0, dtype=tg.float64))))
    leaf = tg.tensor(x0, dtype=tg.float64, requires_grad=True)
    with tg.no_grad():
        out = f(leaf, inplace=True)
    assert out is leaf and leaf.grad_fn is None and leaf.requires_grad
    np.testing.assert_array_equal(array(leaf), array(a))


def test_in_place_activations_inside_compile():
    """Without a gradient the in-place write is a copy_ a replay repeats; with one, the
    recording refuses it (a replay could not repeat it)."""
    x0 = data(5, seed=10)

    @tg.compile
    def infer(x):
        F.elu(x, inplace=True)
        return F.hardswish(x * 2, inplace=True)

    for _ in range(3):
        x = tg.tensor(x0, dtype=tg.float64)
        y = infer(x)
        np.testing.assert_array_equal(array(x), array(F.elu(tg.tensor(x0, dtype=tg.float64))))
        np.testing.assert_array_equal(array(y), array(F.hardswish(x * 2)))
    assert infer.stats()["replays"] >= 1

    @tg.compile
    def train(w):
        return F.silu(w * 1, inplace=True).sum()

    with pytest.raises(RuntimeError, match=r"tg.compile: the in-place silu_\(\)"):
        train(tg.tensor(x0, requires_grad=True))


# ----- Unflatten -------------------------------------------------------------------------
@pytest.mark.parametrize("dim,sizes", [(1, (2, 3)), (1, [3, 2]), (-1, (2, -1)),
                                       (0, (2, 1, 2)), (1, (-1, 1, 3))])
def test_unflatten_matches_pytorch(dim, sizes):
    torch = _torch()
    m, tm = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    assert repr(m) == repr(tm)
    compare(lambda L, x: L.nn.Unflatten(dim, sizes)(x), data(4, 6, seed=11))
    assert m(tg.ones(4, 6)).grad_fn is None


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.Unflatten(1, 3), lambda L: L.nn.Unflatten(1, (2, 2.0)),
    lambda L: L.nn.Unflatten(1, (2, 2))(L.ones(2, 6)),
    lambda L: L.nn.Unflatten(3, (2, -1))(L.ones(2, 6)),
    lambda L: L.nn.Unflatten(1, (4, -1))(L.ones(2, 6)),
])
def test_unflatten_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


# ----- LayerNorm -------------------------------------------------------------------------
def test_layer_norm_is_the_closed_form_and_its_gradient_the_finite_differences():
    x = data(3, 4, 5, seed=12, shift=2.0)
    w, b = data(4, 5, seed=13), data(4, 5, seed=14)
    m = x.mean((1, 2), keepdims=True)
    v = ((x - m) ** 2).mean((1, 2), keepdims=True)
    want = (x - m) / np.sqrt(v + 1e-3) * w + b
    args = [tg.tensor(a, dtype=tg.float64, requires_grad=True) for a in (x, w, b)]
    y = F.layer_norm(args[0], (4, 5), args[1], args[2], eps=1e-3)
    np.testing.assert_allclose(array(y), want, rtol=1e-12, atol=1e-13)
    g = data(3, 4, 5, seed=15)
    (y * tg.tensor(g)).sum().backward()
    for i, a in enumerate((x, w, b)):
        def loss(v, i=i):
            vals = [x, w, b]
            vals[i] = v
            with tg.no_grad():
                t = [tg.tensor(u, dtype=tg.float64) for u in vals]
                return float((F.layer_norm(t[0], (4, 5), t[1], t[2], 1e-3) * tg.tensor(g)).sum())
        np.testing.assert_allclose(array(args[i].grad), fd_grad(loss, a), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape,normalized,kwargs", [
    ((4, 6), 6, {}), ((4, 6), (6,), {"eps": 1e-2}), ((2, 3, 4, 5), (4, 5), {}),
    ((2, 3, 4), (3, 4), {"elementwise_affine": False}), ((5, 3), [3], {"bias": False}),
    ((7,), 7, {}),
])
def test_layer_norm_module_matches_pytorch(shape, normalized, kwargs, dtype):
    torch = _torch()
    assert repr(nn.LayerNorm(normalized, **kwargs)) == repr(torch.nn.LayerNorm(normalized,
                                                                               **kwargs))
    m, tm = module_pair(lambda L: L.nn.LayerNorm(normalized, **kwargs), dtype)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    run_modules(m, tm, data(*shape, seed=16, scale=3.0, shift=1.0), dtype)


def test_layer_norm_defaults_as_pytorch():
    torch = _torch()
    m, tm = nn.LayerNorm((2, 3)), torch.nn.LayerNorm((2, 3))
    assert m.normalized_shape == tm.normalized_shape == (2, 3)
    assert m.eps == tm.eps and m.elementwise_affine is tm.elementwise_affine
    close(m.weight, tm.weight, "float32")
    close(m.bias, tm.bias, "float32")
    assert nn.LayerNorm(3, dtype=tg.float64).weight.dtype is tg.float64


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3), (4,)),
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3), (2, 3, 3)),
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3), 3),
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3), ()),
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3), (3,), L.ones(4)),
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3), (3,), None, L.ones(4)),
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3), (3,), L.ones(3, dtype=L.float64)),
    lambda L: L.nn.functional.layer_norm(L.ones(2, 3, dtype=L.float64), (3,), L.ones(3)),
    lambda L: L.nn.LayerNorm(4)(L.ones(4, 3)),
])
def test_layer_norm_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


# ----- BatchNorm -------------------------------------------------------------------------
BN_CONFIGS = [{}, {"momentum": 0.5}, {"momentum": None}, {"affine": False},
              {"track_running_stats": False}, {"eps": 1e-2, "bias": False},
              {"momentum": None, "affine": False}]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
@pytest.mark.parametrize("kwargs", BN_CONFIGS)
def test_batch_norm_1d_trains_and_evaluates_as_pytorch(kwargs, shape, dtype):
    """Several training steps (outputs, input and parameter grads, running statistics,
    num_batches_tracked after each), then eval mode on the running statistics, then
    training again."""
    m, tm = module_pair(lambda L: L.nn.BatchNorm1d(3, **kwargs), dtype)
    assert repr(m) == repr(tm)
    for step in range(4):
        if step == 3:
            m.eval(), tm.eval()
        run_modules(m, tm, data(*shape, seed=20 + step, scale=2.0, shift=step), dtype,
                    seed=step)
        for (k, v), w in zip(m.state_dict().items(), tm.state_dict().values()):
            close(v, w, dtype)
            assert v.dtype.itemsize == w.dtype.itemsize
        for b in m.buffers():
            assert not b.requires_grad and b.grad_fn is None
        m.zero_grad(), tm.zero_grad()
    m.train(), tm.train()
    run_modules(m, tm, data(*shape, seed=30), dtype)
    for v, w in zip(m.state_dict().values(), tm.state_dict().values()):
        close(v, w, dtype)


def test_batch_norm_running_statistics_are_the_closed_forms():
    """momentum m: running_mean = m mean, running_var = (1 - m) + m var(ddof=1) from
    0 and 1; momentum None: the plain average of the batches' statistics; eval mode
    normalises by them."""
    bn = nn.BatchNorm1d(2, momentum=0.25).double()
    x = data(5, 2, 4, seed=40, shift=3.0)
    bn(tg.tensor(x))
    np.testing.assert_allclose(array(bn.running_mean), 0.25 * x.mean((0, 2)), rtol=1e-14)
    np.testing.assert_allclose(array(bn.running_var), 0.75 + 0.25 * x.transpose(1, 0, 2)
                               .reshape(2, -1).var(1, ddof=1), rtol=1e-14)
    cum = nn.BatchNorm1d(2, momentum=None).double()
    batches = [data(4, 2, seed=41 + i, shift=i) for i in range(3)]
    for b in batches:
        cum(tg.tensor(b))
    assert cum.num_batches_tracked.item() == 3 and cum.num_batches_tracked.dtype is tg.int64
    np.testing.assert_allclose(array(cum.running_mean), np.mean([b.mean(0) for b in batches], 0),
                               rtol=1e-13)
    np.testing.assert_allclose(array(cum.running_var),
                               np.mean([b.var(0, ddof=1) for b in batches], 0), rtol=1e-13)
    cum.eval()
    x = data(3, 2, seed=50)
    want = (x - array(cum.running_mean)) / np.sqrt(array(cum.running_var) + 1e-5)
    np.testing.assert_allclose(array(cum(tg.tensor(x))), want, rtol=1e-12, atol=1e-14)
    assert cum.num_batches_tracked.item() == 3


def test_batch_norm_training_gradient_matches_finite_differences():
    x = data(5, 3, seed=51, scale=2.0)
    w, b = data(3, seed=52), data(3, seed=53)
    g = data(5, 3, seed=54)

    def loss(v):
        with tg.no_grad():
            return float((F.batch_norm(tg.tensor(v), None, None, tg.tensor(w), tg.tensor(b),
                                       True) * tg.tensor(g)).sum())
    t = tg.tensor(x, requires_grad=True, dtype=tg.float64)
    (F.batch_norm(t, None, None, tg.tensor(w), tg.tensor(b), True) * tg.tensor(g)).sum() \
        .backward()
    np.testing.assert_allclose(array(t.grad), fd_grad(loss, x), rtol=1e-6, atol=1e-8)


def test_batch_norm_of_one_value_per_channel_raises_as_pytorch():
    """PyTorch counts the batch (num_batches_tracked) before it refuses it: so does
    tapegrad."""
    torch = _torch()
    same_error(lambda L: L.nn.BatchNorm1d(3)(L.ones(1, 3)), torch)
    same_error(lambda L: L.nn.BatchNorm1d(3)(L.ones(1, 3, 1)), torch)
    for L in (tg, torch):
        bn = L.nn.BatchNorm1d(3)
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when "
                           "training, got input size"):
            bn(L.ones(1, 3))
        assert bn.num_batches_tracked.item() == 1
        bn.eval()
        assert bn(L.ones(1, 3)).shape == (1, 3)       # eval mode takes one sample


def test_batch_norm_state_dict_and_loading_as_pytorch():
    torch = _torch()
    for kwargs in [{}, {"affine": False}, {"track_running_stats": False}, {"bias": False}]:
        m, tm = nn.BatchNorm1d(4, **kwargs), torch.nn.BatchNorm1d(4, **kwargs)
        assert [(k, tuple(v.shape), str(v.dtype).split(".")[-1])
                for k, v in m.state_dict().items()] == \
            [(k, tuple(v.shape), str(v.dtype).split(".")[-1])
             for k, v in tm.state_dict().items()]
        assert [k for k, _ in m.named_buffers()] == [k for k, _ in tm.named_buffers()]
        assert m.state_dict()._metadata[""]["version"] == 2
    tm = torch.nn.BatchNorm1d(4)
    tm(torch.randn(8, 4))
    m = nn.BatchNorm1d(4)
    m.load_state_dict({k: tg.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    for v, w in zip(m.state_dict().values(), tm.state_dict().values()):
        close(v, w, "float32")
    sd = {k: v for k, v in m.state_dict().items() if k != "num_batches_tracked"}
    assert repr(nn.BatchNorm1d(4).load_state_dict(sd)) == "<All keys matched successfully>"
    d = nn.BatchNorm1d(4).double()
    assert d.running_mean.dtype is tg.float64 and d.num_batches_tracked.dtype is tg.int64


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.BatchNorm1d(3)(L.ones(2, 3, 4, 5)),
    lambda L: L.nn.BatchNorm1d(3)(L.ones(2, 4)),
    lambda L: L.nn.BatchNorm2d(3)(L.ones(2, 3)),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), None, None, training=False),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), L.zeros(3), None, training=True),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), L.zeros(3), None, training=False),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), L.zeros(4), L.ones(3)),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), None, None, L.ones(4), training=True),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), None, None, None, L.ones(4),
                                         training=True),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), None, None, training=True, eps=0),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), L.zeros(3), L.ones(3), eps=-1),
    lambda L: L.nn.functional.batch_norm(L.ones(1, 3), None, None, training=True),
    lambda L: L.nn.functional.batch_norm(L.ones(3), None, None, training=True),
    lambda L: L.nn.functional.batch_norm(L.ones(3), L.zeros(3), L.ones(3)),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3), L.zeros(3, dtype=L.float64),
                                         L.ones(3, dtype=L.float64), training=True),
    lambda L: L.nn.functional.batch_norm(L.ones(2, 3, dtype=L.float64), None, None,
                                         L.ones(3), training=True),
])
def test_batch_norm_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


@pytest.mark.parametrize("kwargs", [{}, {"momentum": None, "affine": False}])
def test_batch_norm_2d_matches_pytorch(kwargs):
    m, tm = module_pair(lambda L: L.nn.BatchNorm2d(3, **kwargs))
    for step in range(3):
        if step == 2:
            m.eval(), tm.eval()
        run_modules(m, tm, data(2, 3, 4, 2, seed=60 + step, shift=step), seed=step)
        for v, w in zip(m.state_dict().values(), tm.state_dict().values()):
            close(v, w)
        m.zero_grad(), tm.zero_grad()


# ----- GroupNorm -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("groups,shape,kwargs", [
    (2, (3, 4), {}), (3, (2, 6, 5), {}), (1, (2, 4, 3, 2), {}), (4, (2, 4, 3), {}),
    (2, (3, 4, 5), {"affine": False}), (2, (3, 4), {"bias": False, "eps": 1e-2}),
])
def test_group_norm_matches_pytorch(groups, shape, kwargs, dtype):
    torch = _torch()
    c = shape[1]
    assert repr(nn.GroupNorm(groups, c, **kwargs)) == repr(torch.nn.GroupNorm(groups, c,
                                                                              **kwargs))
    m, tm = module_pair(lambda L: L.nn.GroupNorm(groups, c, **kwargs), dtype)
    assert list(m.state_dict()) == list(tm.state_dict())
    run_modules(m, tm, data(*shape, seed=70, scale=2.0, shift=1.0), dtype)


def test_group_norm_is_the_closed_form():
    x = data(2, 6, 3, seed=71, shift=1.0)
    w, b = data(6, seed=72), data(6, seed=73)
    g = x.reshape(2, 3, -1)
    y = (g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + 1e-5)
    want = y.reshape(2, 6, 3) * w[:, None] + b[:, None]
    got = F.group_norm(tg.tensor(x), 3, tg.tensor(w), tg.tensor(b))
    np.testing.assert_allclose(array(got), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.group_norm(L.ones(2, 6), 4),
    lambda L: L.nn.functional.group_norm(L.ones(2, 6), 3, L.ones(5)),
    lambda L: L.nn.functional.group_norm(L.ones(2, 6), 3, None, L.ones(5)),
    lambda L: L.nn.functional.group_norm(L.ones(1, 2), 2),
    lambda L: L.nn.functional.group_norm(L.ones(6), 2),
    lambda L: L.nn.functional.group_norm(L.ones(2, 6), 3, L.ones(6, dtype=L.float64)),
    lambda L: L.nn.GroupNorm(4, 6),
])
def test_group_norm_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


# ----- losses ----------------------------------------------------------------------------
def _log_probs(*shape, seed):
    z = data(*shape, seed=seed)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _probs(*shape, seed):
    p = np.random.default_rng(seed).random(shape) + 0.05
    return p / p.sum(-1, keepdims=True)


SIGNS = np.sign(data(4, 3, seed=80)) + (data(4, 3, seed=80) == 0)
LOSSES = {
    "kl_div": (lambda L, x, t, r: L.nn.functional.kl_div(x, t, reduction=r),
               lambda: (_log_probs(4, 5, seed=81), _probs(4, 5, seed=82))),
    "kl_div_log_target": (lambda L, x, t, r: L.nn.functional.kl_div(x, t, reduction=r,
                                                                    log_target=True),
                          lambda: (_log_probs(4, 5, seed=81), _log_probs(4, 5, seed=83))),
    "margin_ranking": (lambda L, a, b, t, r: L.nn.functional.margin_ranking_loss(
        a, b, t, margin=0.2, reduction=r),
        lambda: (data(4, 3, seed=84), data(4, 3, seed=85), SIGNS)),
    "soft_margin": (lambda L, x, t, r: L.nn.functional.soft_margin_loss(x, t, reduction=r),
                    lambda: (data(4, 3, seed=86, scale=3.0), SIGNS)),
    "gaussian_nll": (lambda L, x, t, v, r: L.nn.functional.gaussian_nll_loss(
        x, t, v, reduction=r), lambda: (data(4, 3, seed=87), data(4, 3, seed=88),
                                        np.abs(data(4, 3, seed=89)) + 0.1)),
    "gaussian_nll_full_clamped": (lambda L, x, t, v, r: L.nn.functional.gaussian_nll_loss(
        x, t, v, full=True, eps=1e-3, reduction=r),
        lambda: (data(4, 3, seed=87), data(4, 3, seed=88),
                 np.abs(data(4, 3, seed=89)) * np.array([1.0, 1e-6, 0.0]))),
    "gaussian_nll_shared_var": (lambda L, x, t, v, r: L.nn.functional.gaussian_nll_loss(
        x, t, v, reduction=r), lambda: (data(4, 3, seed=87), data(4, 3, seed=88),
                                        np.abs(data(4, seed=90)) + 0.1)),
    "gaussian_nll_var_of_one_col": (lambda L, x, t, v, r: L.nn.functional.gaussian_nll_loss(
        x, t, v, reduction=r), lambda: (data(4, 3, seed=87), data(4, 3, seed=88),
                                        np.abs(data(4, 1, seed=91)) + 0.1)),
    "poisson_nll": (lambda L, x, t, r: L.nn.functional.poisson_nll_loss(x, t, reduction=r),
                    lambda: (data(6, seed=92), np.arange(6.0))),
    "poisson_nll_full": (lambda L, x, t, r: L.nn.functional.poisson_nll_loss(
        x, t, full=True, reduction=r), lambda: (data(6, seed=92), np.arange(6.0) * 1.5)),
    "poisson_nll_rate": (lambda L, x, t, r: L.nn.functional.poisson_nll_loss(
        x, t, log_input=False, eps=1e-3, reduction=r),
        lambda: (np.abs(data(6, seed=93)), np.arange(6.0))),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_pytorch(name, reduction, dtype):
    f, make = LOSSES[name]
    arrays = make()
    flags = [True] * len(arrays)
    if name == "soft_margin":                        # PyTorch: not differentiable in target
        flags[1] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # kl_div's 'mean' warning
        compare(lambda L, *ts: f(L, *ts, reduction), *arrays, dtype=dtype,
                requires_grad=flags)


def test_kl_div_batchmean_and_its_warning_as_pytorch():
    torch = _torch()
    x, t = _log_probs(4, 5, seed=81), _probs(4, 5, seed=82)
    a, _ = compare(lambda L, x, t: L.nn.functional.kl_div(x, t, reduction="batchmean"), x, t)
    np.testing.assert_allclose(array(a), (t * (np.log(t) - x)).sum() / 4, rtol=1e-13)
    compare(lambda L, x, t: L.nn.KLDivLoss(reduction="batchmean", log_target=True)(x, t),
            x, np.log(t))
    compare(lambda L, x: L.nn.functional.kl_div(x, x.exp(), reduction="batchmean"), 0.3)
    words = []
    for L in (tg, torch):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            L.nn.functional.kl_div(L.zeros(2), L.ones(2))
            L.nn.functional.kl_div(L.zeros(2), L.ones(2), reduction="sum")
        words.append([(x.category, str(x.message)) for x in w])
    assert words[0] == words[1] and len(words[0]) == 1


def test_losses_are_their_closed_forms():
    x, t = _log_probs(3, 4, seed=94), _probs(3, 4, seed=95)
    got = F.kl_div(tg.tensor(x), tg.tensor(t), reduction="sum")
    np.testing.assert_allclose(array(got), (t * (np.log(t) - x)).sum(), rtol=1e-13)
    zero_t = t.copy()
    zero_t[0, 0] = 0.0                               # 0 log 0 = 0
    got = F.kl_div(tg.tensor(x), tg.tensor(zero_t), reduction="none")
    assert array(got)[0, 0] == 0.0
    a, b, s = data(5, seed=96), data(5, seed=97), np.sign(data(5, seed=98))
    got = F.margin_ranking_loss(tg.tensor(a), tg.tensor(b), tg.tensor(s), 0.5, reduction="none")
    np.testing.assert_allclose(array(got), np.maximum(0, -s * (a - b) + 0.5), rtol=1e-15)
    got = F.soft_margin_loss(tg.tensor(a), tg.tensor(s), reduction="sum")
    np.testing.assert_allclose(array(got), np.log1p(np.exp(-s * a)).sum(), rtol=1e-14)
    v = np.array([2.0, 1e-9, 0.5, 1.0, 3.0])
    got = F.gaussian_nll_loss(tg.tensor(a), tg.tensor(b), tg.tensor(v), full=True,
                              reduction="none")
    vc = np.maximum(v, 1e-6)
    np.testing.assert_allclose(array(got), 0.5 * (np.log(vc) + (a - b) ** 2 / vc)
                               + 0.5 * math.log(2 * math.pi), rtol=1e-14)
    k = np.array([0.0, 1.0, 2.0, 5.0, 9.0])
    got = F.poisson_nll_loss(tg.tensor(a), tg.tensor(k), full=True, reduction="none")
    stirling = np.where(k > 1, k * np.log(np.maximum(k, 1)) - k
                        + 0.5 * np.log(2 * np.pi * np.maximum(k, 1)), 0)
    np.testing.assert_allclose(array(got), np.exp(a) - k * a + stirling, rtol=1e-14)


def test_gaussian_nll_variance_gets_its_gradient_through_the_clamp():
    """PyTorch clamps var at eps under no_grad: the gradient reaches var as if unclamped
    (d/dvar of the clamped loss, evaluated at eps)."""
    var = tg.tensor([1e-9, 2.0], dtype=tg.float64, requires_grad=True)
    x, t = tg.tensor([1.0, 1.0], dtype=tg.float64), tg.tensor([0.0, 0.0], dtype=tg.float64)
    F.gaussian_nll_loss(x, t, var, reduction="sum").backward()
    vc = np.array([1e-6, 2.0])
    np.testing.assert_allclose(array(var.grad), 0.5 * (1 / vc - 1 / vc ** 2), rtol=1e-14)
    compare(lambda L, x, t: L.nn.functional.gaussian_nll_loss(x, t, 0.5), data(3, seed=1),
            data(3, seed=2))


@pytest.mark.parametrize("make", [
    lambda L: L.nn.KLDivLoss(), lambda L: L.nn.KLDivLoss(reduction="sum", log_target=True),
    lambda L: L.nn.MarginRankingLoss(), lambda L: L.nn.MarginRankingLoss(0.5, reduction="sum"),
    lambda L: L.nn.SoftMarginLoss(), lambda L: L.nn.GaussianNLLLoss(full=True, eps=1e-3),
    lambda L: L.nn.PoissonNLLLoss(), lambda L: L.nn.PoissonNLLLoss(False, True, eps=1e-3),
    lambda L: L.nn.CosineSimilarity(0, 1e-3), lambda L: L.nn.PairwiseDistance(1.0, 0.0, True),
])
def test_loss_and_distance_modules_as_pytorch(make):
    torch = _torch()
    m, tm = make(tg), make(torch)
    assert repr(m) == repr(tm) and list(m.state_dict()) == list(tm.state_dict())
    assert {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"} == \
        {k: v for k, v in vars(tm).items() if not k.startswith("_") and k != "training"}
    n = {"MarginRankingLoss": 3, "GaussianNLLLoss": 3}.get(type(m).__name__, 2)
    ins = [_log_probs(4, 3, seed=100), _probs(4, 3, seed=101), np.abs(data(4, 3, seed=102))]
    flags = [True, type(m).__name__ != "SoftMarginLoss", True][:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare(lambda L, *ts: make(L)(*ts), *ins[:n], requires_grad=flags)


def test_legacy_reduction_arguments_as_pytorch():
    torch = _torch()
    for make in [lambda L: L.nn.KLDivLoss(size_average=False),
                 lambda L: L.nn.SoftMarginLoss(reduce=False),
                 lambda L: L.nn.PoissonNLLLoss(size_average=True),
                 lambda L: L.nn.MarginRankingLoss(reduce=False)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert make(tg).reduction == make(torch).reduction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare(lambda L, x, t: L.nn.functional.kl_div(x, t, size_average=False),
                _log_probs(3, 4, seed=103), _probs(3, 4, seed=104))


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.kl_div(L.ones(3), L.ones(3), reduction="foo"),
    lambda L: L.nn.functional.kl_div(L.ones(3), L.ones(4), reduction="sum"),
    lambda L: L.nn.functional.margin_ranking_loss(L.ones(3), L.ones(3), L.ones(3, 1)),
    lambda L: L.nn.functional.margin_ranking_loss(L.ones(3), L.ones(3), L.ones(3),
                                                  reduction="foo"),
    lambda L: L.nn.functional.soft_margin_loss(L.ones(3), L.ones(3), reduction="foo"),
    lambda L: L.nn.functional.poisson_nll_loss(L.ones(3), L.ones(3), reduction="foo"),
    lambda L: L.nn.functional.gaussian_nll_loss(L.ones(3), L.ones(3), -1.0),
    lambda L: L.nn.functional.gaussian_nll_loss(L.ones(3), L.ones(3), L.tensor([1., -1, 1])),
    lambda L: L.nn.functional.gaussian_nll_loss(L.ones(3), L.ones(3), L.ones(2)),
    lambda L: L.nn.functional.gaussian_nll_loss(L.ones(2, 3), L.ones(2, 3), L.ones(1, 2)),
    lambda L: L.nn.functional.gaussian_nll_loss(L.ones(3), L.ones(3), L.ones(3),
                                                reduction="foo"),
])
def test_loss_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


# ----- distances and pad -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shapes,kwargs", [
    (((4, 5), (4, 5)), {}), (((4, 5), (4, 5)), {"dim": 0}), (((1, 5), (4, 5)), {"dim": 0}),
    (((3, 4, 5), (4, 5)), {"dim": -1}), (((6,), (6,)), {"dim": 0}),
    (((4, 5), (4, 5)), {"eps": 0.5}),
])
def test_cosine_similarity_matches_pytorch(shapes, kwargs, dtype):
    arrays = [data(*s, seed=110 + i) for i, s in enumerate(shapes)]
    compare(lambda L, a, b: L.nn.functional.cosine_similarity(a, b, **kwargs), *arrays,
            dtype=dtype)


def test_cosine_similarity_is_the_closed_form_and_clamps_as_pytorch():
    a, b = data(3, 4, seed=120), data(3, 4, seed=121)
    a[1] *= 1e-12                                    # its norm below eps: clamped
    want = (a * b).sum(1) / (np.maximum(np.linalg.norm(a, axis=1), 1e-8)
                             * np.maximum(np.linalg.norm(b, axis=1), 1e-8))
    np.testing.assert_allclose(array(F.cosine_similarity(tg.tensor(a), tg.tensor(b))), want,
                               rtol=1e-13)
    compare(lambda L, a, b: L.nn.functional.cosine_similarity(a, b), a, b)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 0.5, math.inf])
@pytest.mark.parametrize("shapes,keepdim", [(((4, 5), (4, 5)), False), (((5,), (3, 5)), True),
                                            (((2, 3, 4), (2, 3, 4)), False)])
def test_pairwise_distance_matches_pytorch(p, shapes, keepdim):
    arrays = [data(*s, seed=130 + i) for i, s in enumerate(shapes)]
    compare(lambda L, a, b: L.nn.functional.pairwise_distance(a, b, p, keepdim=keepdim),
            *arrays)
    a, b = arrays
    want = (np.abs(a - b + 1e-6) ** p).sum(-1) ** (1 / p) if p != math.inf else \
        np.abs(a - b + 1e-6).max(-1)
    np.testing.assert_allclose(array(F.pairwise_distance(tg.tensor(a), tg.tensor(b), p))
                               .reshape(want.shape), want, rtol=1e-13)


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.cosine_similarity(L.ones(2, 3, dtype=L.int64),
                                                L.ones(2, 3, dtype=L.int64)),
    lambda L: L.nn.functional.cosine_similarity(L.ones(2, 3), L.ones(2, 4)),
    lambda L: L.nn.functional.cosine_similarity(L.ones(2, 3), L.ones(2, 3), dim=2),
    lambda L: L.nn.functional.pairwise_distance(L.ones(2, 3), L.ones(2, 4)),
])
def test_distance_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("pad,value", [
    ((1, 2), None), ((0, 3, 2, 0), 0.5), ((-1, 2, 1, -1), -2.0), ((1, 1, 1, 1, 1, 1), 3.0),
    ((-2, -1), None), ((0, 0), None), ((), None), ((-1, -3), 1.0), ([2, 0, 0, 1], None),
])
def test_constant_pad_matches_pytorch(pad, value, dtype):
    x = data(2, 3, 4, seed=140)
    a, _ = compare(lambda L, t: L.nn.functional.pad(t, pad, value=value), x, dtype=dtype)
    if all(p >= 0 for p in pad):                     # NumPy's pad, the same numbers
        width = [(0, 0)] * (3 - len(pad) // 2) + \
            [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(len(pad) // 2))]
        want = np.pad(x, width, constant_values=0.0 if value is None else value)
        np.testing.assert_allclose(array(a), want.astype(dtype), rtol=1e-7)


def test_pad_keeps_integer_dtypes_and_refuses_other_modes():
    torch = _torch()
    for L in (tg, torch):
        y = L.nn.functional.pad(L.ones(2, 3, dtype=L.int64), (1, 1), value=2)
        assert y.dtype is L.int64 and y.tolist() == [[2, 1, 1, 1, 2]] * 2
    for mode in ("reflect", "replicate", "circular"):
        with pytest.raises(NotImplementedError, match="mode='constant' only"):
            F.pad(tg.ones(2, 3), (1, 1), mode=mode)


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.pad(L.ones(2, 3), (1,)),
    lambda L: L.nn.functional.pad(L.ones(2, 3), (1, 1, 1, 1, 1, 1)),
    lambda L: L.nn.functional.pad(L.ones(2, 3), (-2, -2)),
    lambda L: L.nn.functional.pad(L.ones(2, 3), (1, 1), mode="foo"),
    lambda L: L.nn.functional.pad(L.ones(2, 3), (1, 1), mode="reflect", value=1.0),
    lambda L: L.nn.functional.pad(L.ones(2, 3), [1, 1.5]),
])
def test_pad_errors_match_pytorch(scenario):
    same_error(scenario, _torch())


# ----- names, graphs, a compiled step and a trained network -------------------------------
NEW_FUNCTIONS = ("silu mish logsigmoid softsign tanhshrink softmin elu selu celu hardtanh "
                 "relu6 hardsigmoid hardswish prelu layer_norm batch_norm group_norm pad "
                 "cosine_similarity pairwise_distance kl_div margin_ranking_loss "
                 "soft_margin_loss gaussian_nll_loss poisson_nll_loss").split()
NEW_MODULES = ("SiLU Mish ELU SELU CELU Hardtanh ReLU6 Hardsigmoid Hardswish LogSigmoid "
               "Softsign Tanhshrink Softmin PReLU Unflatten LayerNorm BatchNorm1d BatchNorm2d "
               "GroupNorm CosineSimilarity PairwiseDistance KLDivLoss MarginRankingLoss "
               "SoftMarginLoss GaussianNLLLoss PoissonNLLLoss").split()


def test_new_names_are_exported_under_pytorchs_names():
    torch = _torch()
    for name in NEW_FUNCTIONS:
        assert name in F.__all__ and hasattr(torch.nn.functional, name)
    for name in NEW_MODULES:
        assert name in nn.__all__ and hasattr(torch.nn, name)


def test_composed_graphs_show_their_primitives():
    """The node names README.md lists (PyTorch's fused ones in parentheses there)."""
    x = tg.randn(4, 3, dtype=tg.float64, requires_grad=True)
    assert F.silu(x).grad_fn.name() == "WhereBackward0"
    assert F.layer_norm(x, (3,)).grad_fn.name() == "AddBackward0"
    assert F.batch_norm(x, None, None, training=True).grad_fn.name() == "AddBackward0"
    assert F.group_norm(x, 3).grad_fn.name() == "ViewBackward0"
    assert F.pad(x, (1, 1)).grad_fn.name() == "CatBackward0"
    assert F.prelu(x, tg.ones(1, dtype=tg.float64)).grad_fn.name() == "WhereBackward0"


def _mlp(L):
    return L.nn.Sequential(L.nn.Linear(5, 16), L.nn.LayerNorm(16), L.nn.SiLU(),
                           L.nn.Linear(16, 16), L.nn.LayerNorm(16, bias=False), L.nn.SiLU(),
                           L.nn.Linear(16, 3))


def test_mlp_with_layer_norm_and_silu_trains_as_pytorch():
    """SGD with momentum, ten steps from the same weights, float64: the same parameters."""
    torch = _torch()
    tg.manual_seed(3)
    model = _mlp(tg).double()
    ref = twin_from(model, _mlp(torch).double())
    opt = tg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ropt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    for step in range(10):
        x, y = data(8, 5, seed=200 + step), data(8, 3, seed=300 + step)
        for m, o, L in ((model, opt, tg), (ref, ropt, torch)):
            o.zero_grad()
            loss = L.nn.functional.mse_loss(m(L.tensor(x)), L.tensor(y))
            loss.backward()
            o.step()
    for (k, p), q in zip(model.state_dict().items(), ref.state_dict().values()):
        np.testing.assert_allclose(array(p), array(q), rtol=1e-9, atol=1e-12, err_msg=k)
    assert not np.allclose(array(model[0].weight), array(_mlp(tg).double()[0].weight))


def test_compiled_training_step_with_the_new_layers_equals_eager():
    """LayerNorm, BatchNorm1d (its running statistics are updates a replay repeats), the
    activations, PReLU, pad, the new losses in a tg.compile'd step: replayed, with the
    same losses and state as eager, to the bit."""
    tg.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.SiLU(), nn.Linear(8, 8),
                          nn.BatchNorm1d(8), nn.ELU(), nn.Hardswish(), nn.Mish(), nn.PReLU(),
                          nn.Linear(8, 3)).double()
    twin = copy.deepcopy(model)
    x, y = tg.tensor(data(6, 4, seed=400)), tg.tensor(data(6, 3, seed=401))

    def step(model, opt):
        opt.zero_grad()
        out = model(x)
        loss = (F.kl_div(out.log_softmax(1), y.softmax(1), reduction="batchmean")
                + F.cosine_similarity(out, y).sum() + F.pad(out, (1, 2)).pow(2).mean()
                + F.poisson_nll_loss(out, y.abs(), full=True) + F.selu(out).mean())
        loss.backward()
        opt.step()
        return loss

    opt, topt = tg.optim.SGD(model.parameters(), lr=0.1), tg.optim.SGD(twin.parameters(), lr=0.1)
    compiled = tg.compile(step)
    for _ in range(5):
        assert compiled(model, opt).item() == step(twin, topt).item()
    assert compiled.stats()["replays"] >= 2
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_array_equal(array(a), array(b), err_msg=k)


def test_compiled_loss_functions_replay_as_eager():
    """gaussian_nll_loss turns var < 0 into a Python bool (PyTorch's check): a guard;
    group_norm, margin ranking and soft margin losses, pairwise distance: plain records."""
    def loss(a, b, v):
        return (F.gaussian_nll_loss(a, b, v) + F.group_norm(a.reshape(2, 4, 3), 2).sum()
                + F.margin_ranking_loss(a, b, b.sign()) + F.soft_margin_loss(a, b.sign())
                + F.pairwise_distance(a, b).sum() + F.hardtanh(a, -0.5, 0.5).sum())
    compiled = tg.compile(loss)
    for i in range(4):
        args = [tg.tensor(data(2, 12, seed=500 + 3 * i + j), requires_grad=True)
                for j in range(3)]
        args[2] = args[2].detach().abs().requires_grad_()
        twins = [a.detach().requires_grad_() for a in args]
        got, want = compiled(*args), loss(*twins)
        assert got.item() == want.item()
        got.backward(), want.backward()
        for a, b in zip(args, twins):
            np.testing.assert_array_equal(array(a.grad), array(b.grad))
    assert compiled.stats()["replays"] >= 2
