"""``tg.nn`` layers, activations, containers, ``nn.init`` and ``nn.utils`` against PyTorch:
the same start values in both (a tapegrad module's state copied into the torch one),
outputs and gradients compared to 1e-10 in float64; gradients against central finite
differences where PyTorch is absent."""
import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad.nn import functional as F

from conftest import fd_grad
from nn_twins import array, class_name_only, close, grads_close, same_error, twin_from

pytestmark = pytest.mark.usefixtures("isolated")


def data(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def both(a, torch, requires_grad=True):
    """The same float64 values as a tapegrad and a torch leaf."""
    return (tg.tensor(a, dtype=tg.float64, requires_grad=requires_grad),
            torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad))


def check_module(module, torch_module, *shapes, seed=0):
    """Runs both modules on the same random float64 inputs: outputs, input grads and
    parameter grads agree to 1e-10 (the torch module takes the tapegrad one's state)."""
    torch = pytest.importorskip("torch")
    module = module.double()
    torch_module = twin_from(module, torch_module.double())
    ins = [both(data(*s, seed=seed + i), torch) for i, s in enumerate(shapes)]
    out = module(*[a for a, _ in ins])
    ref = torch_module(*[b for _, b in ins])
    close(out, ref)
    weights = data(*ref.shape, seed=99)         # a non-uniform upstream gradient
    (out * tg.tensor(weights, dtype=tg.float64)).sum().backward()
    (ref * torch.from_numpy(weights)).sum().backward()
    for a, b in ins:
        close(a.grad, b.grad)
    grads_close(module.parameters(), torch_module.parameters())
    return out


# ----- Linear, Bilinear, Flatten, Identity --------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 4, 3), (2, 1, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_pytorch(shape, bias):
    torch = pytest.importorskip("torch")
    check_module(nn.Linear(3, 4, bias=bias), torch.nn.Linear(3, 4, bias=bias), shape)


@pytest.mark.parametrize("shape", [(2, 5), (5,), (2, 6, 5), (2, 7, 6, 5)])
def test_linear_shape_errors_match_pytorch(shape):
    torch = pytest.importorskip("torch")
    same_error(lambda L: L.nn.Linear(3, 4)(L.ones(*shape)), torch)
    same_error(lambda L: L.nn.functional.linear(L.ones(*shape), L.ones(4, 3)), torch)


def test_linear_default_init_is_pytorch_kaiming_uniform():
    tg.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = array(layer.weight), array(layer.bias)
    assert layer.weight.dtype is tg.float32 and tuple(w.shape) == (300, 400)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.02)    # U(-b, b): variance b^2/3
    assert abs(w.mean()) < 0.01 * bound and b.min() < -0.5 * bound < 0.5 * bound < b.max()
    tg.manual_seed(0)
    np.testing.assert_array_equal(array(nn.Linear(400, 300).weight), w)   # seeded
    assert nn.Linear(2, 3, dtype=tg.float64).weight.dtype is tg.float64


def test_linear_without_torch_matches_finite_differences():
    layer = nn.Linear(3, 2).double()
    x = tg.tensor(data(4, 3), dtype=tg.float64, requires_grad=True)
    layer(x).pow(2).sum().backward()
    w = array(layer.weight).copy()

    def loss_of_w(v):
        return float(((data(4, 3) @ v.T + array(layer.bias)) ** 2).sum())
    np.testing.assert_allclose(array(layer.weight.grad), fd_grad(loss_of_w, w), atol=1e-6)
    np.testing.assert_allclose(array(x.grad), fd_grad(
        lambda v: float(((v @ w.T + array(layer.bias)) ** 2).sum()), data(4, 3)), atol=1e-6)


@pytest.mark.parametrize("shapes", [((5, 3), (5, 4)), ((3,), (4,)), ((2, 6, 3), (2, 6, 4))])
def test_bilinear_matches_pytorch(shapes):
    torch = pytest.importorskip("torch")
    check_module(nn.Bilinear(3, 4, 2), torch.nn.Bilinear(3, 4, 2), *shapes)
    check_module(nn.Bilinear(3, 4, 2, bias=False), torch.nn.Bilinear(3, 4, 2, bias=False),
                 *shapes)


