"""``tg.optim`` against PyTorch: each optimizer's trajectory from the same start over 100
steps (1e-12 in float64), its state and ``state_dict`` (round trips, and PyTorch's state
loaded into tapegrad), parameter groups, ``zero_grad``, closures, printing and errors; the
learning-rate schedulers epoch by epoch."""
import copy
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.optim import lr_scheduler

from nn_twins import array, close, same_error, torch_words

pytestmark = pytest.mark.usefixtures("isolated")

STEPS = 100
TOL = 1e-12

CONFIGS = [
    ("SGD", {"lr": 0.01}),
    ("SGD", {"lr": 0.01, "momentum": 0.9}),
    ("SGD", {"lr": 0.02, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.01, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.005, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.9), "eps": 1e-6, "maximize": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.2, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.3}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "alpha": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1,
                 "maximize": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("Adagrad", {"lr": 0.05, "maximize": True}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]


class Problem:
    """A small least-squares-like problem in library L: a matrix, a vector and a 0-d
    parameter (tapegrad's Python-float scalar path), plus a parameter the loss never uses
    (its grad stays None: both libraries skip it)."""

    def __init__(self, L):
        rng = np.random.default_rng(0)
        self.L = L
        self.x = L.tensor(rng.standard_normal((8, 3)), dtype=L.float64)
        self.y = L.tensor(rng.standard_normal((8, 4)), dtype=L.float64)
        self.params = [L.nn.Parameter(L.tensor(v, dtype=L.float64)) for v in
                       (rng.standard_normal((4, 3)), rng.standard_normal(4), 0.7,
                        rng.standard_normal(2))]

    def loss(self):
        w, b, s, _ = self.params
        return ((self.x.mm(w.t()) + b) * s - self.y).tanh().pow(2).sum() + (s - 1) ** 2

    def step(self, opt):
        opt.zero_grad()
        loss = self.loss()
        loss.backward()
        opt.step()
        return loss


def state_close(state, torch_state):
    assert list(state) == list(torch_state)
    for key, value in state.items():
        if isinstance(value, tg.Tensor):
            assert value.dtype.name == str(torch_state[key].dtype).replace("torch.", "")
            close(value, torch_state[key], TOL)
        else:
            assert value == torch_state[key]


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_trajectory_matches_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    mine, theirs = Problem(tg), Problem(torch)
    opt = getattr(optim, name)(mine.params, **kwargs)
    ref = getattr(torch.optim, name)(theirs.params, **kwargs)
    for _ in range(STEPS):
        close(mine.step(opt), theirs.step(ref), TOL)
        for p, q in zip(mine.params, theirs.params):
            close(p, q, TOL)
    assert array(mine.params[0]).std() > 0            # it moved, and with it
    assert not np.allclose(array(mine.params[0]), array(Problem(tg).params[0]))
    for p, q in zip(mine.params, theirs.params):
        state_close(opt.state[p], ref.state[q])
    sd, want = opt.state_dict(), ref.state_dict()
    assert sd["param_groups"] == want["param_groups"]
    assert list(sd["state"]) == list(want["state"])


@pytest.mark.parametrize("name, kwargs", CONFIGS[1::2], ids=IDS[1::2])
def test_float32_trajectory_stays_close_to_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    mine, theirs = Problem(tg), Problem(torch)
    for problem, L in ((mine, tg), (theirs, torch)):
        problem.params = [L.nn.Parameter(p.detach().float()) for p in problem.params]
        problem.x, problem.y = problem.x.float(), problem.y.float()
    opt = getattr(optim, name)(mine.params, **kwargs)
    ref = getattr(torch.optim, name)(theirs.params, **kwargs)
    for _ in range(20):
        mine.step(opt)
        theirs.step(ref)
    for p, q in zip(mine.params, theirs.params):
        assert p.dtype is tg.float32
        np.testing.assert_allclose(array(p), array(q), rtol=2e-4, atol=2e-5)


def test_parameter_groups_with_their_own_options():
    torch = pytest.importorskip("torch")
    runs = []
    for L in (tg, torch):
        problem = Problem(L)
        w, b, s, unused = problem.params
        opt = L.optim.SGD([{"params": [w]}, {"params": [b, s], "lr": 0.01, "momentum": 0.9},
                           {"params": unused, "nesterov": True, "momentum": 0.5}],
                          lr=0.1, weight_decay=0.01)
        for _ in range(30):
            problem.step(opt)
        runs.append((problem.params, opt))
    (mine, opt), (theirs, ref) = runs
    for p, q in zip(mine, theirs):
        close(p, q, TOL)
    assert opt.state_dict()["param_groups"] == ref.state_dict()["param_groups"]
    assert [len(g["params"]) for g in opt.param_groups] == [1, 2, 1]


def test_add_param_group_takes_the_defaults():
    torch = pytest.importorskip("torch")
    groups = []
    for L in (tg, torch):
        p, q = L.nn.Parameter(L.ones(2)), L.nn.Parameter(L.ones(3))
        opt = L.optim.Adam([p], lr=0.5)
        opt.add_param_group({"params": q, "betas": (0.5, 0.6)})
        groups.append([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups])
    assert groups[0] == groups[1]


def test_named_parameters_are_kept_as_param_names():
    torch = pytest.importorskip("torch")
    mine = optim.SGD(nn.Linear(2, 3).named_parameters(), lr=0.1)
    theirs = torch.optim.SGD(torch.nn.Linear(2, 3).named_parameters(), lr=0.1)
    assert mine.state_dict() == theirs.state_dict()
    assert mine.param_groups[0]["param_names"] == ["weight", "bias"]


# ----- state_dict ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", CONFIGS[1::3], ids=IDS[1::3])
def test_state_dict_round_trip_continues_the_trajectory(name, kwargs):
    torch = pytest.importorskip("torch")
    straight, ref_problem = Problem(tg), Problem(torch)
    opt = getattr(optim, name)(straight.params, **kwargs)
    ref = getattr(torch.optim, name)(ref_problem.params, **kwargs)
    for _ in range(10):
        straight.step(opt)
        ref_problem.step(ref)
    saved = copy.deepcopy(opt.state_dict())
    resumed = Problem(tg)
    for p, q in zip(resumed.params, straight.params):
        with tg.no_grad():
            p.copy_(q)
    opt2 = getattr(optim, name)(resumed.params, lr=123.0)     # options come from the state
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    assert opt2.param_groups[0]["params"][0] is resumed.params[0]
    # PyTorch's state loaded into tapegrad continues PyTorch's trajectory too
    from_torch = Problem(tg)
    for p, q in zip(from_torch.params, ref_problem.params):
        with tg.no_grad():
            p.copy_(tg.tensor(array(q), dtype=tg.float64))
    opt3 = getattr(optim, name)(from_torch.params, lr=1.0)
    opt3.load_state_dict(_from_torch(ref.state_dict()))
    for _ in range(10):
        straight.step(opt)
        resumed.step(opt2)
        from_torch.step(opt3)
        ref_problem.step(ref)
    for p, q, r, t in zip(straight.params, resumed.params, from_torch.params,
                          ref_problem.params):
        close(p, q, 0)
        close(r, t, TOL)
        close(p, t, TOL)


def _from_torch(sd):
    """A torch optimizer state_dict with tapegrad tensors in place of torch's."""
    def conv(v):
        return tg.tensor(v.numpy(), dtype=getattr(tg, str(v.dtype)[6:])) if hasattr(
            v, "numpy") else v
    return {"state": {k: {n: conv(v) for n, v in s.items()} for k, s in sd["state"].items()},
            "param_groups": copy.deepcopy(sd["param_groups"])}


def test_load_state_dict_casts_state_to_the_parameter_dtype():
    p = nn.Parameter(tg.ones(3))
    opt = optim.Adam([p])
    p.grad = tg.ones(3)
    opt.step()
    sd = opt.state_dict()
    q = nn.Parameter(tg.ones(3, dtype=tg.float64))
    opt2 = optim.Adam([q])
    opt2.load_state_dict(sd)
    assert opt2.state[q]["exp_avg"].dtype is tg.float64
    assert opt2.state[q]["step"].dtype is tg.float32       # the step count keeps its own


@pytest.mark.parametrize("scenario", [
    lambda L: L.optim.SGD([L.nn.Parameter(L.ones(1))], lr=0.1).load_state_dict(
        L.optim.SGD([{"params": [L.nn.Parameter(L.ones(1))]},
                     {"params": [L.nn.Parameter(L.ones(1))]}], lr=0.1).state_dict()),
    lambda L: L.optim.SGD([L.nn.Parameter(L.ones(1))], lr=0.1).load_state_dict(
        L.optim.SGD([L.nn.Parameter(L.ones(1)), L.nn.Parameter(L.ones(1))],
                    lr=0.1).state_dict()),
])
def test_load_state_dict_errors_match_pytorch(scenario):
    torch = pytest.importorskip("torch")
    same_error(scenario, torch)


# ----- zero_grad, closure, in-place updates ------------------------------------------------
def test_zero_grad_sets_to_none_or_zeros():
    problem = Problem(tg)
    opt = optim.SGD(problem.params, lr=0.1)
    problem.loss().backward()
    opt.zero_grad(set_to_none=False)
    assert [p.grad is None for p in problem.params] == [False, False, False, True]
    assert not any(array(p.grad).any() for p in problem.params[:3])
    opt.zero_grad()
    assert all(p.grad is None for p in problem.params)


def test_step_with_closure_reevaluates_with_grad_on():
    problem = Problem(tg)
    opt = optim.SGD(problem.params, lr=0.1)
    calls = []

    def closure():
        calls.append(tg.is_grad_enabled())
        opt.zero_grad()
        loss = problem.loss()
        loss.backward()
        return loss

    before = float(problem.loss())
    with tg.no_grad():
        loss = opt.step(closure)
    assert calls == [True] and float(loss) == pytest.approx(before, rel=1e-15)
    assert float(problem.loss()) < before


def test_step_updates_the_parameters_in_place_unrecorded():
    problem = Problem(tg)
    params = list(problem.params)
    versions = [p._version for p in params]
    opt = optim.Adam(params, lr=0.1)
    problem.step(opt)
    assert all(p is q for p, q in zip(problem.params, params))
    assert [p._version > v for p, v in zip(params, versions)] == [True, True, True, False]
    assert all(p.is_leaf and p.grad_fn is None and p.requires_grad for p in params)
    assert all(isinstance(t, tg.Tensor) for s in opt.state.values() for t in s.values())


def test_updates_use_the_public_tensor_api_only():
    """The optimizers speak tapegrad's public Tensor API (so that a recording of step()
    can replay them): no private values, no NumPy, no Python numbers taken out of tensors."""
    source = Path(optim.__file__).parent
    for path in sorted(source.glob("*.py")):
        text = path.read_text()
        for forbidden in (r"\._v\b", r"\bnumpy\b", r"\bnp\.", r"\.item\(\)", r"\.tolist\(\)",
                          r"\._(?:tape|slot|grad|node|ver)\b"):
            assert not re.search(forbidden, text), f"{path.name}: {forbidden}"


def test_optimizers_print_as_pytorch():
    torch = pytest.importorskip("torch")
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        mine = getattr(optim, name)([nn.Parameter(tg.ones(1))])
        theirs = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(1))])
        assert repr(mine) == repr(theirs)
    mine = optim.SGD([{"params": [nn.Parameter(tg.ones(1))]},
                      {"params": [nn.Parameter(tg.ones(1))], "lr": 0.5}], lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(1))]},
                              {"params": [torch.nn.Parameter(torch.ones(1))], "lr": 0.5}],
                             lr=0.1, momentum=0.9)
    assert repr(mine) == repr(theirs)


