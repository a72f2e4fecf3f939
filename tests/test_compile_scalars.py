"""tg.compile of scalar graphs (0-d tensors only): a replay's backward takes the scalar
sweep eager tapes of scalars take (``replay_backward.backward_scalars_at``), and gives
the eager gradients to the bit: reuse of a leaf, a leaf not reached, retain_graph, a
second backward, float32."""
import math

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import replay_backward


def _loss(w, b, x1, x2, unused):
    """A small net of 0-d tensors: every scalar op family the sweep's scalar branch has,
    w read twice, ``unused`` not reached."""
    h1 = (w * x1 + b).relu()
    h2 = (w * x2 - b).tanh()
    z = h1 * h1 + h2 / (1.0 + w * w) - (x1 - x2).exp() * 0.5
    return z.pow(3.0) + (b * 2.0).sigmoid() + w.clamp(min=-0.3, max=0.3)


def _leaves(vals, dtype):
    return [tg.tensor(v, dtype=dtype, requires_grad=True) for v in vals]


def _grads(ts):
    return [None if t.grad is None else float(t.grad) for t in ts]


def _inputs(rng):
    return [float(v) for v in rng.uniform(-1.5, 1.5, 5)]


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32])
def test_replayed_scalar_graph_grads_are_the_eager_ones_to_the_bit(dtype):
    rng = np.random.default_rng(7)
    f = tg.compile(_loss)
    for _ in range(6):              # a recording, then replays at new values
        vals = _inputs(rng)
        eager, compiled = _leaves(vals, dtype), _leaves(vals, dtype)
        out_e, out_c = _loss(*eager), f(*compiled)
        assert float(out_c) == float(out_e)
        out_e.backward()
        out_c.backward()
        assert _grads(compiled) == _grads(eager)
        assert compiled[4].grad is None            # not reached: no grad, as eagerly
    assert f.counts["replays"] >= 5


def test_replayed_scalar_graph_grads_match_finite_differences():
    rng = np.random.default_rng(8)
    f = tg.compile(_loss)
    vals = _inputs(rng)
    f(*_leaves(vals, tg.float64)).backward()        # the recording
    ts = _leaves(vals, tg.float64)
    f(*ts).backward()
    for i in range(4):
        h = 1e-6
        up, dn = list(vals), list(vals)
        up[i] += h
        dn[i] -= h
        fd = (float(_loss(*_leaves(up, tg.float64))) -
              float(_loss(*_leaves(dn, tg.float64)))) / (2 * h)
        assert math.isclose(float(ts[i].grad), fd, rel_tol=1e-6, abs_tol=1e-8)


def test_replayed_scalar_graph_retain_graph_then_a_second_backward():
    rng = np.random.default_rng(9)
    f = tg.compile(_loss)
    f(*_leaves(_inputs(rng), tg.float64)).backward()
    vals = _inputs(rng)
    eager, compiled = _leaves(vals, tg.float64), _leaves(vals, tg.float64)
    out_e, out_c = _loss(*eager), f(*compiled)
    out_e.backward(retain_graph=True)
    out_c.backward(retain_graph=True)
    out_e.backward()                                 # the second one frees the graph
    out_c.backward()
    assert _grads(compiled) == _grads(eager)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out_c.backward()


def test_replayed_scalar_graph_backward_takes_the_scalar_sweep(monkeypatch):
    calls = []
    scalar, general = replay_backward.backward_scalars_at, replay_backward.backward_all_at
    monkeypatch.setattr(replay_backward, "backward_scalars_at",
                        lambda *a: calls.append("scalar") or scalar(*a))
    monkeypatch.setattr(replay_backward, "backward_all_at",
                        lambda *a: calls.append("general") or general(*a))
    f = tg.compile(_loss)
    rng = np.random.default_rng(10)
    for _ in range(3):
        f(*_leaves(_inputs(rng), tg.float64)).backward()
    assert calls == ["scalar"] * 3           # the recording's call hands out a replay tape too
    g = tg.compile(lambda w: (w * w).sum())          # an array record: the general sweep
    for _ in range(2):
        g(tg.ones(3, dtype=tg.float64, requires_grad=True)).backward()
    assert calls[3:] == ["general"] * 2


def test_a_hooked_leaf_elsewhere_leaves_the_replay_on_the_scalar_sweep(monkeypatch):
    """A leaf of another graph whose grad goes through Python (a hook), left alive by
    earlier code, is none of this replay's concern: its backward stays one scalar-sweep
    call (it once sent every replay down the segmented path), the grads stay eager's, and
    the other leaf's hook still runs when its own graph's backward comes."""
    seen = []
    other = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    other.register_hook(lambda g: seen.append(g.tolist()) or g)
    calls = []
    scalar = replay_backward.backward_scalars_at
    monkeypatch.setattr(replay_backward, "backward_scalars_at",
                        lambda *a: calls.append("scalar") or scalar(*a))
    f = tg.compile(_loss)
    rng = np.random.default_rng(11)
    for _ in range(3):
        vals = _inputs(rng)
        eager, compiled = _leaves(vals, tg.float64), _leaves(vals, tg.float64)
        _loss(*eager).backward()
        f(*compiled).backward()
        assert _grads(compiled) == _grads(eager)
    assert calls == ["scalar"] * 3
    (other * 3.0).sum().backward()
    assert seen == [[3.0, 3.0]] and other.grad.tolist() == [3.0, 3.0]