@pytest.mark.parametrize("shapes", [((2, 2), (2, 4)), ((2, 3), (2, 3)), ((2, 3), (3, 4))])
def test_bilinear_errors_match_pytorch(shapes):
    torch = pytest.importorskip("torch")
    same_error(lambda L: L.nn.Bilinear(3, 4, 5)(L.ones(*shapes[0]), L.ones(*shapes[1])), torch)


def test_bilinear_init_bounds():
    tg.manual_seed(3)
    layer = nn.Bilinear(16, 5, 40)
    bound = 1 / 4
    assert tuple(layer.weight.shape) == (40, 16, 5)
    assert np.abs(array(layer.weight)).max() <= bound
    assert array(layer.weight).var() == pytest.approx(bound ** 2 / 3, rel=0.05)


@pytest.mark.parametrize("start, end", [(1, -1), (0, -1), (0, 1), (1, 2), (2, 2)])
def test_flatten_matches_pytorch(start, end):
    torch = pytest.importorskip("torch")
    out = check_module(nn.Flatten(start, end), torch.nn.Flatten(start, end), (2, 3, 4))
    assert tuple(out.shape) == tuple(torch.ones(2, 3, 4).flatten(start, end).shape)


def test_identity_returns_its_input():
    x = tg.ones(2)
    assert nn.Identity(3, a=4)(x) is x and list(nn.Identity().parameters()) == []


# ----- containers -------------------------------------------------------------------------
def _layers(L):
    return [L.nn.Linear(3, 4), L.nn.ReLU(), L.nn.Linear(4, 4), L.nn.Tanh(), L.nn.Linear(4, 2)]


def test_sequential_is_the_composition_and_indexes_as_pytorch():
    torch = pytest.importorskip("torch")
    seq, ref = nn.Sequential(*_layers(tg)), torch.nn.Sequential(*_layers(torch))
    check_module(seq, ref, (6, 3))
    x = tg.randn(2, 3, dtype=tg.float64)
    composed = x
    for layer in seq:
        composed = layer(composed)
    close(seq(x), composed, 0)
    assert len(seq) == len(ref) == 5
    assert seq[-1] is seq[4] and seq[1] is list(seq)[1]
    for sl in (slice(1, 4), slice(None, None, 2), slice(-2, None)):
        assert type(seq[sl]) is nn.Sequential
        assert list(seq[sl]._modules) == list(ref[sl]._modules)
        assert repr(seq[sl]) == repr(ref[sl])
    same_error(lambda L: L.nn.Sequential(L.nn.ReLU())[3], torch)
    same_error(lambda L: L.nn.Sequential(L.nn.ReLU()) + L.nn.ReLU(), torch, class_name_only)


def test_sequential_edits_as_pytorch():
    torch = pytest.importorskip("torch")
    mine, theirs = nn.Sequential(*_layers(tg)), torch.nn.Sequential(*_layers(torch))
    edits = [lambda s, L: s.append(L.nn.Sigmoid()),
             lambda s, L: s.insert(1, L.nn.Identity()),
             lambda s, L: s.insert(-2, L.nn.GELU()),
             lambda s, L: s.__delitem__(0),
             lambda s, L: s.__delitem__(slice(0, 2)),
             lambda s, L: s.pop(-1),
             lambda s, L: s.extend(L.nn.Sequential(L.nn.ReLU())),
             lambda s, L: s.__setitem__(0, L.nn.Softplus()),
             lambda s, L: s.__iadd__(L.nn.Sequential(L.nn.Tanh()))]
    for edit in edits:
        edit(mine, tg)
        edit(theirs, torch)
        assert repr(mine) == repr(theirs)
    assert repr(mine + nn.Sequential(nn.ReLU())) == repr(theirs + torch.nn.Sequential(
        torch.nn.ReLU()))
    named = OrderedDict([("a", nn.Linear(1, 1)), ("b", nn.ReLU())])
    assert [n for n, _ in nn.Sequential(named).named_parameters()] == ["a.weight", "a.bias"]