# ----- errors -------------------------------------------------------------------------------
def _p(L):
    return L.nn.Parameter(L.ones(2))


@pytest.mark.parametrize("scenario", [
    lambda L: L.optim.SGD([], lr=0.1),
    lambda L: L.optim.Adam(iter([])),
    lambda L: L.optim.SGD(_p(L), lr=0.1),
    lambda L: L.optim.SGD([1.0], lr=0.1),
    lambda L: L.optim.SGD([_p(L), "w"], lr=0.1),
    lambda L: L.optim.Adam([L.ones(2, requires_grad=True) * 2]),
    lambda L: L.optim.SGD([_p(L)], lr=-0.1),
    lambda L: L.optim.SGD([_p(L)], lr=0.1, momentum=-1),
    lambda L: L.optim.SGD([_p(L)], lr=0.1, weight_decay=-1),
    lambda L: L.optim.SGD([_p(L)], lr=0.1, nesterov=True),
    lambda L: L.optim.SGD([_p(L)], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    lambda L: L.optim.Adam([_p(L)], lr=-1),
    lambda L: L.optim.Adam([_p(L)], eps=-1),
    lambda L: L.optim.Adam([_p(L)], betas=(1.0, 0.9)),
    lambda L: L.optim.Adam([_p(L)], betas=(0.9, -0.1)),
    lambda L: L.optim.AdamW([_p(L)], weight_decay=-1),
    lambda L: L.optim.RMSprop([_p(L)], alpha=-1),
    lambda L: L.optim.RMSprop([_p(L)], momentum=-1),
    lambda L: L.optim.RMSprop([_p(L)], eps=-1),
    lambda L: L.optim.Adagrad([_p(L)], lr_decay=-1),
    lambda L: L.optim.Adagrad([_p(L)], initial_accumulator_value=-1),
    lambda L: L.optim.Adagrad([_p(L)], eps=-1),
    lambda L: (lambda p: L.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1))(_p(L)),
    lambda L: L.optim.SGD([{"params": {_p(L)}}], lr=0.1),
    lambda L: L.optim.SGD([("a", _p(L)), _p(L)], lr=0.1),
    lambda L: L.optim.SGD([_p(L)], lr=0.1).add_param_group([_p(L)]),
    lambda L: L.optim.SGD([_p(L)], lr=0.1).add_param_group({"params": [("a", _p(L))]}),
    lambda L: L.optim.Optimizer([_p(L)], {}).step(),
])
def test_errors_match_pytorch(scenario):
    torch = pytest.importorskip("torch")
    same_error(scenario, torch)


