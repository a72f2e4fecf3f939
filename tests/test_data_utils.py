"""``tg.utils.data``: datasets, samplers, ``default_collate`` and the ``DataLoader``.

Deterministic behaviour (sequential batches, ``len``, collated structures and dtypes,
``random_split``'s lengths, error messages and warnings) is written once against a module
``L`` (``tapegrad`` or ``torch``) and compared between the two. Shuffled orders come from
tapegrad's generators (NumPy's PCG64), so they are checked for what they must be: a
permutation, the same under the same seed (``tg.manual_seed`` or a ``tg.Generator``),
another one under another seed; ``WeightedRandomSampler``'s frequencies are near its
weights. Last, a linear regression trained through a ``DataLoader``: with shuffling to a
known loss, without it to PyTorch's parameters (float64, 1e-10)."""
import collections
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset,
                                 IterableDataset, RandomSampler, SequentialSampler, Subset,
                                 SubsetRandomSampler, TensorDataset,
                                 WeightedRandomSampler, default_collate, default_convert,
                                 random_split)

from nn_twins import raised, same_error

pytestmark = pytest.mark.usefixtures("isolated")

Point = collections.namedtuple("Point", "x y")


def _torch():
    return pytest.importorskip("torch")


def _plain(r):
    """A batch as comparable Python data: each tensor as (dtype name, shape, values), each
    container with its type (a tuple stays a tuple, a namedtuple keeps its fields)."""
    if hasattr(r, "detach"):
        return ("tensor", str(r.dtype).split(".")[-1], tuple(r.shape), r.detach().numpy().tolist())
    if isinstance(r, dict):
        return ("dict", {k: _plain(v) for k, v in r.items()})
    if isinstance(r, tuple) and hasattr(r, "_fields"):
        return (type(r).__name__, r._fields, [_plain(v) for v in r])
    if isinstance(r, (list, tuple)):
        return (type(r).__name__, [_plain(v) for v in r])
    if isinstance(r, np.ndarray):
        return ("ndarray", r.dtype.str, r.tolist())
    return r


def same(case):
    """case(L) gives the same batches with L = tapegrad and L = torch; returns tapegrad's."""
    torch = _torch()
    mine = case(tg)
    assert _plain(mine) == _plain(case(torch))
    return mine