def test_module_list_registers_and_edits_as_pytorch():
    torch = pytest.importorskip("torch")
    mine = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    assert len(list(mine.parameters())) == 6
    for edit in (lambda m, L: m.append(L.nn.ReLU()), lambda m, L: m.extend([L.nn.Tanh()]),
                 lambda m, L: m.insert(1, L.nn.Sigmoid()), lambda m, L: m.__delitem__(0),
                 lambda m, L: m.__delitem__(slice(2, None)), lambda m, L: m.pop(0),
                 lambda m, L: m.__setitem__(-1, L.nn.GELU()),
                 lambda m, L: m.__iadd__([L.nn.ReLU(), L.nn.ReLU()])):
        edit(mine, tg)
        edit(theirs, torch)
        assert repr(mine) == repr(theirs)
        assert [n for n, _ in mine.named_parameters()] == [n for n, _ in
                                                           theirs.named_parameters()]
    assert repr(mine[1:]) == repr(theirs[1:]) and mine[-1] is mine[len(mine) - 1]
    assert repr(mine + nn.ModuleList([nn.Tanh()])) == repr(
        theirs + torch.nn.ModuleList([torch.nn.Tanh()]))
    same_error(lambda L: L.nn.ModuleList()[0], torch)
    same_error(lambda L: L.nn.ModuleList().extend(3), torch)


