"""Every loss of ``tg.nn`` (module and functional) against PyTorch: values and input
gradients to 1e-10 in float64 for each reduction, class weights, ignored targets, label
smoothing, class-probability targets, extreme inputs; PyTorch's errors and warnings; and
gradients against central finite differences where PyTorch is absent."""
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad.nn import functional as F

from conftest import fd_grad
from nn_twins import array, close, same_error, torch_words

pytestmark = pytest.mark.usefixtures("isolated")

REDUCTIONS = ["mean", "sum", "none"]


def rnd(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def probs(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.02, 0.98, shape)


def labels(n, c, seed=0, shape=None):
    return np.random.default_rng(seed).integers(0, c, shape or (n,))


def convert(L, v, is_input=False):
    """NumPy arrays become float64 (or int64) tensors of L; other values pass through."""
    if not isinstance(v, np.ndarray):
        return v
    if v.dtype.kind == "f":
        return L.tensor(v, dtype=L.float64, requires_grad=is_input)
    return L.tensor(v, dtype=L.int64)


def compare(torch, module_name, kwargs, input, target, functional=None, fkwargs=None):
    """The loss module (and the functional form) in both libraries on the same values: the
    loss and the gradient of the input (weighted by a random upstream gradient) agree."""
    results = []
    for L in (tg, torch):
        x = convert(L, input, is_input=True)
        t = convert(L, target)
        kw = {k: convert(L, v) for k, v in kwargs.items()}
        loss = getattr(L.nn, module_name)(**kw)(x, t)
        if functional is not None:
            fkw = {k: convert(L, v) for k, v in (fkwargs or kwargs).items()}
            close(getattr(L.nn.functional, functional)(x, t, **fkw), loss, 0)
        upstream = rnd(*loss.shape, seed=5) if loss.ndim else np.array(1.0)
        (loss * L.tensor(upstream, dtype=L.float64)).sum().backward()
        results.append((loss, x.grad))
    (loss, grad), (want, want_grad) = results
    assert tuple(loss.shape) == tuple(want.shape) and loss.dtype is tg.float64
    close(loss, want)
    close(grad, want_grad)
    return loss


# ----- regression losses ------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, functional, extra", [
    ("MSELoss", "mse_loss", {}), ("L1Loss", "l1_loss", {}),
    ("SmoothL1Loss", "smooth_l1_loss", {}), ("SmoothL1Loss", "smooth_l1_loss", {"beta": 0.5}),
    ("SmoothL1Loss", "smooth_l1_loss", {"beta": 0.0}), ("HuberLoss", "huber_loss", {}),
    ("HuberLoss", "huber_loss", {"delta": 0.3}),
])
def test_regression_losses_match_pytorch(name, functional, extra, reduction):
    torch = pytest.importorskip("torch")
    x, y = rnd(4, 5, seed=1) * 2, rnd(4, 5, seed=2)
    y[0, :2] = x[0, :2]                          # zero residuals: the kinks
    y[1, 0] = x[1, 0] + extra.get("beta", extra.get("delta", 1.0))   # on the threshold
    compare(torch, name, dict(extra, reduction=reduction), x, y, functional)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("functional", ["mse_loss", "l1_loss", "huber_loss"])
def test_elementwise_weights_match_pytorch(functional, reduction):
    torch = pytest.importorskip("torch")
    x, y, w = rnd(3, 4, seed=1), rnd(3, 4, seed=2), probs(3, 4, seed=3)
    got = [], []
    for L, out in zip((tg, torch), got):
        xx = convert(L, x, True)
        loss = getattr(L.nn.functional, functional)(xx, convert(L, y), reduction=reduction,
                                                    weight=convert(L, w))
        loss.sum().backward()
        out.extend([loss, xx.grad])
    close(got[0][0], got[1][0])
    close(got[0][1], got[1][1])
    same_error(lambda L: getattr(L.nn.functional, functional)(
        L.ones(3), L.ones(3), weight=L.ones(2)), torch)


