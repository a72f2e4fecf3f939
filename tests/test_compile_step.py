"""tg.compile of a whole training step (issue 11): forward, backward and the update replay
as one jitted call, and leave parameters, grads and returned tensors exactly as eager
execution does (float64, 1e-12)."""
import gc
import sys
import weakref

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn, optim

LR = 1e-4


def _walkthrough_data(seed=2024):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 3))
    Y = X @ np.array([[0.2], [-1.3], [-0.5]]) + rng.standard_normal((100, 1))
    return X, Y, [rng.standard_normal((3, 32)), np.zeros((1, 32)),
                  rng.standard_normal((32, 1)), np.zeros((1, 1))]


def _walkthrough(compiled, captured, iterations=200, dtype=tg.float64):
    """The walkthrough network trained ``iterations`` steps, the step written as the post
    writes it (backward and the update inside). Returns the losses, parameters, grads."""
    X, Y, W = _walkthrough_data()
    x, y = tg.tensor(X, dtype=dtype), tg.tensor(Y, dtype=dtype)
    params = [tg.tensor(w, dtype=dtype, requires_grad=True) for w in W]

    def step(w1, b1, w2, b2):
        loss = (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()
        loss.backward()
        with tg.no_grad():
            for w in (w1, b1, w2, b2):
                w.sub_(LR * w.grad)
                w.grad.zero_()
        return loss

    if captured:
        w1, b1, w2, b2 = params

        def fn():
            return step(w1, b1, w2, b2)
    else:
        def fn(*ws):
            return step(*ws)
    f = tg.compile(fn) if compiled else fn
    losses = []
    for _ in range(iterations):
        loss = f() if captured else f(*params)
        losses.append(loss.item())
    return losses, [p.detach().numpy().copy() for p in params], \
        [p.grad.numpy().copy() for p in params], f


@pytest.mark.parametrize("captured", [False, True], ids=["arguments", "captured"])
def test_walkthrough_step_equals_eager_after_200_iterations(captured):
    el, ep, eg, _ = _walkthrough(False, captured)
    cl, cp, cg, f = _walkthrough(True, captured)
    np.testing.assert_allclose(cl, el, rtol=1e-12, atol=0)
    for a, b in zip(cp + cg, ep + eg):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    s = f.stats()
    assert s["recordings"] == 2 and s["replays"] == 198 and s["guard_failures"] == 0
    text = f.listing()
    assert "-- forward --" in text and "-- reverse: backward(" in text and \
        "-- update --" in text


def test_float32_step_replays_in_float32_along_eager_float32():
    """A float32 step replays in a float32 arena (its sweeps in float32, as eager float32
    sweeps) and follows eager float32's trajectory: the same losses, parameters and grads
    to float32 precision after 200 iterations."""
    el, ep, eg, _ = _walkthrough(False, False, dtype=tg.float32)
    cl, cp, cg, f = _walkthrough(True, False, dtype=tg.float32)
    (rec,) = f.recordings.values()
    assert rec.program.dtype == np.float32
    assert all(a.dtype == np.float32 for a in cp + cg)
    np.testing.assert_allclose(cl, el, rtol=5e-6)
    for a, b in zip(cp + cg, ep + eg):
        np.testing.assert_allclose(a, b, rtol=0, atol=5e-6 * max(np.abs(b).max(), 1.0))
    assert not np.allclose(ep[0], _walkthrough_data()[2][0], rtol=1e-3)   # it trained


def test_returned_loss_is_like_eager():
    """The loss a step returns after its backward: requires grad, its graph freed (a second
    backward raises PyTorch's error), its value kept after later calls."""
    w = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)

    def step(w):
        loss = (w * w).sum()
        loss.backward()
        with tg.no_grad():
            w.sub_(0.1 * w.grad)
            w.grad.zero_()
        return loss
    f = tg.compile(step)
    losses = [f(w) for _ in range(5)]
    we = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    eager = [step(we).item() for _ in range(5)]
    assert [loss.item() for loss in losses] == eager
    assert w.tolist() == we.tolist()
    for loss in losses:
        assert loss.requires_grad and loss.grad_fn.name() == "SumBackward0"
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            loss.backward()
    assert f.stats()["replays"] == 3