def test_module_dict_as_pytorch():
    torch = pytest.importorskip("torch")
    mine = nn.ModuleDict({"lin": nn.Linear(2, 3), "act": nn.ReLU()})
    theirs = torch.nn.ModuleDict({"lin": torch.nn.Linear(2, 3), "act": torch.nn.ReLU()})
    mine.update([("out", nn.Linear(3, 1))])
    theirs.update([("out", torch.nn.Linear(3, 1))])
    mine["tanh"] = nn.Tanh()
    theirs["tanh"] = torch.nn.Tanh()
    assert repr(mine) == repr(theirs) and list(mine) == list(theirs)
    assert list(mine.keys()) == list(theirs.keys()) and len(mine) == 4 and "act" in mine
    assert [n for n, _ in mine.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert isinstance(mine.pop("act"), nn.ReLU) and "act" not in mine
    assert [type(v).__name__ for v in mine.values()] == ["Linear", "Linear", "Tanh"]
    mine.clear()
    assert len(mine) == 0
    same_error(lambda L: L.nn.ModuleDict().update(3), torch)
    same_error(lambda L: L.nn.ModuleDict().update([("a", L.nn.ReLU(), 1)]), torch)
    same_error(lambda L: L.nn.ModuleDict().update([3]), torch)


# ----- Dropout ----------------------------------------------------------------------------
def test_dropout_zeroes_and_scales_while_training():
    tg.manual_seed(5)
    p = 0.3
    layer = nn.Dropout(p)
    x = tg.tensor(data(200, 500) + 3.0, dtype=tg.float64, requires_grad=True)
    y = layer(x)
    yv, xv = array(y), array(x)
    dropped = yv == 0
    assert dropped.mean() == pytest.approx(p, abs=0.01)
    np.testing.assert_allclose(yv[~dropped], xv[~dropped] / (1 - p), rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(array(x.grad), np.where(dropped, 0.0, 1 / (1 - p)), rtol=1e-15)
    layer.eval()
    assert not layer.training
    close(layer(x), x, 0)
    assert F.dropout(x, 0.5, training=False) is x
    np.testing.assert_array_equal(array(F.dropout(x, 1.0)), np.zeros_like(xv))
    close(F.dropout(x, 0.0), x, 0)


def test_dropout_in_place_and_errors():
    torch = pytest.importorskip("torch")
    x = tg.ones(1000, dtype=tg.float64)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x and set(np.unique(array(x))) <= {0.0, 2.0}
    same_error(lambda L: L.nn.Dropout(1.5), torch)
    same_error(lambda L: L.nn.functional.dropout(L.ones(2), -0.1), torch)


# ----- Embedding --------------------------------------------------------------------------
@pytest.mark.parametrize("index", [[3, 1, 3, 0, 3], [[1, 2], [2, 2], [4, 0]], 2])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_pytorch(index, padding_idx):
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    emb = nn.Embedding(5, 3, padding_idx=padding_idx).double()
    ref = twin_from(emb, torch.nn.Embedding(5, 3, padding_idx=padding_idx).double())
    if padding_idx is not None:
        assert not array(emb.weight)[padding_idx].any()
        with tg.no_grad():
            emb.weight.add_(1)                   # the padding row is used in forward as is
        ref = twin_from(emb, ref)
    out, want = emb(tg.tensor(index)), ref(torch.tensor(index))
    close(out, want, 0)
    weights = data(*want.shape, seed=4)
    (out * tg.tensor(weights, dtype=tg.float64)).sum().backward()
    (want * torch.from_numpy(weights)).sum().backward()
    close(emb.weight.grad, ref.weight.grad)      # repeated rows accumulate; padding gets 0


def test_embedding_max_norm_renormalizes_rows_as_pytorch():
    torch = pytest.importorskip("torch")
    emb = nn.Embedding(6, 4, max_norm=1.5, norm_type=1.0).double()
    ref = twin_from(emb, torch.nn.Embedding(6, 4, max_norm=1.5, norm_type=1.0).double())
    index = [[0, 2, 2], [5, 0, 1]]
    close(emb(tg.tensor(index)), ref(torch.tensor(index)))
    close(emb.weight, ref.weight)                # rows 0, 1, 2, 5 renormed in place


def test_embedding_from_pretrained_and_errors():
    torch = pytest.importorskip("torch")
    w = tg.tensor(data(4, 2))
    emb = nn.Embedding.from_pretrained(w)
    assert not emb.weight.requires_grad and emb(tg.tensor([1])).grad_fn is None
    close(emb(tg.tensor([3, 1])), w[[3, 1]], 0)
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad
    same_error(lambda L: L.nn.Embedding(5, 2)(L.tensor([0, 5])), torch)
    same_error(lambda L: L.nn.Embedding(5, 2)(L.tensor([0, -1])), torch)
    same_error(lambda L: L.nn.Embedding(5, 2)(L.tensor([0.0, 1.0])), torch)
    same_error(lambda L: L.nn.Embedding(5, 2, padding_idx=5), torch)
    same_error(lambda L: L.nn.Embedding(5, 2, padding_idx=-6), torch)


# ----- activations ------------------------------------------------------------------------
def _activation_input():
    x = data(4, 6, seed=7, scale=3.0)
    x[0, :4] = [0.0, -0.0, 25.0, -40.0]          # exact zeros and large magnitudes
    return x


ACTIVATIONS = [
    ("ReLU", (), {}), ("LeakyReLU", (), {}), ("LeakyReLU", (0.2,), {}), ("Tanh", (), {}),
    ("Sigmoid", (), {}), ("GELU", (), {}), ("GELU", (), {"approximate": "tanh"}),
    ("Softplus", (), {}), ("Softplus", (2.0, 5.0), {}), ("Softmax", (), {"dim": 1}),
    ("Softmax", (), {"dim": 0}), ("LogSoftmax", (), {"dim": 1}),
    ("LogSoftmax", (), {"dim": -2}),
]


@pytest.mark.parametrize("name, args, kwargs", ACTIVATIONS)
def test_activation_matches_pytorch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    a, b = both(_activation_input(), torch)
    out = getattr(nn, name)(*args, **kwargs)(a)
    want = getattr(torch.nn, name)(*args, **kwargs)(b)
    close(out, want)
    weights = data(4, 6, seed=8)
    (out * tg.tensor(weights, dtype=tg.float64)).sum().backward()
    (want * torch.from_numpy(weights)).sum().backward()
    close(a.grad, b.grad)


@pytest.mark.parametrize("name, args, kwargs", ACTIVATIONS)
def test_activation_gradient_matches_finite_differences(name, args, kwargs):
    x = data(3, 4, seed=11, scale=2.0)
    weights = data(3, 4, seed=12)
    layer = getattr(nn, name)(*args, **kwargs)

    def f(v):
        with tg.no_grad():
            return float((array(layer(tg.tensor(v, dtype=tg.float64))) * weights).sum())
    t = tg.tensor(x, dtype=tg.float64, requires_grad=True)
    (layer(t) * tg.tensor(weights, dtype=tg.float64)).sum().backward()
    np.testing.assert_allclose(array(t.grad), fd_grad(f, x), atol=1e-6)


def test_in_place_activations_write_into_their_input():
    x = tg.tensor([-1.0, 2.0, -3.0])
    assert nn.ReLU(inplace=True)(x) is x
    np.testing.assert_array_equal(array(x), [0.0, 2.0, 0.0])
    y = tg.tensor([-1.0, 2.0])
    assert F.leaky_relu(y, 0.5, inplace=True) is y
    np.testing.assert_array_equal(array(y), [-0.5, 2.0])
    z = tg.tensor([-1.0, 2.0], requires_grad=True)
    h = z * 1
    out = nn.ReLU(inplace=True)(h)              # recorded: relu_ on h, as PyTorch's
    assert out is h and out.grad_fn.name() == "ReluBackward0"
    out.sum().backward()
    np.testing.assert_array_equal(array(z.grad), [0.0, 1.0])


def test_functional_activation_errors_match_pytorch():
    torch = pytest.importorskip("torch")
    same_error(lambda L: L.nn.functional.gelu(L.ones(2), approximate="x"), torch)


def test_softplus_above_threshold_is_the_identity_with_finite_gradients():
    x = tg.tensor([30.0, 1000.0, -1000.0], dtype=tg.float64, requires_grad=True)
    y = F.softplus(x)
    np.testing.assert_array_equal(array(y), [30.0, 1000.0, 0.0])
    y.sum().backward()
    np.testing.assert_array_equal(array(x.grad), [1.0, 1.0, 0.0])


# ----- functional extras ------------------------------------------------------------------
@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (3.0, -1), (math.inf, 1)])
def test_normalize_matches_pytorch(p, dim):
    torch = pytest.importorskip("torch")
    a, b = both(data(3, 4, seed=2), torch)
    out, want = F.normalize(a, p, dim), torch.nn.functional.normalize(b, p, dim)
    close(out, want)
    w = data(3, 4, seed=3)
    (out * tg.tensor(w, dtype=tg.float64)).sum().backward()
    (want * torch.from_numpy(w)).sum().backward()
    close(a.grad, b.grad)