def test_the_issue_message_for_an_empty_parameter_list():
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optim.SGD(nn.Sequential().parameters(), lr=0.1)


def test_duplicate_parameters_warn_as_pytorch():
    torch = pytest.importorskip("torch")
    messages = []
    for L in (tg, torch):
        p = _p(L)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            L.optim.SGD([p, p], lr=0.1)
        messages.append([torch_words(str(w.message)) for w in caught])
    assert messages[0] == messages[1] and len(messages[0]) == 1


# ----- learning-rate schedulers ---------------------------------------------------------------
def _halve(epoch):
    return 0.5 ** (epoch // 4)


class Warmup:
    """A callable object: its state is saved by LambdaLR.state_dict."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.steps)


SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 1}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.001}),
    ("CosineAnnealingLR", {"T_max": 7}),
    ("LambdaLR", {"lr_lambda": _halve}),
    ("LambdaLR", {"lr_lambda": [lambda e: 0.95 ** e, Warmup(5)]}),
]
SCHEDULE_IDS = [f"{n}-{'-'.join(map(str, kw.values()))}" for n, kw in SCHEDULES]


def _schedule_run(L, name, kwargs, epochs=40, sched_state=None, opt_state=None):
    p, q = L.nn.Parameter(L.ones(2, dtype=L.float64)), L.nn.Parameter(L.ones(1, dtype=L.float64))
    opt = L.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.3}], lr=0.1, momentum=0.9)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    sched = getattr(L.optim.lr_scheduler, name)(opt, **kwargs)
    if sched_state is not None:
        sched.load_state_dict(sched_state)
    lrs = [sched.get_last_lr()]
    for _ in range(epochs):
        for t in (p, q):
            t.grad = L.ones_like(t)
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
        assert lrs[-1] == [g["lr"] for g in opt.param_groups]
    return lrs, sched, opt, (p, q)


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=SCHEDULE_IDS)
def test_scheduler_matches_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no warning when used in the right order
        lrs, sched, opt, params = _schedule_run(tg, name, kwargs)
    want, ref, ref_opt, ref_params = _schedule_run(torch, name, kwargs)
    assert lrs == want                                     # the same floats, epoch by epoch
    assert len({round(v[0], 12) for v in lrs}) > 1         # the schedule does change the lr
    for p, q in zip(params, ref_params):
        close(p, q, TOL)
    assert sched.state_dict() == ref.state_dict()
    assert opt.state_dict()["param_groups"] == ref_opt.state_dict()["param_groups"]


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=SCHEDULE_IDS)
def test_scheduler_state_dict_resumes(name, kwargs):
    first, sched, opt, _ = _schedule_run(tg, name, kwargs, epochs=15)
    rest, _, _, _ = _schedule_run(tg, name, kwargs, epochs=10,
                                  sched_state=copy.deepcopy(sched.state_dict()),
                                  opt_state=copy.deepcopy(opt.state_dict()))
    straight, _, _, _ = _schedule_run(tg, name, kwargs, epochs=25)
    assert first + rest[1:] == straight


def test_scheduler_warnings_match_pytorch():
    torch = pytest.importorskip("torch")

    def misuse(L):
        opt = L.optim.SGD([_p(L)], lr=0.1)
        sched = L.optim.lr_scheduler.StepLR(opt, 2)
        sched.step()                        # before optimizer.step()
        sched.get_lr()                      # outside step()
        opt.step()
        sched.step(5)                       # the deprecated epoch argument
        return sched.get_last_lr()

    got, want = [], []
    for L, out in ((tg, got), (torch, want)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lr = misuse(L)
        out.extend([lr] + [torch_words(str(w.message)) for w in caught])
    assert len(want) == 4 and got == want


@pytest.mark.parametrize("scenario", [
    lambda L: L.optim.lr_scheduler.StepLR(object(), 3),
    lambda L: L.optim.lr_scheduler.LambdaLR(L.optim.SGD([_p(L)], lr=0.1), [abs, abs]),
    lambda L: L.optim.lr_scheduler.ExponentialLR(L.optim.SGD([_p(L)], lr=0.1), 0.5,
                                                 last_epoch=3),
])
def test_scheduler_errors_match_pytorch(scenario):
    torch = pytest.importorskip("torch")
    same_error(scenario, torch)


def test_lr_scheduler_module_names():
    assert {"LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR",
            "LambdaLR"} <= set(dir(lr_scheduler))


# ----- the walkthrough network, with modules and optimizers ----------------------------------
@pytest.mark.parametrize("name, kwargs, epochs", [("SGD", {"lr": 1e-4}, 200),
                                                  ("Adam", {"lr": 1e-2}, 200)])
def test_walkthrough_network_trains_as_in_pytorch(name, kwargs, epochs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(777)
    x, y = rng.standard_normal((100, 3)), rng.standard_normal((100, 1))
    tg.manual_seed(777)
    model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1)).double()
    ref = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 1)).double()
    ref.load_state_dict({k: torch.from_numpy(array(v).copy())
                         for k, v in model.state_dict().items()})
    losses = []
    for m, L, X, Y in ((model, tg, tg.tensor(x, dtype=tg.float64),
                        tg.tensor(y, dtype=tg.float64)),
                       (ref, torch, torch.from_numpy(x), torch.from_numpy(y))):
        opt = getattr(L.optim, name)(m.parameters(), **kwargs)
        loss_fn = L.nn.MSELoss(reduction="sum")
        run = []
        for _ in range(epochs):
            loss = loss_fn(m(X), Y)
            run.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses.append(run)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-10)
    assert losses[0][-1] < losses[0][0]
    for p, q in zip(model.parameters(), ref.parameters()):
        close(p, q, 1e-10)


def test_a_compiled_loss_of_modules_trains_as_the_eager_one():
    """tg.compile records the model's forward and the loss once and replays them; the
    backward and the optimizer step run outside, as the README shows."""
    runs = []
    for compiled in (False, True):
        tg.manual_seed(3)
        x, y = tg.randn(16, 3, dtype=tg.float64), tg.tensor([0, 1, 2, 1] * 4)
        model = nn.Sequential(nn.Linear(3, 8), nn.GELU(), nn.Linear(8, 3)).double()
        opt = optim.Adam(model.parameters(), lr=0.05)

        def loss_fn(x):
            return nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        step_loss = tg.compile(loss_fn) if compiled else loss_fn
        losses = []
        for _ in range(20):
            loss = step_loss(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, [array(p) for p in model.parameters()]))
        if compiled:
            assert step_loss.stats()["recordings"] >= 1
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12)
    for p, q in zip(runs[1][1], runs[0][1]):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)
    assert runs[0][0][-1] < runs[0][0][0]


def test_a_compiled_cross_entropy_records_once():
    y = tg.tensor([0, 1, 2, 1])
    step_loss = tg.compile(lambda x: nn.functional.cross_entropy(x, y))
    for _ in range(3):
        step_loss(tg.randn(4, 3, dtype=tg.float64, requires_grad=True)).backward()
    assert step_loss.stats()["recordings"] == 1


def test_differentiable_optimizers_say_they_are_not_supported():
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        with pytest.raises(NotImplementedError, match="differentiable=True"):
            getattr(optim, name)([nn.Parameter(tg.ones(1))], differentiable=True)
