"""The structural guarantees of the core (issue 10): a backward is a constant number of
Python calls whatever the number of records and leaves; grads live in the storage the
sweep writes (no scatter); records are 24 bytes, born typed; float32 tapes sweep in float32."""
import collections
import gc
import sys

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import ops
from tapegrad.layout import (CONST_A, CONST_B, F32, OPMASK, RECORD, RECORD_SIZE, SCALAR, SHIFT,
                             SPLIT)

pytestmark = pytest.mark.usefixtures("isolated")


def _python_calls(fn):
    """Python-level and C-level calls made while fn runs (sys.setprofile). Earlier tests'
    garbage is collected first: its finalizers, run by a collection that happens to start
    inside fn, are not fn's calls."""
    gc.collect()
    calls = collections.Counter()         # (file, function) -> calls, for a failure's message

    def profile(frame, event, arg):
        if event == "call":
            calls[frame.f_code.co_filename.rsplit("/", 1)[-1], frame.f_code.co_name] += 1
        elif event == "c_call":
            calls["C", arg.__name__] += 1
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return CallCount(calls)


def _warm(out):
    """A warm-up backward, after earlier tests' garbage is collected: a dead leaf with hooks
    still in the engine's deferred set sends one backward through the general path (which
    drops it), and that must be the warm-up, not the backward whose calls are counted."""
    gc.collect()
    out.backward()


class CallCount(int):
    """A number of calls that shows which they were when an assertion prints it."""
    def __new__(cls, calls):
        self = super().__new__(cls, sum(calls.values()))
        self.calls = calls
        return self

    def __repr__(self):
        return f"{int(self)} calls: {self.calls.most_common()}"


def _scalar_graph(n_leaves):
    """About 4 records a leaf: (acc * x + c).tanh() chained over the leaves."""
    leaves = [tg.tensor(float(v), dtype=tg.float64, requires_grad=True)
              for v in np.random.default_rng(0).standard_normal(n_leaves)]
    x = tg.tensor(0.999, dtype=tg.float64, requires_grad=True)
    acc = leaves[0]
    for c in leaves[1:]:
        acc = (acc * x + c).tanh()
    return acc, leaves, x


def _walkthrough_iteration(params, x, y):
    w1, w2, b1, b2 = params
    loss = (x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2) - y).pow(2).sum()
    return loss


def test_backward_of_200k_scalar_records_and_50k_leaves_is_under_100_calls():
    out, leaves, x = _scalar_graph(2000)
    _warm(out)                                       # warm: kernels loaded or compiled
    out, leaves, x = _scalar_graph(50_000)
    assert len(out._tape) >= 199_990
    calls = _python_calls(out.backward)
    assert calls < 100, calls
    # and the grads are right: d/dc_0 of the chain, by the closed form of its last step
    assert leaves[-1].grad.item() == pytest.approx(1 - out.item() ** 2, rel=1e-12)


def test_a_hooked_leaf_elsewhere_leaves_backward_at_a_constant_number_of_calls():
    # a leaf with a hook (its grad goes through Python) on another, live graph
    other = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    other.register_hook(lambda g: g * 2)
    pending = (other * other).sum()
    counts = []
    for n in (1000, 20_000):
        out, leaves, _ = _scalar_graph(n)
        out.backward()
        out, leaves, _ = _scalar_graph(n)
        counts.append(_python_calls(out.backward))
        assert leaves[-1].grad.item() == pytest.approx(1 - out.item() ** 2, rel=1e-12)
    assert counts[0] == counts[1] and counts[1] < 100, counts
    pending.backward()                                  # and the hook still runs there
    np.testing.assert_array_equal(other.grad.numpy(), [4.0, 8.0])


def test_backward_of_a_walkthrough_iteration_is_under_100_calls():
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((100, 3)), dtype=tg.float64)
    y = tg.tensor(rng.standard_normal((100, 1)), dtype=tg.float64)
    params = [tg.tensor(rng.standard_normal(s), dtype=tg.float64, requires_grad=True)
              for s in ((3, 32), (32, 1), (1, 32), (1, 1))]
    _warm(_walkthrough_iteration(params, x, y))                # warm
    loss = _walkthrough_iteration(params, x, y)
    calls = _python_calls(loss.backward)
    assert calls < 100, calls