@pytest.mark.parametrize("values, n", [([0, 2, 1, 2], -1), ([[1, 0], [3, 3]], 5), (2, 4),
                                       ([0, 3], 3), ([0, -3], 3), ([], -1)])
def test_one_hot_matches_pytorch(values, n):
    torch = pytest.importorskip("torch")
    mine = lambda L: L.nn.functional.one_hot(L.tensor(values, dtype=L.int64), n)  # noqa: E731
    try:
        want = mine(torch)
    except RuntimeError:
        same_error(mine, torch)
        return
    got = mine(tg)
    assert got.dtype is tg.int64 and tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(array(got), want.numpy())
    same_error(lambda L: L.nn.functional.one_hot(L.tensor([0.0, 1.0]), 3), torch)


# ----- nn.init -----------------------------------------------------------------------------
def test_calculate_gain_matches_pytorch():
    torch = pytest.importorskip("torch")
    for args in (("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",),
                 ("leaky_relu",), ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu",)):
        assert nn.init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)
    same_error(lambda L: L.nn.init.calculate_gain("swish"), torch)
    same_error(lambda L: L.nn.init.calculate_gain("leaky_relu", True), torch)


SPREADS = [  # (init, kwargs, the std it should draw with, from fan_in and fan_out)
    ("uniform_", {"a": -2.0, "b": 1.0}, lambda fi, fo: 3 / math.sqrt(12)),
    ("normal_", {"mean": 0.5, "std": 2.0}, lambda fi, fo: 2.0),
    ("xavier_uniform_", {"gain": 2.0}, lambda fi, fo: 2.0 * math.sqrt(2 / (fi + fo))),
    ("xavier_normal_", {}, lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("kaiming_uniform_", {}, lambda fi, fo: math.sqrt(2 / fi)),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, lambda fi, fo: 1 / math.sqrt(3 * fi)),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"},
     lambda fi, fo: math.sqrt(2 / fo)),
]