# ----- classification -----------------------------------------------------------------------
def _ce_cases():
    """(input, target, kwargs) for CrossEntropyLoss and NLLLoss: class indices in 1-D,
    2-D and K-dim inputs, weights, ignored targets."""
    w = probs(4, seed=9) * 2
    ignore = labels(6, 4, seed=3)
    ignore[[1, 4]] = -100
    ignore_2 = labels(6, 4, seed=3)
    ignore_2[0] = 2
    return [
        (rnd(6, 4), labels(6, 4), {}),
        (rnd(4), np.array(2), {}),
        (rnd(6, 4), labels(6, 4), {"weight": w}),
        (rnd(6, 4), ignore, {}),
        (rnd(6, 4), ignore, {"weight": w}),
        (rnd(6, 4), ignore_2, {"ignore_index": 2, "weight": w}),
        (rnd(2, 4, 3), labels(2, 4, shape=(2, 3)), {}),
        (rnd(2, 4, 3, 2), labels(2, 4, shape=(2, 3, 2)), {"weight": w}),
        (rnd(2, 4, 5, 2, 3), labels(2, 4, shape=(2, 5, 2, 3)), {"ignore_index": 1}),
    ]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", range(len(_ce_cases())))
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_with_class_indices_matches_pytorch(case, reduction, smoothing):
    torch = pytest.importorskip("torch")
    x, t, kw = _ce_cases()[case]
    compare(torch, "CrossEntropyLoss", dict(kw, reduction=reduction, label_smoothing=smoothing),
            x * 3, t, "cross_entropy")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", range(len(_ce_cases())))
def test_nll_loss_matches_pytorch(case, reduction):
    torch = pytest.importorskip("torch")
    x, t, kw = _ce_cases()[case]
    compare(torch, "NLLLoss", dict(kw, reduction=reduction), x, t, "nll_loss")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("shape, weighted", [((5, 3), False), ((5, 3), True), ((3,), True),
                                             ((2, 3, 4), True)])
def test_cross_entropy_with_class_probabilities_matches_pytorch(shape, weighted, smoothing,
                                                                reduction):
    torch = pytest.importorskip("torch")
    p = probs(*shape, seed=4)
    p = p / p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if weighted:
        kw["weight"] = probs(3, seed=6)
    compare(torch, "CrossEntropyLoss", kw, rnd(*shape) * 2, p, "cross_entropy")


def test_all_targets_ignored_gives_nan_as_pytorch():
    torch = pytest.importorskip("torch")
    for fn in ("nll_loss", "cross_entropy"):
        got = getattr(F, fn)(tg.randn(3, 4), tg.tensor([-100, -100, -100]))
        want = getattr(torch.nn.functional, fn)(torch.randn(3, 4),
                                               torch.tensor([-100, -100, -100]))
        assert np.isnan(float(got)) and np.isnan(float(want))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_matches_pytorch(weighted, reduction):
    torch = pytest.importorskip("torch")
    x = probs(4, 5, seed=1)
    t = probs(4, 5, seed=2)
    t[0] = np.round(t[0])
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = probs(4, 5, seed=3)
    compare(torch, "BCELoss", kw, x, t, "binary_cross_entropy")