# ----- optimizers ---------------------------------------------------------------------------
OPTIMIZERS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=1e-3)),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5)),
    ("Adagrad", dict(lr=0.1)),
]


def _train_with(name, options, compiled, steps=20):
    rng = np.random.default_rng(7)
    x = tg.tensor(rng.standard_normal((16, 3)), dtype=tg.float64)
    y = tg.tensor(rng.standard_normal((16, 1)), dtype=tg.float64)
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    opt = getattr(optim, name)(model.parameters(), **options)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss
    f = tg.compile(step) if compiled else step
    losses = [f(x, y).item() for _ in range(steps)]
    state = [np.array(t.detach().numpy()) for s in opt.state.values() for t in s.values()
             if isinstance(t, tg.Tensor)]
    return losses, [p.detach().numpy().copy() for p in model.parameters()], state, f


@pytest.mark.parametrize("name, options", OPTIMIZERS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_optimizer_step_inside_equals_eager(name, options):
    el, ep, es, _ = _train_with(name, options, False)
    cl, cp, cs, f = _train_with(name, options, True)
    np.testing.assert_allclose(cl, el, rtol=1e-12, atol=0)
    for a, b in zip(cp + cs, ep + es):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    s = f.stats()
    assert s["replays"] >= 16, s         # recorded until two recordings agree, then replayed


# ----- O(1) Python per call -------------------------------------------------------------
def _count_calls(fn):
    """Python and C calls made while fn() runs (sys.setprofile)."""
    count = [0]

    def prof(frame, event, arg):
        if event in ("call", "c_call"):
            count[0] += 1
    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count[0]


def _net_step(widths, captured):
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((20, widths[0])), dtype=tg.float64)
    y = tg.tensor(rng.standard_normal((20, widths[-1])), dtype=tg.float64)
    ws = [tg.tensor(rng.standard_normal((a, b)) * 0.3, dtype=tg.float64, requires_grad=True)
          for a, b in zip(widths[:-1], widths[1:])]

    def step(*ws):
        h = x
        for i, w in enumerate(ws):
            h = h.mm(w)
            if i < len(ws) - 1:
                h = h.tanh()
        loss = ((h - y) ** 2).mean()
        loss.backward()
        with tg.no_grad():
            for w in ws:
                w.sub_(0.01 * w.grad)
                w.grad.zero_()
        return loss
    f = tg.compile((lambda: step(*ws)) if captured else step)
    return (lambda: f()) if captured else (lambda: f(*ws)), f


def _scalar_step(n_params):
    rng = np.random.default_rng(2)
    ps = [tg.tensor(float(v), dtype=tg.float64, requires_grad=True)
          for v in rng.uniform(-1, 1, n_params)]

    def step(*ps):
        acc = ps[0] * 0.5
        for p in ps[1:]:
            acc = (acc * p + 0.1).tanh()
        acc.backward()
        with tg.no_grad():
            for p in ps:
                p.sub_(0.01 * p.grad)
                p.grad = None
        return acc
    f = tg.compile(step)
    return (lambda: f(*ps)), f


@pytest.mark.parametrize("make", [
    lambda: _net_step([3, 8, 1], False),
    lambda: _net_step([3, 64, 64, 64, 64, 1], False),
    lambda: _net_step([3, 64, 64, 64, 64, 1], True),
    lambda: _scalar_step(5),
    lambda: _scalar_step(300),
], ids=["small-net", "deep-net", "deep-net-captured", "scalar-5", "scalar-300"])
def test_a_replayed_step_makes_few_python_calls(make):
    """Fewer than 50 Python calls in one replayed step, whatever the number of records,
    arguments and leaves (counted with sys.setprofile)."""
    other = tg.ones(2, requires_grad=True)      # a leaf elsewhere whose grad the engine
    other.register_hook(lambda g: g)            # keeps (hooks): no concern of this step
    call, f = make()
    for _ in range(4):
        call()                  # two recordings, then replays
    calls = _count_calls(call)
    assert f.stats()["replays"] >= 2
    assert calls < 50, calls
    del other


