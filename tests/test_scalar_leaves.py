"""0-d leaves reused across graphs on the scalar fast path (issue 10).

A 0-d leaf's first use on a tape gives it a LEAF record there. The arithmetic operators
(``_generated/operators.py``) write it themselves, in the same pack as the op's record, when
the leaf was recorded on an earlier tape (its node and grad cell exist); every other case
takes the general path (``face._record_scalar``, ``recording._source``). Here: both paths
give the same records and PyTorch's gradients whatever changed between the graphs (the
tape, requires_grad, the dtype, the value, hooks, the grads kept), with float32 and float64
leaves, the leaf on either side, and the general path counted so that the fast one is
known to run.
"""
import math

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import state
from tapegrad._generated import operators
from tapegrad.state import thread_state
from tapegrad.tape import Tape

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def fast_path(monkeypatch):
    """The fast path records only while a single thread uses tapegrad (state.py): an
    earlier test's threads turn it off for the rest of the process. This test runs as in a
    process where this thread is the only one (a new live tape), and ``calls`` counts the
    ops that took the general path instead."""
    st = thread_state()
    old = state._single[0]
    state._single[0] = st
    st.tape = Tape()                      # live: the fast path's tape
    calls = []
    general = operators._record_scalar

    def counted(out, head, x, y):
        calls.append(head)
        return general(out, head, x, y)
    monkeypatch.setattr(operators, "_record_scalar", counted)
    yield calls
    state._single[0] = old
    st.tape = Tape()                      # live again only if the process was single-threaded


def _leaves(values, dtype=tg.float64):
    return [tg.tensor(v, dtype=dtype, requires_grad=True) for v in values]


def _reset(leaves):
    for t in leaves:
        t.grad = None


def _grads(leaves):
    return [None if t.grad is None else t.grad.item() for t in leaves]


def _horner(cs, x):
    acc = cs[0]
    for c in cs[1:]:
        acc = acc * x + c
    return acc


def test_horner_leaves_reused_on_new_tapes_take_the_fast_path_and_are_right(fast_path):
    values = [0.5, -1.25, 2.0, 0.75, -0.1]
    cs, x = _leaves(values), tg.tensor(0.9, dtype=tg.float64, requires_grad=True)
    n = len(values)
    for k in range(3):
        _reset(cs + [x])
        fast_path.clear()
        out = _horner(cs, x)
        # the first op (two leaves new on the tape) takes the general path; on the tapes
        # after the first, every coefficient's first use is written inline
        assert len(fast_path) == (1 if k else n)
        out.backward()
        assert _grads(cs) == pytest.approx([0.9 ** (n - 1 - i) for i in range(n)], rel=1e-15)
        dx = sum((n - 1 - i) * v * 0.9 ** (n - 2 - i) for i, v in enumerate(values[:-1]))
        assert x.grad.item() == pytest.approx(dx, rel=1e-14)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("float32", "float32"),
                                    ("float32", "float64"), ("float64", "float32")],
                         ids=lambda d: "-".join(d))
def test_a_leaf_new_on_the_tape_on_either_side_matches_pytorch(fast_path, op, side, dtypes):
    """r (a result of the live tape) op c, or c op r, with leaf c recorded on an earlier
    tape: values, result dtypes and both leaves' grads as PyTorch's, over three tapes."""
    torch = pytest.importorskip("torch")
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    ours = [tg.tensor(1.7, dtype=getattr(tg, dtypes[0]), requires_grad=True),
            tg.tensor(-0.6, dtype=getattr(tg, dtypes[1]), requires_grad=True)]
    theirs = [torch.tensor(1.7, dtype=getattr(torch, dtypes[0]), requires_grad=True),
              torch.tensor(-0.6, dtype=getattr(torch, dtypes[1]), requires_grad=True)]
    for k in range(3):
        results = []
        for lib, (a, c) in ((tg, ours), (torch, theirs)):
            if lib is tg:
                _reset(ours)
                fast_path.clear()
            else:
                a.grad = c.grad = None
            r = a.exp()                       # a result on the tape
            out = fn(r, c) if side == "left" else fn(c, r)
            out = out * out                   # reads the values the records hold
            results.append(out)
            if lib is tg:
                assert not fast_path or k == 0
                # the dtypes the tape holds (the sweep's dtype follows: 3 is mixed)
                assert out._tape.dtypes == {("float32", "float32"): 1,
                                            ("float64", "float64"): 2}.get(dtypes, 3)
            out.backward()
        assert str(results[0].dtype).split(".")[-1] == str(results[1].dtype).split(".")[-1]
        tol = 1e-6 if "float32" in dtypes else 1e-14
        assert results[0].item() == pytest.approx(results[1].item(), rel=tol)
        for t, u in zip(ours, theirs):
            assert t.grad.dtype is getattr(tg, str(u.grad.dtype).split(".")[-1])
            assert t.grad.item() == pytest.approx(u.grad.item(), rel=tol)


