"""The sweep's tiers (codegen_sweeps.py): a tape takes the least tier that covers what it
holds, so that a cold start compiles only the kernels it runs, and every tier gives the
gradients the core tier gives."""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad import ops
from tapegrad._generated import sweeps
from tapegrad.state import thread_state


def _tier_of(loss):
    return loss._tape.sweep_tier(sweeps).py_func.__name__


W0 = np.arange(6.0).reshape(3, 2) * [1, -1] - 0.5      # a column above 0, one below


def _walkthrough(dt):
    x = tg.ones(4, 3, dtype=dt)
    w = tg.tensor(W0, dtype=dt, requires_grad=True)
    b = tg.zeros(1, 2, dtype=dt, requires_grad=True)
    return w, b, (x.mm(w).add(b).clamp(min=0) - 1).pow(2).sum()


@pytest.mark.parametrize("dt", [tg.float32, tg.float64])
def test_the_walkthrough_takes_the_basic_tier(dt):
    w, b, loss = _walkthrough(dt)
    assert _tier_of(loss) == "backward_all_basic"
    loss.backward()
    # d/dw sum((relu(xw + b) - 1)^2) with x all ones: 2 (h - 1) summed over rows, h > 0
    h = np.maximum(np.ones((4, 3)) @ W0, 0)
    gh = 2 * (h - 1) * (h > 0)
    np.testing.assert_allclose(w.grad.numpy(), np.ones((3, 4)) @ gh, rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), gh.sum(0, keepdims=True), rtol=1e-6)


def test_each_tier_is_the_least_that_covers_the_tape():
    cases = [(lambda x, s: (x * 2 + x).relu().t().sum(), "backward_all_basic"),
             (lambda x, s: (x * x).pow(2.0).tanh().neg().mean(), "backward_all_basic"),
             (lambda x, s: (x * 2).pow(3.0).sum(), "backward_all"),   # unary_grad's switch
             (lambda x, s: (x / 2).sum(), "backward_all"),            # binary_grad's switch
             (lambda x, s: (x * s).sum(), "backward_all"),            # and a scalar record
             (lambda x, s: (s * s + s).tanh(), "backward_all_scalar"),
             (lambda x, s: x.softmax(1).sum(), "backward_all_full")]
    for make, want in cases:
        thread_state().tape = None                    # a tape of this case only
        loss = make(tg.ones(2, 2, requires_grad=True), tg.tensor(1.5, requires_grad=True))
        assert _tier_of(loss) == want
        loss.backward()


@pytest.mark.parametrize("op", ["pow2", "pow3", "div", "mul_bcast", "sub_first", "clone"])
def test_a_tier_gives_what_the_core_tier_gives(op):
    """The same graph through its own tier and forced through the core one: equal grads."""
    def run(force_core):
        a = tg.tensor(np.linspace(-1.5, 2.0, 6).reshape(2, 3), requires_grad=True)
        c = tg.tensor(np.linspace(0.5, 1.0, 3), requires_grad=True)
        y = {"pow2": lambda: a.pow(2), "pow3": lambda: a.pow(3), "div": lambda: a / c,
             "mul_bcast": lambda: a * c, "sub_first": lambda: 2 - a * c,
             "clone": lambda: a.clone() * c}[op]()
        loss = y.sum()
        if force_core:
            loss._tape.general = True
        loss.backward()
        return a.grad.numpy(), c.grad.numpy() if c.grad is not None else None
    own, core = run(False), run(True)
    np.testing.assert_array_equal(own[0], core[0])
    if own[1] is not None:
        np.testing.assert_array_equal(own[1], core[1])


def test_basic_ops_have_loops_of_their_own():
    """The basic tier's kernels leave out the per-element switches: an op of tier 0 must
    be one with a dedicated loop (kernels_grads._binary_same / _unary)."""
    names = {ops.BY_CODE[i].name for i, t in enumerate(ops.TIER) if t == 0
             and ops.BY_CODE[i].family in ("binary", "unary")}
    assert names == {"add", "sub", "mul", "neg", "relu", "clamp", "tanh", "to", "clone"}