def test_a_learning_rate_changed_by_a_scheduler_records_again():
    """An optimizer's hyper-parameters are Python numbers the recording holds: changed (a
    scheduler), the step records again instead of replaying the old ones."""
    runs = []
    for compiled in (False, True):
        tg.manual_seed(0)
        model = nn.Linear(3, 1).double()
        opt = optim.SGD(model.parameters(), lr=0.1)
        sched = optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        x = tg.tensor(np.linspace(-1, 1, 12).reshape(4, 3), dtype=tg.float64)

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).sum()
            loss.backward()
            opt.step()
            return loss
        f = tg.compile(step) if compiled else step
        losses = []
        for _ in range(10):
            losses.append(f(x).item())
            sched.step()
        runs.append((losses, [p.detach().numpy().copy() for p in model.parameters()], f))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12)
    for a, b in zip(runs[1][1], runs[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert runs[1][2].stats()["replays"] >= 2


def test_a_platform_whose_object_layouts_are_unchecked_replays_the_same(monkeypatch):
    """Where CPython's float and ndarray layouts could not be checked at import, a call
    asks NumPy for every input's address (``replay_calls._replay_by_address``)."""
    from tapegrad import replay_calls
    monkeypatch.setattr(replay_calls, "DIRECT", False)
    el, ep, eg, _ = _walkthrough(False, False, iterations=6)
    cl, cp, cg, f = _walkthrough(True, False, iterations=6)
    np.testing.assert_allclose(cl, el, rtol=1e-12)
    for a, b in zip(cp + cg, ep + eg):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert f.stats()["replays"] == 4
    s = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)

    def scalar_step(s):
        loss = (s * s - 1.0) ** 2
        loss.backward()
        with tg.no_grad():
            s.sub_(0.1 * s.grad)
            s.grad = None
        return loss
    g = tg.compile(scalar_step)
    se = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    for _ in range(5):
        assert g(s).item() == scalar_step(se).item()
        assert s.item() == se.item()
    assert g.stats()["replays"] == 3


def test_an_input_swapped_for_a_strided_array_and_back_reads_the_array_it_holds():
    """A call whose captured input holds a non-contiguous array replays from a contiguous
    copy of it; when the earlier array comes back, the next call must read that array,
    not the copy (gone by then), and equal eager execution."""
    def run(compiled):
        w = tg.tensor(np.arange(6.0).reshape(2, 3), dtype=tg.float64, requires_grad=True)
        x = tg.tensor(np.ones((2, 3)), dtype=tg.float64)
        first = x.detach()
        strided = tg.tensor(np.arange(6.0).reshape(3, 2) * 5.0, dtype=tg.float64).t()
        assert not strided.numpy().flags.c_contiguous

        def step():
            loss = (w * x).sum()
            loss.backward()
            with tg.no_grad():
                w.sub_(0.1 * w.grad)
                w.grad.zero_()
            return loss
        f = tg.compile(step) if compiled else step
        losses = []
        for value in [first] * 4 + [strided, first, first, strided, first]:
            x.data = value
            losses.append(f().item())
        return losses, w.detach().numpy().copy(), f

    eager, w_eager, _ = run(False)
    compiled, w_compiled, f = run(True)
    assert f.fast_replays > 0
    np.testing.assert_allclose(compiled, eager, rtol=1e-12, atol=0)
    np.testing.assert_allclose(w_compiled, w_eager, rtol=1e-12, atol=0)