def test_a_leaf_twice_in_one_op_and_two_new_leaves_take_the_general_path(fast_path):
    p, q = _leaves([1.5, -2.0])
    (p * q).backward()                       # p and q recorded on a first tape
    for _ in range(2):
        _reset([p, q])
        fast_path.clear()
        out = p * p + p * q                  # p * p: new on the tape twice; p * q: two leaves
        assert len(fast_path) == 2
        out = out * p.exp()                  # p recorded there already: fast
        assert len(fast_path) == 2
        out.backward()
        e = math.exp(1.5)
        assert p.grad.item() == pytest.approx((2 * 1.5 + -2.0) * e + (1.5 ** 2 - 3.0) * e)
        assert q.grad.item() == pytest.approx(1.5 * e)


def test_requires_grad_turned_off_and_on_between_graphs(fast_path):
    c, = _leaves([3.0])
    x = tg.tensor(2.0, dtype=tg.float64, requires_grad=True)
    (x.exp() * c).backward()
    assert c.grad.item() == pytest.approx(math.exp(2.0))
    c.requires_grad_(False)                  # a constant now: no LEAF record, no grad
    _reset([x])
    out = x.exp() * c
    out.backward()
    assert c.grad.item() == pytest.approx(math.exp(2.0))      # untouched
    assert x.grad.item() == pytest.approx(3.0 * math.exp(2.0))
    c.grad = None
    c.requires_grad_(True)
    for _ in range(2):
        _reset([x, c])
        (x.exp() * c).backward()
        assert c.grad.item() == pytest.approx(math.exp(2.0))
        assert x.grad.item() == pytest.approx(3.0 * math.exp(2.0))


def test_a_new_value_or_dtype_between_graphs(fast_path):
    c, = _leaves([3.0])
    x = tg.tensor(2.0, dtype=tg.float64, requires_grad=True)
    (x.exp() * c).backward()
    c.data = tg.tensor(5.0, dtype=tg.float64)          # same dtype: a new value
    _reset([x, c])
    (x.exp() * c).backward()
    assert x.grad.item() == pytest.approx(5.0 * math.exp(2.0))
    assert c.grad.item() == pytest.approx(math.exp(2.0))
    c.data = tg.tensor(0.25, dtype=tg.float32)         # a new dtype: new grad storage
    _reset([x, c])
    out = x.exp() * c
    assert out.dtype is tg.float64
    out.backward()
    assert c.grad.dtype is tg.float32
    assert c.grad.item() == pytest.approx(math.exp(2.0), rel=1e-6)
    assert x.grad.item() == pytest.approx(0.25 * math.exp(2.0))
    with tg.no_grad():
        c.mul_(2.0)                                     # in place, between graphs
    _reset([x, c])
    (x.exp() * c).backward()
    assert x.grad.item() == pytest.approx(0.5 * math.exp(2.0))


def test_grads_kept_across_backwards_accumulate(fast_path):
    cs = _leaves([0.5, 1.5, -2.0])
    x = tg.tensor(1.1, dtype=tg.float64, requires_grad=True)
    total = np.zeros(3)
    for k in range(4):
        _horner(cs, x).backward()            # grads not reset: they add up
        total += [1.1 ** 2, 1.1, 1.0]
        assert _grads(cs) == pytest.approx(list(total), rel=1e-15)


def test_a_hook_added_between_graphs_sees_the_grad(fast_path):
    c, = _leaves([2.0])
    x = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
    (x.exp() + c).backward()
    seen = []
    c.register_hook(lambda g: seen.append(g.item()) or g * 10)
    _reset([x, c])
    (x.exp() * c).backward()
    assert seen == [pytest.approx(math.exp(0.5))]
    assert c.grad.item() == pytest.approx(10 * math.exp(0.5))


def test_a_leaf_changed_in_place_after_its_use_fails_the_backward(fast_path):
    """As PyTorch: mul saved c, and c changed in place before the backward."""
    c, = _leaves([2.0])
    x = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
    (x.exp() * c).backward()
    _reset([x, c])
    out = x.exp() * c                        # c new on this tape: the fast path
    with tg.no_grad():
        c.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_two_threads_share_leaves(fast_path):
    """Another thread turns the fast path off: the general path records the same graph."""
    import threading
    cs = _leaves([0.5, 1.5, -2.0, 0.25])
    x = tg.tensor(0.8, dtype=tg.float64, requires_grad=True)
    _horner(cs, x).backward()
    got = {}

    def other():
        got["out"] = _horner(cs, x).item()
    t = threading.Thread(target=other)
    t.start()
    t.join()
    _reset(cs + [x])
    _horner(cs, x).backward()
    assert got["out"] == pytest.approx(_horner([c.item() for c in cs], 0.8))
    assert _grads(cs) == pytest.approx([0.8 ** 3, 0.8 ** 2, 0.8, 1.0], rel=1e-15)
