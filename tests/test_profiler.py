"""``tg.autograd.profiler``: op counts and times, PyTorch's table, and nothing left behind."""
import inspect
import re
import threading

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd import profiler

pytestmark = pytest.mark.usefixtures("isolated")


def _snapshot():
    """Every attribute the profiler may replace, by identity."""
    from tapegrad import engine
    from tapegrad.nn import functional as nnf
    found = {(owner.__name__, k): v for owner in (tg, nnf, tg.linalg, tg.autograd, engine)
             for k, v in vars(owner).items()}
    for klass in tg.Tensor.__mro__[:-1]:      # Tensor's methods, its mixins' included
        found.update((("Tensor", k), inspect.getattr_static(tg.Tensor, k)) for k in vars(klass))
    return found


def _model(L, x, w):
    return (x @ w).relu().sum()


def _rows(table):
    """The table's data rows: name -> its columns (strings)."""
    lines = table.splitlines()
    body = lines[3:lines.index(lines[0], 3)]
    return {re.split(r"\s{2,}", ln.strip())[0]: re.split(r"\s{2,}", ln.strip())[1:]
            for ln in body}


def test_counts_names_and_nesting():
    x = tg.randn(8, 5, dtype=tg.float64)
    w = tg.randn(5, 3, dtype=tg.float64, requires_grad=True)
    with profiler.profile() as prof:
        for _ in range(3):
            _model(tg, x, w).backward()
        with profiler.record_function("my_block"):
            tg.exp(x)               # tg.exp calling Tensor.exp: one event
    avg = {e.key: e for e in prof.key_averages()}
    assert avg["tapegrad::matmul"].count == 3 and avg["tapegrad::mm"].count == 3
    assert avg["tapegrad::relu"].count == 3 and avg["tapegrad::sum"].count == 3
    assert avg["tapegrad::backward"].count == 3
    assert avg["tapegrad::exp"].count == 1 and avg["my_block"].count == 1
    # matmul calls mm: mm's time is in matmul's total, not in its self time
    mm, mat = avg["tapegrad::mm"], avg["tapegrad::matmul"]
    assert mat.cpu_time_total >= mm.cpu_time_total > 0
    assert abs(mat.self_cpu_time_total - (mat.cpu_time_total - mm.cpu_time_total)) < 1e-6
    block = avg["my_block"]
    assert block.cpu_time_total >= avg["tapegrad::exp"].cpu_time_total
    assert abs(block.cpu_time - block.cpu_time_total) < 1e-9
    assert len(prof.function_events) == sum(e.count for e in avg.values())


def test_results_inside_a_profile_are_unchanged():
    x = tg.tensor(np.arange(12.0).reshape(4, 3) / 7, dtype=tg.float64)
    w = tg.tensor(np.linspace(-1, 1, 6).reshape(3, 2), dtype=tg.float64, requires_grad=True)
    _model(tg, x, w).backward()
    outside = w.grad.numpy().copy()
    w.grad = None
    with profiler.profile():
        _model(tg, x, w).backward()
    np.testing.assert_array_equal(w.grad.numpy(), outside)


def test_everything_patched_is_restored_even_after_an_error():
    before = _snapshot()
    with pytest.raises(ZeroDivisionError):
        with profiler.profile():
            assert tg.Tensor.__add__ is not before[("Tensor", "__add__")]   # wrapped
            assert "argmax" in vars(tg.Tensor)         # a mixin method, wrapped on Tensor
            1 / 0
    after = _snapshot()
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    assert "argmax" not in vars(tg.Tensor)
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert hash(x) == id(x)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_table_layout_matches_pytorch():
    torch = pytest.importorskip("torch")
    tables = {}
    for L, prof_mod in ((tg, profiler), (torch, torch.autograd.profiler)):
        x = L.ones(4, 3, dtype=L.float64)
        w = L.ones(3, 2, dtype=L.float64, requires_grad=True)
        with prof_mod.profile() as prof:
            _model(L, x, w).backward()
        tables[L.__name__] = prof.key_averages().table(sort_by="self_cpu_time_total",
                                                       row_limit=5)
    mine, theirs = tables["tapegrad"].splitlines(), tables["torch"].splitlines()
    header = [re.split(r"\s{2,}", t[1].strip()) for t in (mine, theirs)]
    assert header[0] == header[1]
    for t in (mine, theirs):     # separator, header, separator, rows, separator, total
        assert t[0] == t[2] == t[-2] and set(t[0]) == {"-", " "}
        assert [len(c) for c in t[0].split()][1:] == [12] * 6
        assert re.fullmatch(r"Self CPU time total: \d+\.\d{3}(us|ms|s)", t[-1])
        assert len(t) - 5 <= 5
    rows = _rows(tables["tapegrad"])
    selfs = [float(r[0].rstrip("%")) for r in rows.values()]
    assert selfs == sorted(selfs, reverse=True)


def test_percentages_add_up_and_sorting_by_count():
    x = tg.ones(4, 3, dtype=tg.float64)
    w = tg.ones(3, 2, dtype=tg.float64, requires_grad=True)
    with profiler.profile() as prof:
        for _ in range(4):
            (x @ w).sum()
    table = prof.key_averages().table(sort_by="count")
    rows = _rows(table)
    assert abs(sum(float(r[0].rstrip("%")) for r in rows.values()) - 100.0) < 0.05
    counts = [int(r[-1]) for r in rows.values()]
    assert counts == sorted(counts, reverse=True) and counts[0] == 4
    assert str(prof).splitlines()[1] == table.splitlines()[1]      # print(prof): one row a call
    with pytest.raises(AttributeError):
        prof.key_averages().table(sort_by="no_such_column")


def test_record_shapes_groups_by_input_shape():
    with profiler.profile(record_shapes=True) as prof:
        tg.ones(2, 3) * 2
        tg.ones(5) * 2
        tg.ones(5) * 3
    grouped = [e for e in prof.key_averages(group_by_input_shape=True)
               if e.key == "tapegrad::mul"]
    assert sorted((str(e.input_shapes), e.count) for e in grouped) == \
        [("[[2, 3], []]", 1), ("[[5], []]", 2)]
    assert "Input Shapes" in prof.key_averages(group_by_input_shape=True).table()


def test_other_threads_disabled_profiles_and_nesting():
    seen = []
    with profiler.profile() as prof:
        t = threading.Thread(target=lambda: seen.append((tg.ones(3) * 2).sum().item()))
        t.start()
        t.join()
        with pytest.raises(RuntimeError, match="already running"):
            with profiler.profile():
                pass
    assert seen == [6.0] and prof.function_events == []      # the other thread: not recorded
    with profiler.profile(enabled=False) as off:
        tg.ones(2) * 2
    assert off.function_events == [] and off.key_averages().table() == ""
    with profiler.profile() as again:           # a finished profile leaves room for another
        tg.ones(2) * 2
    assert [e.key for e in again.function_events] == ["tapegrad::ones", "tapegrad::mul"]
