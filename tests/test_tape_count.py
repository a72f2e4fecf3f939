"""A tape's record count ``tape.n`` (tape.py): every path that appends a record counts it.

The scalar fast path (``_generated/operators.py`` and ``methods.py``) takes a new record's
slot from ``tape.n`` instead of ``len(tape.rec) // RECORD_SIZE``; so do ``recording.py``,
``face._finish`` and ``Tape.record_array``. A path that appended without counting would give
the next record the slot of an earlier one (wrong gradients, silently). Here a workload
that goes through every kind of record (0-d leaves on both sides and for the first time,
constants, unary methods, the general scalar path, array leaves and results, links into
older tapes, in-place changes, another thread, tg.compile recordings and replays, double
backward) is checked record by record on every tape alive, and the gradients against
closed forms.
"""
import threading

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import state
from tapegrad.layout import RECORD_SIZE
from tapegrad.state import thread_state
from tapegrad.tape import LIVE, Tape

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def single():
    """This thread as the only one using tapegrad (the fast path records), as in
    test_scalar_leaves.py's fast_path."""
    st = thread_state()
    old = state._single[0]
    state._single[0] = st
    st.tape = Tape()
    yield
    state._single[0] = old
    st.tape = Tape()


def _tapes():
    return [t for t in (r() for r in list(LIVE.refs.values())) if t is not None]


def _check_counts():
    tapes = _tapes()
    assert tapes
    for t in tapes:
        assert t.n == len(t.rec) // RECORD_SIZE, (t.id, t.n, len(t.rec) // RECORD_SIZE)
        assert len(t) == t.n


def _scalars(x, y, c32):
    """0-d ops of every fast and general kind; returns a 0-d result."""
    p = x * y + x                      # a registered leaf, a result
    p = p * c32                        # float32 leaf with a float64 result: the general path
    p = 2.0 - p + 3 * p / 1.5          # number operands (CONST_A, CONST_B)
    p = p.exp().log() + p.relu()       # unary methods
    q = tg.tensor(0.25, dtype=tg.float64)   # a constant (no grad)
    return p * q + y * x


def test_count_matches_records_everywhere(single):
    x = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
    y = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    c32 = tg.tensor(2.0, dtype=tg.float32, requires_grad=True)
    w = tg.randn(3, 4, requires_grad=True)
    v = tg.randn(4, dtype=tg.float32, requires_grad=True)

    for step in range(3):                     # new tapes: leaves recorded for the first time
        s = _scalars(x, y, c32)
        a = (w @ v).tanh()                    # array records, array leaves
        b = tg.cat([a, a * 2]).sum() + a[1] * s.float()
        h = a.clone()
        h.mul_(2.0)                           # in place on a result
        loss = b + h.sum()
        _check_counts()
        loss.backward(retain_graph=step == 0)
        _check_counts()
        assert x.grad is not None and w.grad is not None
        x.grad = y.grad = c32.grad = w.grad = v.grad = None

    old = _scalars(x, y, c32)                 # a result of a tape whose graph lives on
    old.backward(retain_graph=True)
    linked = old * x + old.exp()              # links into that tape from a new one
    _check_counts()
    linked.backward()
    _check_counts()

    out = {}

    def other():                              # another thread: its own tape
        r = _scalars(x, y, c32)
        out["r"] = r
        _check_counts()
    th = threading.Thread(target=other)
    th.start()
    th.join()
    (out["r"] * 2.0).backward()
    _check_counts()

    g = tg.autograd.grad(_scalars(x, y, c32) ** 2, x, create_graph=True)[0]
    g.backward()                              # double backward: records made by a backward
    _check_counts()


def test_count_through_compile(single):
    f = tg.compile(lambda a, b: (a * b + a).exp() * b + (a * 3.0).relu())
    a = tg.tensor(0.3, dtype=tg.float64, requires_grad=True)
    b = tg.tensor(-0.7, dtype=tg.float64, requires_grad=True)
    for _ in range(4):                        # recordings, then replays
        a.grad = b.grad = None
        out = f(a, b)
        _check_counts()
        out.backward()
        _check_counts()
        e = np.exp(0.3 * -0.7 + 0.3)
        assert a.grad.item() == pytest.approx(e * (-0.7 + 1) * -0.7 + 3.0)
        assert b.grad.item() == pytest.approx(e * 0.3 * -0.7 + e)


def test_horner_slots_are_consecutive(single):
    """The fast path's slots: Horner's rule with fresh coefficient leaves gives three
    records a step (the coefficient's LEAF record, *, +), each result the slot the count
    had, and the closed-form gradients."""
    n = 200
    cs = [tg.tensor(0.01 * (i % 7 - 3), dtype=tg.float64, requires_grad=True) for i in range(n)]
    x = tg.tensor(0.99, dtype=tg.float64, requires_grad=True)
    for _ in range(2):
        p = cs[0]
        for c in cs[1:]:
            q = p * x
            tape = q._tape
            assert q._slot == tape.n - 1
            p = q + c
            assert p._slot == tape.n - 1 and c._node.slot == tape.n - 2
        _check_counts()
        p.backward()
        got = np.array([c.grad.item() for c in cs])
        np.testing.assert_allclose(got, 0.99 ** np.arange(n - 1, -1, -1), rtol=1e-12)
        for c in cs:
            c.grad = None
        x.grad = None