def test_backward_calls_do_not_grow_with_records_or_leaves():
    counts = []
    for n in (1000, 20_000):
        out, _, _ = _scalar_graph(n)
        if not counts:
            _warm(out)                                          # warm
            out, _, _ = _scalar_graph(n)
        counts.append(_python_calls(out.backward))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("shape", [(), (3, 4)])
def test_grad_is_a_view_of_the_storage_the_sweep_writes(shape):
    """A leaf's .grad shares memory with the grad storage the sweep accumulates into
    (``leaves.py``), and it is the same buffer and object across backwards."""
    from tapegrad.hooks import grad_storage
    w = tg.tensor(np.full(shape, 1.5), dtype=tg.float64, requires_grad=True)
    (w * w).sum().backward()
    g = w.grad
    arena = grad_storage(w)
    assert np.shares_memory(g.numpy(), arena)
    before = g.numpy().copy()
    (w * 3.0).sum().backward()
    assert w.grad is g and np.shares_memory(w.grad.numpy(), arena)
    np.testing.assert_array_equal(w.grad.numpy(), before + 3.0)
    assert grad_storage(w) is arena


def test_a_scalar_record_is_24_bytes_born_typed():
    """Three numbers a record, packed as they are made (the sweep adds 8 bytes of adjoint
    and 1 of reach per record: 33 bytes in all)."""
    a = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
    b = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    h = a
    for _ in range(1000):
        h = h * b + 0.25
    tape = h._tape
    assert len(tape.rec) == RECORD_SIZE * len(tape) and RECORD_SIZE == 24
    assert isinstance(tape.rec, bytearray)
    heads = np.frombuffer(tape.rec, np.int64)[0::3]          # no conversion: a view
    assert len(heads) == len(tape)


def test_the_fast_path_packs_the_heads_the_general_path_packs():
    """The scalar fast path packs a record with its head in two fields (layout.SPLIT: op |
    flags, then a): the same 24 bytes as RECORD's int64 op | flags | a << SHIFT, for every a
    below 2**32, past 2**17 too (where a << SHIFT needs a two-digit Python int)."""
    for head in (0, ops.LEAF | SCALAR, ops.MUL | SCALAR | F32 | CONST_B,
                 ops.SUB | SCALAR | CONST_A, (1 << SHIFT) - 1):
        for a in (0, 1, 2 ** 17 - 1, 2 ** 17, 2 ** 30, 2 ** 31 + 5, 2 ** 32 - 1):
            assert SPLIT.pack(head, a, -3.0, 0.5) == RECORD.pack(head | a << SHIFT, -3.0, 0.5)


def test_fast_path_records_past_slot_2_17_name_their_operands():
    """Horner's rule over 70,000 leaves (210,000 records): each record's operands, read back
    from the packed heads, are the slots the fast path saw; every leaf's record names it."""
    n = 70_000
    c = [tg.tensor(1.0 / (i + 1), dtype=tg.float64, requires_grad=True) for i in range(n)]
    x = tg.tensor(0.9995, dtype=tg.float64, requires_grad=True)
    p = c[0]
    for ci in c[1:]:
        prev = p
        q = p * x
        p = q + ci
    tape = p._tape
    assert len(tape) > 2 ** 17 and prev._slot > 2 ** 17
    assert tape.operands(q._slot) == (prev._slot, x._node.slot, False)
    assert tape.operands(p._slot) == (q._slot, c[-1]._node.slot, False)
    heads = np.frombuffer(tape.rec, np.int64)[0::3]
    leaf = np.nonzero((heads & OPMASK) == ops.LEAF)[0]
    assert len(leaf) == n + 1
    assert all(tape.leaf_nodes[int(heads[s]) >> SHIFT].slot == s for s in leaf)
    p.backward()
    assert c[0].grad.item() == pytest.approx(0.9995 ** (n - 1), rel=1e-12)


