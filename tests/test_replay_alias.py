"""Adjoints shared in a replayed backward (``tapegrad.replay_alias``): where a broadcast
add passes its adjoint straight to its full operand and is that operand's only reader, the
two share one place in the workspace. Each step below runs compiled and eager for a few
iterations and must leave the same parameters and grads (float64, 1e-12), with and without
sharing, and the plan must share exactly where the rule allows."""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad.layout import SIZE

rng = np.random.default_rng(5)
X = tg.tensor(rng.standard_normal((6, 3)))


def _params():
    r = np.random.default_rng(11)
    return [tg.tensor(r.standard_normal(s), requires_grad=True)
            for s in ((3, 4), (1, 4), (4,), (6, 1))]


# name, loss of (w, b, c, d), whether the backward shares a place
STEPS = [
    ("bias", lambda w, b, c, d: (X.mm(w) + b).tanh().sum(), True),
    ("bias_first", lambda w, b, c, d: (b + X.mm(w)).tanh().sum(), True),
    ("minus_bias", lambda w, b, c, d: (X.mm(w) - b).pow(2).sum(), True),
    ("bias_minus", lambda w, b, c, d: (b - X.mm(w)).pow(2).sum(), False),   # full gets -g
    ("two_biases", lambda w, b, c, d: ((X.mm(w) + b) + c).sin().sum(), True),  # a chain
    ("column", lambda w, b, c, d: (X.mm(w) * 2.0 + d).pow(2).sum(), True),
    ("read_twice", lambda w, b, c, d: _twice(w, b), False),
    ("leaf_full", lambda w, b, c, d: (w + c).pow(2).sum(), False),         # a leaf: its own
]


def _twice(w, b):
    h = X.mm(w)
    return (h + b).tanh().sum() + (h * h).sum()      # h read by the add and by the mul


def _train(loss_of, compiled, steps=4):
    params = _params()

    def step(w, b, c, d):
        loss = loss_of(w, b, c, d)
        loss.backward()
        with tg.no_grad():
            for p in (w, b, c, d):
                if p.grad is not None:
                    p.sub_(0.01 * p.grad)
        return loss

    f = tg.compile(step) if compiled else step
    losses = [f(*params).item() for _ in range(steps)]
    return losses, [p.detach().numpy().copy() for p in params], \
        [None if p.grad is None else p.grad.numpy().copy() for p in params], f


@pytest.mark.parametrize("name, loss_of, shares", STEPS, ids=[s[0] for s in STEPS])
def test_shared_adjoints_give_eager_grads(name, loss_of, shares):
    el, ep, eg, _ = _train(loss_of, False)
    cl, cp, cg, f = _train(loss_of, True)
    np.testing.assert_allclose(cl, el, rtol=1e-12)
    for a, b in zip(cp, ep):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(cg, eg):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    (rec,) = f.recordings.values()
    P, plan = rec.program, rec.plan
    off = plan.bw_off[0]
    reached = off >= 0
    sizes = P.ms[:len(off), SIZE]
    assert plan.bw_meta[0, 0] <= sizes[reached].sum()
    distinct = len(set(off[reached].tolist())) < reached.sum()
    assert distinct == shares
    assert (plan.bw_meta[0, 0] < sizes[reached].sum()) == shares