def test_bce_clamps_the_logs_at_minus_100_as_pytorch():
    torch = pytest.importorskip("torch")
    x, t = np.array([0.0, 1.0, 1e-50, 0.5]), np.array([1.0, 0.0, 1.0, 0.0])
    for dtype in ("float32", "float64"):
        got = F.binary_cross_entropy(tg.tensor(x, dtype=getattr(tg, dtype)),
                                     tg.tensor(t, dtype=getattr(tg, dtype)), reduction="none")
        want = torch.nn.functional.binary_cross_entropy(
            torch.tensor(x, dtype=getattr(torch, dtype)),
            torch.tensor(t, dtype=getattr(torch, dtype)), reduction="none")
        np.testing.assert_allclose(array(got), want.numpy(), rtol=1e-6)
    x = tg.tensor([0.0, 1.0], dtype=tg.float64, requires_grad=True)
    F.binary_cross_entropy(x, tg.tensor([1.0, 0.0], dtype=tg.float64)).backward()
    assert np.isfinite(array(x.grad)).all()       # finite at the ends (PyTorch: -+5e11)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, pos", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_bce_with_logits_matches_pytorch(weighted, pos, reduction):
    torch = pytest.importorskip("torch")
    x = rnd(4, 5, seed=1) * 4
    x[0, :4] = [0.0, 50.0, -50.0, -800.0]         # the kink of |x| and far tails
    t = probs(4, 5, seed=2)
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = probs(4, 5, seed=3)
    if pos:
        kw["pos_weight"] = probs(5, seed=4) * 3
    compare(torch, "BCEWithLogitsLoss", kw, x, t, "binary_cross_entropy_with_logits")


def test_bce_with_logits_gradient_at_zero_is_sigmoid_minus_target():
    x = tg.tensor([0.0, 0.0], dtype=tg.float64, requires_grad=True)
    F.binary_cross_entropy_with_logits(x, tg.tensor([1.0, 0.25], dtype=tg.float64),
                                       reduction="sum").backward()
    np.testing.assert_allclose(array(x.grad), [-0.5, 0.25], rtol=1e-15)


# ----- without PyTorch: finite differences ------------------------------------------------
FD_CASES = [
    ("mse_loss", rnd(3, 4), rnd(3, 4, seed=1), {}),
    ("l1_loss", rnd(3, 4), rnd(3, 4, seed=1), {}),
    ("smooth_l1_loss", rnd(3, 4), rnd(3, 4, seed=1), {"beta": 0.7}),
    ("huber_loss", rnd(3, 4), rnd(3, 4, seed=1), {"delta": 0.4}),
    ("binary_cross_entropy", probs(3, 4), probs(3, 4, seed=1), {}),
    ("binary_cross_entropy_with_logits", rnd(3, 4), probs(3, 4, seed=1),
     {"pos_weight": probs(4, seed=2)}),
    ("cross_entropy", rnd(5, 3), labels(5, 3), {"label_smoothing": 0.1}),
    ("cross_entropy", rnd(5, 3), probs(5, 3), {}),
    ("nll_loss", rnd(5, 3), labels(5, 3), {"weight": probs(3, seed=3)}),
    ("cross_entropy", rnd(2, 3, 4), labels(2, 3, shape=(2, 4)), {"ignore_index": 0}),
]


@pytest.mark.parametrize("name, x, target, kwargs", FD_CASES,
                         ids=[c[0] for c in FD_CASES])
def test_loss_gradients_match_finite_differences(name, x, target, kwargs):
    fn = getattr(F, name)
    kw = {k: convert(tg, v) for k, v in kwargs.items()}
    t = convert(tg, target)

    def f(v):
        with tg.no_grad():
            return float(fn(tg.tensor(v, dtype=tg.float64), t, **kw))
    xt = tg.tensor(x, dtype=tg.float64, requires_grad=True)
    fn(xt, t, **kw).backward()
    np.testing.assert_allclose(array(xt.grad), fd_grad(f, x), atol=1e-6)


def test_cross_entropy_closed_form_without_torch():
    x = rnd(4, 3)
    t = labels(4, 3)
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    got = F.cross_entropy(tg.tensor(x, dtype=tg.float64), tg.tensor(t), label_smoothing=0.3)
    want = (0.7 * -logp[np.arange(4), t] + 0.3 * -logp.mean(1)).mean()
    assert float(got) == pytest.approx(want, rel=1e-14)