def test_a_leaf_and_a_number_on_the_live_tape_record_with_no_python_call():
    """A leaf already recorded on the live tape, times (plus, ...) a number, records
    inline: no call into the general path (face._record_scalar).
    Its first use on a tape, or a tape past its size limit, still takes the general path."""
    w = tg.tensor(0.3, dtype=tg.float64, requires_grad=True)
    v = tg.tensor(-0.7, dtype=tg.float32, requires_grad=True)
    h = w * w + v
    tape = h._tape
    outs = []

    def ops_():
        outs.extend([w * 2.0, 3 - w, w / 4.0, w + 1, w - 0.5, v * 2.0, 1.5 * v])
    calls = _python_calls(ops_)
    general = ("_record_scalar", "_live_tape", "_sx", "_source", "_finish", "current_tape")
    assert not [k for k in calls.calls if k[1] in general], calls
    assert all(o._tape is tape for o in outs)
    loss = h
    for o in outs:
        loss = loss + o
    loss.backward()
    assert w.grad.item() == pytest.approx(2 * 0.3 + 2.0 - 1 + 0.25 + 1 + 1, rel=1e-15)
    assert v.grad.item() == 1 + 2.0 + 1.5
    fresh = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)      # first use
    calls = _python_calls(lambda: fresh * 2.0)
    assert any(k[1] == "_record_scalar" for k in calls.calls), calls


def test_a_leaf_and_a_number_past_the_tape_limit_start_a_new_tape(monkeypatch):
    """As the general path does (state.current_tape): the leaf's op goes to a new tape."""
    from tapegrad import tape as tape_mod
    w = tg.tensor(0.3, dtype=tg.float64, requires_grad=True)
    h = w * w
    monkeypatch.setattr(tape_mod.Tape, "LIMIT", 0)
    out = w * 2.0
    assert out._tape is not h._tape
    out.backward()
    assert w.grad.item() == 2.0


def test_a_float32_tape_is_swept_in_float32():
    """float32 gradients are computed in float32, as PyTorch computes them."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    xv = rng.standard_normal((5, 4)).astype(np.float32)
    wv = rng.standard_normal((4, 3)).astype(np.float32)
    got = []
    for L in (tg, torch):
        x = L.tensor(xv)
        w = L.tensor(wv, requires_grad=True)
        ((x.mm(w).tanh() * 1.7 + 0.3).sigmoid() ** 2).sum().backward()
        got.append(np.asarray(w.grad.detach().numpy()))
    assert got[0].dtype == np.float32
    np.testing.assert_allclose(got[0], got[1], rtol=2e-6, atol=1e-7)


def test_graphs_freed_by_their_backward_leave_nothing_for_in_place_changes_to_walk():
    """An in-place change of a 0-d leaf marks its records on the tapes earlier backwards
    left that may still run (tape.LEFT). A backward that frees its whole graph takes that
    tape off, so a loop that keeps its losses (and so their tapes) costs nothing there."""
    from tapegrad.tape import LEFT
    ps = [tg.tensor(float(i) + 1.0, dtype=tg.float64, requires_grad=True) for i in range(5)]
    before = set(LEFT)
    losses = []
    for _ in range(50):
        loss = sum(p * p for p in ps)
        loss.backward()
        losses.append(loss)
        with tg.no_grad():
            for p in ps:
                p.sub_(0.1 * p.grad)
                p.grad.zero_()
    assert set(LEFT) <= before
    assert ps[0].item() == pytest.approx(0.8 ** 50, rel=1e-12)   # p <- p - 0.1 * 2p
    kept = sum(p * p for p in ps)
    kept.backward(retain_graph=True)                  # this one may run again: kept
    assert kept._tape.id in LEFT


def test_the_kernels_views_of_a_tape_pin_its_buffers():
    """The arrays the kernels read are views of the tape's bytearrays: while one lives,
    growing a bytearray must raise (BufferError) rather than move the memory under it."""
    w = tg.tensor(np.ones((3, 4)), requires_grad=True)
    y = (w.exp() * 2.0).sum()
    tape = y._tape
    views = tape.arrays()
    for buf in (tape.rec, tape.static, tape.dyn):
        with pytest.raises(BufferError):
            buf += bytes(4096)
    del views
    tape.dyn += bytes(0)                # no view left: the buffers may move again
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.exp(np.ones((3, 4))), rtol=1e-15)