# ----- datasets used by the cases (each takes the library, to build its tensors) -------------
class Squares:
    """A map-style dataset that is not a Dataset subclass (PyTorch takes any __getitem__)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i


def _records(L, n=7):
    class Records(L.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            return {"id": i, "x": np.full(2, i, np.float32), "w": 0.5 * i,
                    "pair": (i, L.tensor([i, -i])), "name": f"s{i}"}
    return Records()


def _stream(L, n=10, length=None):
    class Stream(L.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(n))
    if length is not None:
        Stream.__len__ = lambda self: length
    return Stream()


def _xy(L, n=10):
    x = L.arange(2 * n, dtype=L.float64).reshape(n, 2)
    return L.utils.data.TensorDataset(x, L.arange(n))


# ----- sequential batching, against PyTorch --------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 11])
@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_dataset_batches_and_len_as_torch(batch_size, drop_last):
    def case(L):
        loader = L.utils.data.DataLoader(_xy(L), batch_size=batch_size, drop_last=drop_last)
        return [len(loader), list(loader)]
    got = same(case)
    n_full, rest = divmod(10, batch_size)
    assert got[0] == n_full + (rest > 0 and not drop_last)
    assert len(got[1]) == got[0]


def test_batches_hold_the_rows_in_order():
    x = tg.arange(20, dtype=tg.float64).reshape(10, 2)
    y = tg.arange(10)
    batches = list(DataLoader(TensorDataset(x, y), batch_size=4))
    assert [tuple(b[0].shape) for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[2][0].tolist() == [[16.0, 17.0], [18.0, 19.0]]
    assert isinstance(batches[0], list) and batches[0][0].dtype is tg.float64
    assert batches[0][1].dtype is tg.int64
    assert len(list(DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True))) == 2


def test_default_batch_size_is_one_and_none_disables_batching():
    def case(L):
        ds = _xy(L, 3)
        return [list(L.utils.data.DataLoader(ds)),
                list(L.utils.data.DataLoader(ds, batch_size=None)),
                len(L.utils.data.DataLoader(ds, batch_size=None))]
    got = same(case)
    assert got[0][1][0].shape == (1, 2)          # a batch of one row
    assert got[1][1][0].shape == (2,)            # no batching: the row itself
    assert got[2] == 3


def test_dict_records_collate_as_torch():
    def case(L):
        return list(L.utils.data.DataLoader(_records(L), batch_size=3))
    got = same(case)
    first = got[0]
    assert first["id"].dtype is tg.int64 and first["x"].dtype is tg.float32
    assert first["w"].dtype is tg.float64 and first["name"] == ["s0", "s1", "s2"]
    assert isinstance(first["pair"], list)      # a tuple collates to a list, as PyTorch's
    assert first["pair"][1].tolist() == [[0, 0], [1, -1], [2, -2]]
    assert [len(b["id"]) for b in got] == [3, 3, 1]


def test_plain_sequence_dataset_and_batch_size_none_as_torch():
    same(lambda L: [list(L.utils.data.DataLoader(Squares(5), batch_size=2)),
                    list(L.utils.data.DataLoader(Squares(3), batch_size=None)),
                    list(L.utils.data.DataLoader(_records(L, 2), batch_size=None))])


def test_collate_fn_and_batch_sampler_as_torch():
    def case(L):
        D = L.utils.data
        ds = _xy(L, 6)
        a = list(D.DataLoader(ds, batch_size=4, collate_fn=lambda b: [len(b), b[0][1]]))
        bs = D.BatchSampler(D.SequentialSampler(range(6)), batch_size=4, drop_last=False)
        b = D.DataLoader(ds, batch_sampler=bs)
        c = D.DataLoader(ds, batch_sampler=[[5, 0], [2]])
        return [a, len(b), list(b), list(c)]
    got = same(case)
    assert got[0][0][0] == 4 and got[0][1][0] == 2 and got[1] == 2
    assert got[3][0][1].tolist() == [5, 0] and got[3][1][1].tolist() == [2]


def test_sampler_option_sets_the_order():
    def case(L):
        D = L.utils.data
        return [list(D.DataLoader(_xy(L, 5), batch_size=2, sampler=[4, 0, 3])),
                len(D.DataLoader(_xy(L, 5), batch_size=2, sampler=[4, 0, 3]))]
    got = same(case)
    assert got[0][0][1].tolist() == [4, 0] and got[0][1][1].tolist() == [3] and got[1] == 2


# ----- iterable-style datasets ---------------------------------------------------------------
@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (5, True), (None, False)])
def test_iterable_dataset_batches_as_torch(batch_size, drop_last):
    def case(L):
        loader = L.utils.data.DataLoader(_stream(L, 10, length=10), batch_size=batch_size,
                                         drop_last=drop_last)
        return [len(loader), list(loader)]
    got = same(case)
    if batch_size == 3:
        sizes = [len(b) for b in got[1]]
        assert sizes == ([3, 3, 3] if drop_last else [3, 3, 3, 1])
        assert got[0] == len(sizes)


def test_iterable_dataset_contents():
    class Stream(IterableDataset):
        def __iter__(self):
            yield from ({"v": float(i), "k": i} for i in range(5))
    batches = list(DataLoader(Stream(), batch_size=2))
    assert [b["k"].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert batches[0]["v"].dtype is tg.float64 and batches[0]["k"].dtype is tg.int64


def test_iterable_dataset_length_warning_as_torch():
    def case(L):
        loader = L.utils.data.DataLoader(_stream(L, 4, length=2), batch_size=None)
        len(loader)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            list(loader)
        return sorted({str(x.message).split(" was reported ")[1] for x in w})
    got = same(case)
    assert got == ["to be 2(when accessing len(dataloader)), but 3 samples have been fetched. ",
                   "to be 2(when accessing len(dataloader)), but 4 samples have been fetched. "]


def test_iterable_dataset_without_iter_cannot_be_made_as_torch():
    torch = _torch()
    same_error(lambda L: type("NoIter", (L.utils.data.IterableDataset,), {})(), torch,
               normalize=lambda m: m.split(" with")[0])


@pytest.mark.parametrize("kw", [{"shuffle": True}, {"sampler": [0, 1]},
                                {"batch_sampler": [[0, 1]]}])
def test_iterable_dataset_refuses_samplers_as_torch(kw):
    torch = _torch()
    same_error(lambda L: L.utils.data.DataLoader(_stream(L), **kw), torch)
    assert "DataLoader with IterableDataset: expected unspecified" in raised(
        lambda: DataLoader(_stream(tg), **kw))[1]


# ----- the DataLoader's errors, in PyTorch's words -------------------------------------------
MUTUALLY_EXCLUSIVE = ("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                      "sampler, and drop_last")


@pytest.mark.parametrize("kw, words", [
    ({"batch_sampler": [[0]], "batch_size": 2}, MUTUALLY_EXCLUSIVE),
    ({"batch_sampler": [[0]], "shuffle": True}, MUTUALLY_EXCLUSIVE),
    ({"batch_sampler": [[0]], "sampler": [0]}, MUTUALLY_EXCLUSIVE),
    ({"batch_sampler": [[0]], "drop_last": True}, MUTUALLY_EXCLUSIVE),
    ({"sampler": [0], "shuffle": True}, "sampler option is mutually exclusive with shuffle"),
    ({"batch_size": None, "drop_last": True},
     "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"),
    ({"num_workers": -1},
     "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."),
    ({"timeout": -1}, "timeout option should be non-negative"),
    ({"prefetch_factor": 2}, "prefetch_factor option could only be specified in "
     "multiprocessing.let num_workers > 0 to enable multiprocessing, otherwise set "
     "prefetch_factor to None."),
    ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
    ({"multiprocessing_context": "fork"}, "multiprocessing_context can only be used with "
     "multi-process loading (num_workers > 0), but got num_workers=0"),
    ({"batch_size": 0}, "batch_size should be a positive integer value, but got batch_size=0"),
    ({"drop_last": 1}, "drop_last should be a boolean value, but got drop_last=1"),
])
def test_dataloader_errors_in_torch_words(kw, words):
    assert raised(lambda: DataLoader(_xy(tg), **kw)) == ("ValueError", words)
    same_error(lambda L: L.utils.data.DataLoader(_xy(L), **kw), _torch())


def test_attributes_fixed_after_init_as_torch():
    def case(L):
        L.utils.data.DataLoader(_xy(L)).batch_size = 3
    assert raised(lambda: case(tg)) == (
        "ValueError", "batch_size attribute should not be set after DataLoader is initialized")
    same_error(case, _torch())
    loader = DataLoader(_xy(tg))
    loader.collate_fn = default_convert          # the others may change, as in PyTorch
    assert loader.collate_fn is default_convert


@pytest.mark.parametrize("case", [
    lambda L: L.utils.data.TensorDataset(L.zeros(3), L.zeros(4)),
    lambda L: L.utils.data.ConcatDataset([]),
    lambda L: L.utils.data.ConcatDataset([_stream(L)]),
    lambda L: L.utils.data.ConcatDataset([range(3)])[-4],
    lambda L: L.utils.data.Dataset()[0],
    lambda L: list(L.utils.data.ChainDataset([range(3)])),
    lambda L: L.utils.data.StackDataset(range(3), range(4)),
    lambda L: L.utils.data.StackDataset(),
    lambda L: L.utils.data.StackDataset(range(3), b=range(3)),
    lambda L: L.utils.data.random_split(range(10), [3, 3]),
    lambda L: L.utils.data.random_split(range(10), [1.5, -0.5]),
    lambda L: L.utils.data.RandomSampler(range(3), replacement=1),
    lambda L: L.utils.data.RandomSampler(range(3), num_samples=0),
    lambda L: L.utils.data.RandomSampler(range(0)),
    lambda L: L.utils.data.WeightedRandomSampler([1.0, 2.0], 0),
    lambda L: L.utils.data.WeightedRandomSampler([1.0, 2.0], True),
    lambda L: L.utils.data.WeightedRandomSampler([1.0, 2.0], 2, replacement=None),
    lambda L: L.utils.data.WeightedRandomSampler([[1.0, 2.0]], 2),
    lambda L: list(L.utils.data.WeightedRandomSampler([1.0, -2.0], 2)),
    lambda L: list(L.utils.data.WeightedRandomSampler([1.0, float("nan")], 2)),
    lambda L: list(L.utils.data.WeightedRandomSampler([0.0, 0.0], 2)),
    lambda L: list(L.utils.data.WeightedRandomSampler([1.0, 2.0], 3, replacement=False)),
    lambda L: L.utils.data.BatchSampler(range(3), 1.5, False),
    lambda L: len(L.utils.data.DataLoader(_stream(L))),
    lambda L: L.utils.data.default_collate([object()]),
    lambda L: L.utils.data.default_collate([[1, 2], [3]]),
    lambda L: L.utils.data.default_collate([np.array(["a"]), np.array(["b"])]),
])
def test_dataset_and_sampler_errors_as_torch(case):
    same_error(case, _torch())


def test_subset_subclass_must_override_getitems_as_torch():
    def case(L):
        class Doubled(L.utils.data.Subset):
            def __getitem__(self, i):
                return 2 * super().__getitem__(i)
        return Doubled(range(5), [1, 2])
    same_error(case, _torch())


# ----- collate and convert, against PyTorch --------------------------------------------------
COLLATE_CASES = [
    [0, 1, 2],
    [0.5, 1.5],
    [True, False],
    [1, 2.5],
    ["a", "b"],
    [b"a", b"b"],
    [(0, 1.5), (2, 3.5)],
    [[0, 1], [2, 3]],
    [{"A": 0, "B": 1.0}, {"A": 100, "B": 100.0}],
    [Point(0, 0.5), Point(1, 1.5)],
    [Point(np.array([1, 2], np.int32), True), Point(np.array([3, 4], np.int32), False)],
    [np.array([1.0, 2.0]), np.array([3.0, 4.0])],
    [np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)],
    [np.array([[1, 2]], np.uint8), np.array([[3, 4]], np.uint8)],
    [np.array(7, np.int16), np.array(8, np.int16)],
    [np.float32(1.5), np.float32(2.5)],
    [np.int32(1), np.int32(2)],
    [np.float64(1.5), np.float64(2.5)],
    [np.bool_(True), np.bool_(False)],
    [{"k": [(1, "x"), (2, "y")]}, {"k": [(3, "z"), (4, "w")]}],
    [collections.OrderedDict(b=1, a=2), collections.OrderedDict(b=3, a=4)],
]


@pytest.mark.parametrize("batch", COLLATE_CASES, ids=lambda b: type(b[0]).__name__)
def test_default_collate_as_torch(batch):
    same(lambda L: L.utils.data.default_collate(batch))


@pytest.mark.parametrize("data", [
    3, 2.5, "s", np.array([1, 2]), np.array([1.0], np.float32), np.float64(2.0), np.int64(3),
    (np.array([1.0]), 3), [np.array([1]), "x"], {"a": np.array([1, 2]), "b": 1},
    Point(np.array(0), 1), np.array(["a", "b"]),
])
def test_default_convert_as_torch(data):
    same(lambda L: L.utils.data.default_convert(data))


def test_collate_dtypes():
    assert default_collate([1.0, 2.0]).dtype is tg.float64       # not the default float32
    assert default_collate([1, 2]).dtype is tg.int64
    assert default_collate([True, False]).dtype is tg.bool
    assert default_collate([np.array([1], np.int32)] * 2).dtype is tg.int32
    assert default_collate([np.float32(1.0)] * 2).dtype is tg.float32
    t = default_collate([tg.ones(2, 3), tg.zeros(2, 3)])
    assert t.shape == (2, 2, 3) and t.dtype is tg.float32
    assert t.sum().item() == 6.0
    assert default_collate([Point(1, 2.0)] * 2).y.dtype is tg.float64
    assert isinstance(default_collate([(1, 2)] * 2), list)
    assert default_convert(np.float64(2.5)).dtype is tg.float64


def test_collate_stacks_with_the_graph():
    a, b = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)
    batch = default_collate([a, b])
    (batch * tg.tensor([[1.0], [10.0]])).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0] and b.grad.tolist() == [10.0, 10.0]


def test_default_convert_shares_numpy_memory():
    a = np.array([1.0, 2.0])
    t = default_convert(a)
    a[0] = 5.0
    assert t.tolist() == [5.0, 2.0]


# ----- samplers ------------------------------------------------------------------------------
def test_sequential_and_batch_samplers_as_torch():
    def case(L):
        D = L.utils.data
        seq = D.SequentialSampler(range(7))
        return [list(seq), len(seq)] + [
            [list(D.BatchSampler(seq, b, d)), len(D.BatchSampler(seq, b, d))]
            for b in (1, 2, 3, 7, 8) for d in (False, True)]
    got = same(case)
    assert got[:2] == [list(range(7)), 7]
    assert got[6] == [[[0, 1, 2], [3, 4, 5], [6]], 3]
    assert got[7] == [[[0, 1, 2], [3, 4, 5]], 2]


def test_batch_sampler_contents():
    assert list(BatchSampler(SequentialSampler(range(10)), 3, False)) == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert list(BatchSampler(SequentialSampler(range(10)), 3, True)) == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(BatchSampler(range(10), 3, True)) == 3
    assert len(BatchSampler(range(10), 3, False)) == 4


def test_random_sampler_is_a_permutation_each_pass():
    tg.manual_seed(0)
    s = RandomSampler(range(50))
    first, second = list(s), list(s)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != second and first != list(range(50))
    assert len(s) == 50


def test_random_sampler_num_samples_and_replacement():
    g = tg.Generator().manual_seed(1)
    s = RandomSampler(range(4), num_samples=10, generator=g)
    drawn = list(s)
    assert len(drawn) == 10 == len(s)
    assert sorted(drawn[:4]) == sorted(drawn[4:8]) == [0, 1, 2, 3]    # whole permutations first
    assert len(set(drawn[8:])) == 2
    r = list(RandomSampler(range(5), replacement=True, num_samples=1000, generator=g))
    assert len(r) == 1000 and set(r) == {0, 1, 2, 3, 4}               # with repeats
    counts = np.bincount(r, minlength=5) / 1000
    assert np.all(np.abs(counts - 0.2) < 0.05)


def test_subset_random_sampler():
    tg.manual_seed(3)
    idx = [10, 20, 30, 40, 50, 60]
    s = SubsetRandomSampler(idx)
    got = list(s)
    assert sorted(got) == idx and len(s) == 6
    tg.manual_seed(3)
    assert list(s) == got
    g1, g2 = tg.Generator().manual_seed(9), tg.Generator().manual_seed(9)
    assert list(SubsetRandomSampler(idx, g1)) == list(SubsetRandomSampler(idx, g2))


def test_weighted_random_sampler_frequencies():
    weights = [1.0, 2.0, 3.0, 4.0, 0.0]
    g = tg.Generator().manual_seed(2024)
    s = WeightedRandomSampler(weights, 40000, generator=g)
    drawn = list(s)
    assert len(drawn) == 40000 == len(s)
    freq = np.bincount(drawn, minlength=5) / 40000
    np.testing.assert_allclose(freq, np.array(weights) / 10.0, atol=0.01)
    assert freq[4] == 0.0                                       # weight 0: never drawn
    assert s.weights.dtype is tg.float64


def test_weighted_random_sampler_without_replacement():
    g = tg.Generator().manual_seed(7)
    weights = [1.0, 2.0, 3.0, 4.0, 0.0]
    firsts = []
    for _ in range(4000):
        drawn = list(WeightedRandomSampler(weights, 5, replacement=False, generator=g))
        assert sorted(drawn) == [0, 1, 2, 3, 4] and drawn[-1] == 4   # weight 0 comes last
        firsts.append(drawn[0])
    freq = np.bincount(firsts, minlength=5) / 4000               # the first draw ~ weights
    np.testing.assert_allclose(freq, np.array(weights) / 10.0, atol=0.03)
    # PyTorch draws zero weights once the others are used up, rather than refusing
    assert sorted(WeightedRandomSampler([1.0, 0.0], 2, replacement=False)) == [0, 1]


def test_sampler_subclass_as_torch():
    def case(L):
        class Evens(L.utils.data.Sampler[int]):
            def __init__(self, n):
                self.n = n

            def __iter__(self):
                return iter(range(0, self.n, 2))

            def __len__(self):
                return (self.n + 1) // 2
        loader = L.utils.data.DataLoader(_xy(L, 7), batch_size=3, sampler=Evens(7))
        return [len(loader), list(loader)]
    same(case)


# ----- randomness: tg.manual_seed and tg.Generator -------------------------------------------
def _order(loader):
    return [i for batch in loader for i in batch[1].tolist()]


def test_shuffle_follows_manual_seed():
    ds = TensorDataset(tg.zeros(40, 1), tg.arange(40))
    loader = DataLoader(ds, batch_size=8, shuffle=True)
    tg.manual_seed(5)
    a, a2 = _order(loader), _order(loader)
    tg.manual_seed(5)
    b, b2 = _order(loader), _order(loader)
    tg.manual_seed(6)
    c = _order(loader)
    assert sorted(a) == list(range(40)) and a != list(range(40))
    assert (a, a2) == (b, b2)                   # same seed, same epochs
    assert a != a2 and a != c                   # reshuffled each epoch; another seed, another order
    assert len(loader) == 5


def test_shuffle_with_a_generator_ignores_the_global_seed():
    ds = TensorDataset(tg.zeros(30, 1), tg.arange(30))
    orders = []
    for global_seed in (1, 2):
        tg.manual_seed(global_seed)
        g = tg.Generator().manual_seed(42)
        loader = DataLoader(ds, batch_size=4, shuffle=True, generator=g)
        orders.append((_order(loader), _order(loader)))
    assert orders[0] == orders[1] and orders[0][0] != orders[0][1]
    g = tg.Generator().manual_seed(43)
    assert _order(DataLoader(ds, batch_size=4, shuffle=True, generator=g)) != orders[0][0]


def test_generator_as_torch():
    torch = _torch()
    assert tg.Generator().initial_seed() == torch.Generator().initial_seed() == 67280421310721
    for seed in (0, 7, -1, -2**63, 2**64 - 1, True, np.int64(5)):
        g = tg.Generator()
        assert g.manual_seed(seed) is g
        assert g.initial_seed() == torch.Generator().manual_seed(int(seed)).initial_seed()
    for seed in (1.5, 2**64, -2**63 - 1, "3"):
        same_error(lambda L: L.Generator().manual_seed(seed), torch)
    g = tg.Generator()
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s
    assert g.device == tg.device("cpu")


def test_randperm_generator():
    g1, g2 = tg.Generator().manual_seed(11), tg.Generator().manual_seed(11)
    a, b = tg.randperm(20, generator=g1), tg.randperm(20, generator=g2)
    assert a.tolist() == b.tolist() and sorted(a.tolist()) == list(range(20))
    assert a.dtype is tg.int64
    assert tg.randperm(20, generator=g1).tolist() != a.tolist()      # the stream moves on
    tg.manual_seed(4)
    c = tg.randperm(20).tolist()
    tg.manual_seed(4)
    assert tg.randperm(20, generator=None).tolist() == c
    with pytest.raises(TypeError, match="randperm"):
        tg.randperm(3, generator=5)


# ----- random_split --------------------------------------------------------------------------
@pytest.mark.parametrize("n, lengths", [
    (10, [3, 7]), (10, [0.3, 0.7]), (10, [0.25, 0.25, 0.5]), (11, [0.5, 0.5]),
    (7, [0.1, 0.2, 0.3, 0.4]), (30, [0.3, 0.3, 0.4]), (5, [1 / 3, 1 / 3, 1 / 3]),
    (3, [0.1, 0.1, 0.8]), (100, [0.8, 0.1, 0.1]), (1, [0.5, 0.5]),
])
def test_random_split_sizes_as_torch(n, lengths):
    torch = _torch()

    def sizes(L):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            parts = L.utils.data.random_split(range(n), lengths)
        return [len(p) for p in parts], [str(x.message) for x in w]
    mine = sizes(tg)
    assert mine == sizes(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = random_split(range(n), lengths)
    everything = [i for p in parts for i in p]
    assert sorted(everything) == list(range(n))                  # disjoint, and all of them
    assert all(isinstance(p, Subset) for p in parts)


def test_random_split_remainder_goes_round_robin():
    parts = random_split(range(11), [0.3, 0.3, 0.4])             # floors 3, 3, 4; remainder 1
    assert [len(p) for p in parts] == [4, 3, 4]
    parts = random_split(range(7), [0.25, 0.25, 0.25, 0.25])     # floors 1 each; remainder 3
    assert [len(p) for p in parts] == [2, 2, 2, 1]


def test_random_split_is_reproducible():
    g1, g2 = tg.Generator().manual_seed(42), tg.Generator().manual_seed(42)
    a = [p.indices for p in random_split(range(20), [5, 15], generator=g1)]
    assert a == [p.indices for p in random_split(range(20), [5, 15], generator=g2)]
    tg.manual_seed(8)
    b = [p.indices for p in random_split(range(20), [0.5, 0.5])]
    tg.manual_seed(8)
    assert b == [p.indices for p in random_split(range(20), [0.5, 0.5])]
    assert b[0] != list(range(10))
    ds = TensorDataset(tg.arange(20))
    train, test = random_split(ds, [15, 5], generator=tg.Generator().manual_seed(1))
    assert train[0][0].item() == train.indices[0]


# ----- the other datasets, against PyTorch ---------------------------------------------------
def test_concat_subset_stack_chain_as_torch():
    def case(L):
        D = L.utils.data
        xy = _xy(L, 4)
        cat = xy + D.TensorDataset(L.arange(-4.0, 0.0, dtype=L.float64).reshape(2, 2),
                                   L.tensor([-1, -2]))
        sub = D.Subset(cat, [5, 0, 4])
        st = D.StackDataset(range(3), Squares(3))
        sd = D.StackDataset(a=range(3), b=Squares(3))
        chain = _stream(L, 3) + _stream(L, 2)
        return [len(cat), cat.cumulative_sizes, [cat[i] for i in range(-6, 6)], len(sub),
                [sub[i] for i in range(3)], sub.__getitems__([0, 2]),
                list(D.DataLoader(sub, batch_size=2)), [st[i] for i in range(3)],
                st.__getitems__([2, 0]), sd[1], sd.__getitems__([0]),
                list(D.DataLoader(sd, batch_size=3)), list(chain),
                len(_stream(L, 3, 3) + _stream(L, 2, 2)),
                type(chain).__name__, type(cat).__name__]
    got = same(case)
    assert got[0] == 6 and got[1] == [4, 6] and got[-2:] == ["ChainDataset", "ConcatDataset"]
    assert got[12] == [0, 1, 2, 0, 1] and got[13] == 5


def test_subset_reads_batches_through_getitems():
    class Counting(Dataset):
        def __init__(self):
            self.batched = 0

        def __getitem__(self, i):
            return i

        def __getitems__(self, idx):
            self.batched += 1
            return [10 * i for i in idx]

        def __len__(self):
            return 6
    base = Counting()
    batches = list(DataLoader(Subset(base, [5, 3, 1]), batch_size=2))
    assert [b.tolist() for b in batches] == [[50, 30], [10]] and base.batched == 2


def test_datasets_take_type_parameters_as_torch():
    def case(L):
        D = L.utils.data

        class Ints(D.Dataset[int]):
            def __getitem__(self, i):
                return i

            def __len__(self):
                return 3
        D.Subset[int], D.IterableDataset[str], D.Sampler[list[int]], D.DataLoader[int]
        return list(D.DataLoader(Ints(), batch_size=2))
    assert same(case)[0].tolist() == [0, 1]


def test_concat_dataset_deprecated_name_warns():
    cat = ConcatDataset([range(2), range(3)])
    with pytest.warns(FutureWarning, match="renamed to `cumulative_sizes`"):
        assert cat.cummulative_sizes == [2, 5]


def test_chain_dataset_through_loader():
    class Stream(IterableDataset):
        def __init__(self, a, b):
            self.a, self.b = a, b

        def __iter__(self):
            return iter(range(self.a, self.b))
    loader = DataLoader(ChainDataset([Stream(0, 3), Stream(10, 12)]), batch_size=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 10], [11]]


# ----- workers, pinning, and imports ---------------------------------------------------------
def test_num_workers_loads_in_process_with_a_note():
    ds = _xy(tg, 9)
    with pytest.warns(UserWarning, match=r"num_workers=2\): tapegrad loads data in the main "
                                         r"process; no worker process is started"):
        loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True,
                            prefetch_factor=4, worker_init_fn=lambda i: 1 / 0, timeout=5,
                            multiprocessing_context="spawn")
    assert _plain(list(loader)) == _plain(list(DataLoader(ds, batch_size=4)))
    assert loader.num_workers == 2 and loader.prefetch_factor == 4
    with pytest.warns(UserWarning):
        assert DataLoader(ds, num_workers=1).prefetch_factor == 2   # PyTorch's default


def test_pin_memory_warns_as_torch_without_an_accelerator():
    def case(L):
        loader = L.utils.data.DataLoader(_xy(L, 2), pin_memory=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            batches = list(loader)
        return [batches, [str(x.message) for x in w]]
    got = same(case)
    assert got[1] == ["'pin_memory' argument is set as true but no accelerator is found, "
                         "then device pinned memory won't be used."]


def test_worker_info_is_none_as_in_the_main_process():
    torch = _torch()
    assert tg.utils.data.get_worker_info() is None is torch.utils.data.get_worker_info()


def test_module_paths_as_torch():
    import tapegrad.utils.data.dataloader as dl
    import tapegrad.utils.data.dataset as ds
    import tapegrad.utils.data.sampler as sp
    from tapegrad.utils.data._utils.collate import collate, default_collate_fn_map
    assert dl.DataLoader is DataLoader and dl.default_collate is default_collate
    assert ds.TensorDataset is TensorDataset and sp.RandomSampler is RandomSampler
    assert tg.utils.data.DataLoader is DataLoader
    # extending collate by type, as PyTorch's collate_fn_map
    fn_map = dict(default_collate_fn_map)
    fn_map[str] = lambda batch, *, collate_fn_map: "".join(batch)
    assert collate([("a", 1), ("b", 2)], collate_fn_map=fn_map)[0] == "ab"
    torch = _torch()
    assert sorted(tg.utils.data.__all__) == sorted(
        n for n in torch.utils.data.__all__
        if n not in {"DistributedSampler", "DFIterDataPipe", "DataChunk", "IterDataPipe",
                     "MapDataPipe", "argument_validation", "functional_datapipe",
                     "guaranteed_datapipes_determinism", "non_deterministic",
                     "runtime_validation", "runtime_validation_disabled"})


def test_utils_is_imported_lazily():
    code = ("import sys, tapegrad; assert 'tapegrad.utils' not in sys.modules; "
            "assert tapegrad.utils.data.DataLoader.__name__ == 'DataLoader'; "
            "assert 'tapegrad.utils.data' in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "ok"
    with pytest.raises(AttributeError, match="module 'tapegrad' has no attribute 'nothing'"):
        tg.nothing  # noqa: B018


# ----- end to end: linear regression through a DataLoader ------------------------------------
N, TRUE_W, TRUE_B = 256, [[2.0], [-1.0], [0.5]], 0.3


def _regression_data():
    r = np.random.default_rng(0)
    x = r.standard_normal((N, 3))
    y = x @ np.array(TRUE_W) + TRUE_B + 0.01 * r.standard_normal((N, 1))
    return x, y


def _train(L, x, y, w0, b0, shuffle, epochs, generator=None):
    """The usual PyTorch loop, written once for L = tapegrad or torch."""
    ds = L.utils.data.TensorDataset(L.tensor(x), L.tensor(y))
    loader = L.utils.data.DataLoader(ds, batch_size=16, shuffle=shuffle, generator=generator)
    model = L.nn.Linear(3, 1).double()
    with L.no_grad():
        model.weight.copy_(L.tensor(w0))
        model.bias.copy_(L.tensor(b0))
    opt = L.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    loss_fn = L.nn.MSELoss()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with L.no_grad():
        full = loss_fn(model(L.tensor(x)), L.tensor(y)).item()
    return model, full


def test_linear_regression_with_shuffling_reaches_the_noise_floor():
    x, y = _regression_data()
    tg.manual_seed(0)
    model, loss = _train(tg, x, y, [[0.0, 0.0, 0.0]], [0.0], shuffle=True, epochs=10)
    assert loss < 1.5e-4                   # the noise's variance is 1e-4; at the start, 5.2
    np.testing.assert_allclose(model.weight.detach().numpy(), np.array(TRUE_W).T, atol=0.01)
    assert abs(model.bias.item() - TRUE_B) < 0.01
    tg.manual_seed(0)                      # the same seed: the same shuffles, the same model
    again, loss_again = _train(tg, x, y, [[0.0, 0.0, 0.0]], [0.0], shuffle=True, epochs=10)
    assert loss_again == loss
    assert again.weight.tolist() == model.weight.tolist()


def test_linear_regression_without_shuffling_equals_torch():
    torch = _torch()
    x, y = _regression_data()
    w0, b0 = [[0.1, -0.2, 0.3]], [0.05]
    mine, mine_loss = _train(tg, x, y, w0, b0, shuffle=False, epochs=3)
    theirs, their_loss = _train(torch, x, y, w0, b0, shuffle=False, epochs=3)
    np.testing.assert_allclose(mine.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(mine.bias.detach().numpy(), theirs.bias.detach().numpy(),
                               rtol=1e-10, atol=1e-10)
    assert abs(mine_loss - their_loss) < 1e-10
    assert mine_loss < 1e-3                # and it did learn