# ----- errors and warnings ----------------------------------------------------------------
@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.nll_loss(L.tensor(1.0), L.tensor(0)),
    lambda L: L.nn.functional.nll_loss(L.ones(3, 4), L.tensor([0, 1])),
    lambda L: L.nn.functional.nll_loss(L.ones(3, 4), L.tensor([0, 1, 4])),
    lambda L: L.nn.functional.nll_loss(L.ones(3, 4), L.tensor([0, 1, -1])),
    lambda L: L.nn.functional.nll_loss(L.ones(3, 4), L.tensor([0.0, 1, 2])),
    lambda L: L.nn.functional.nll_loss(L.ones(3, 4), L.tensor([0, 1, 2]), weight=L.ones(3)),
    lambda L: L.nn.functional.nll_loss(L.ones(2, 4, 5), L.zeros(2, 6, dtype=L.int64)),
    lambda L: L.nn.functional.nll_loss(L.ones(3, 4), L.zeros(3, 1, dtype=L.int64)),
    lambda L: L.nn.functional.cross_entropy(L.ones(3, 4), L.tensor([0, 1, 4])),
    lambda L: L.nn.functional.cross_entropy(L.ones(3, 4), L.zeros(3, 4, dtype=L.int64)),
    lambda L: L.nn.functional.cross_entropy(L.ones(3, 4), L.ones(3, 4), ignore_index=1),
    lambda L: L.nn.functional.cross_entropy(L.ones(3, 4), L.tensor([0, 1, 2]),
                                            label_smoothing=1.5),
    lambda L: L.nn.functional.cross_entropy(L.ones(3, 4), L.ones(3, 4), weight=L.ones(3)),
    lambda L: L.nn.functional.cross_entropy(L.ones(3, 4), L.tensor([0, 1, 2]),
                                            reduction="bad"),
    lambda L: L.nn.functional.binary_cross_entropy(L.tensor([1.5]), L.tensor([1.0])),
    lambda L: L.nn.functional.binary_cross_entropy(L.tensor([0.5, 0.5]), L.tensor([1.0])),
    lambda L: L.nn.functional.binary_cross_entropy_with_logits(L.tensor([0.5, 0.5]),
                                                               L.tensor([1.0])),
    lambda L: L.nn.functional.smooth_l1_loss(L.ones(2), L.ones(2), beta=-1),
    lambda L: L.nn.functional.huber_loss(L.ones(2), L.ones(2), delta=0),
    lambda L: L.nn.functional.mse_loss(L.ones(2), L.ones(2), reduction="bad"),
    lambda L: L.nn.MSELoss(reduction="avg")(L.ones(2), L.ones(2)),
])
def test_loss_errors_match_pytorch(scenario):
    torch = pytest.importorskip("torch")
    same_error(scenario, torch)


def _warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("scenario", [
    lambda L: L.nn.functional.mse_loss(L.ones(3, 1), L.ones(3)),
    lambda L: L.nn.functional.l1_loss(L.ones(3), L.ones(1)),
    lambda L: L.nn.functional.smooth_l1_loss(L.ones(2, 2), L.ones(2)),
    lambda L: L.nn.functional.huber_loss(L.ones(2, 2), L.ones(2)),
    lambda L: L.nn.MSELoss(size_average=False),
    lambda L: L.nn.functional.nll_loss(L.ones(2, 3), L.tensor([0, 1]), reduce=False),
])
def test_loss_warnings_match_pytorch(scenario):
    torch = pytest.importorskip("torch")
    want = [torch_words(m) for m in _warnings(lambda: scenario(torch))]
    assert want and _warnings(lambda: scenario(tg)) == want


def test_legacy_reduction_flags_as_pytorch():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size_average, reduce in ((None, False), (False, None), (True, True)):
            assert nn.MSELoss(size_average, reduce).reduction == \
                torch.nn.MSELoss(size_average, reduce).reduction


def test_loss_modules_keep_weights_as_buffers():
    torch = pytest.importorskip("torch")
    for L in (tg, torch):
        assert list(L.nn.CrossEntropyLoss(weight=L.ones(3)).state_dict()) == ["weight"]
        assert list(L.nn.BCEWithLogitsLoss(pos_weight=L.ones(3)).state_dict()) == ["pos_weight"]
        assert list(L.nn.NLLLoss().state_dict()) == []