@pytest.mark.parametrize("name, kwargs, std", SPREADS)
def test_random_inits_have_pytorch_spread(name, kwargs, std):
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    torch.manual_seed(0)
    w = nn.Parameter(tg.empty(300, 200, 2))
    v = torch.nn.Parameter(torch.empty(300, 200, 2))
    assert getattr(nn.init, name)(w, **kwargs) is w
    with torch.no_grad():
        getattr(torch.nn.init, name)(v, **kwargs)
    assert w.is_leaf and w.grad_fn is None and w.requires_grad       # not recorded
    mine, theirs = array(w), v.detach().numpy()
    assert mine.std() == pytest.approx(std(400, 600), rel=0.01)
    assert mine.std() == pytest.approx(theirs.std(), rel=0.02)
    assert mine.mean() == pytest.approx(theirs.mean(), abs=0.02 * std(400, 600))
    if "uniform" in name:                    # the same support
        assert mine.min() >= theirs.min() - 0.01 * std(400, 600)
        assert mine.max() <= theirs.max() + 0.01 * std(400, 600)
        assert mine.min() < theirs.min() + 0.01 * std(400, 600)


def test_constant_inits_and_errors():
    torch = pytest.importorskip("torch")
    w = nn.Parameter(tg.empty(2, 3))
    for fn, value in ((nn.init.ones_, 1.0), (nn.init.zeros_, 0.0),
                      (lambda t: nn.init.constant_(t, 0.25), 0.25)):
        assert fn(w) is w and (array(w) == value).all() and w.is_leaf
    same_error(lambda L: L.nn.init.xavier_uniform_(L.empty(3)), torch)
    same_error(lambda L: L.nn.init.kaiming_normal_(L.empty(3, 2), mode="fan_avg"), torch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nn.init.kaiming_uniform_(tg.empty(0, 3))
    assert [str(w.message) for w in caught] == ["Initializing zero-element tensors is a no-op"]


# ----- nn.utils ----------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm, norm_type", [(0.5, 2.0), (1e6, 2.0), (0.3, 1.0),
                                                 (0.1, math.inf), (2.0, 3)])
def test_clip_grad_norm_matches_pytorch(max_norm, norm_type):
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)).double()
    t = twin_from(m, torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).double())
    x = data(5, 3)
    m(tg.tensor(x, dtype=tg.float64)).pow(2).sum().backward()
    t(torch.from_numpy(x)).pow(2).sum().backward()
    before = [array(p.grad).copy() for p in m.parameters()]
    total = nn.utils.clip_grad_norm_(m.parameters(), max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(t.parameters(), max_norm, norm_type)
    assert total.ndim == 0 and float(total) == pytest.approx(float(want), rel=1e-12)
    grads_close(m.parameters(), t.parameters(), 1e-12)
    if max_norm > float(total):                  # nothing to clip
        for g, p in zip(before, m.parameters()):
            np.testing.assert_array_equal(array(p.grad), g)


def test_clip_grad_value_and_nonfinite_norm():
    torch = pytest.importorskip("torch")
    for L in (tg, torch):
        p = L.nn.Parameter(L.zeros(4, dtype=L.float64))
        p.grad = L.tensor([-3.0, 0.5, 2.0, -0.1], dtype=L.float64)
        L.nn.utils.clip_grad_value_([p], 1.0)
        np.testing.assert_array_equal(array(p.grad), [-1.0, 0.5, 1.0, -0.1])

    def nonfinite(L):
        p = L.nn.Parameter(L.zeros(2))
        p.grad = L.tensor([float("inf"), 1.0])
        L.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    same_error(nonfinite, torch)
    assert float(nn.utils.clip_grad_norm_([nn.Parameter(tg.ones(1))], 1.0)) == 0.0


def test_parameters_to_vector_and_back():
    m = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert tuple(vec.shape) == (8,)
    np.testing.assert_array_equal(array(vec)[:6], array(m.weight).ravel())
    nn.utils.vector_to_parameters(tg.arange(8).float(), m.parameters())
    np.testing.assert_array_equal(array(m.bias), [6.0, 7.0])
