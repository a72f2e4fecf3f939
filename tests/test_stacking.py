"""Shaping and stacking functions (stacking.py): broadcast_to broadcast_tensors
broadcast_shapes atleast_1d/2d/3d hstack vstack row_stack dstack column_stack meshgrid
cartesian_prod reshape_as unflatten tensor_split hsplit vsplit dsplit take_along_dim msort,
and the view ``diagonal`` (views.py).

Each moves elements without arithmetic, so its gradient is the adjoint of an index map:
the probe scattered back to where each output element came from. Values are checked
against NumPy's own functions on the positions (np.arange) of the inputs' elements,
gradients against that scatter, and both, with node names and errors, against PyTorch
where it is installed.
"""
import warnings

import numpy as np
import pytest

import tapegrad as tg

F64 = tg.float64
A = np.arange(12.0).reshape(3, 4)           # positions 0..11
B = np.arange(12.0, 24.0).reshape(3, 4)     # positions 12..23
V = np.arange(24.0, 28.0)                   # a 1-D input, positions 24..27
S = np.array(28.0)                          # a 0-d input, position 28
INPUTS = {"A": A, "B": B, "V": V, "S": S}
SIZE = 29


def _outs(r):
    return list(r) if isinstance(r, (tuple, list)) else [r]


# (name, the inputs used, the call on tg or torch (module L), NumPy's on the positions)
CASES = [
    ("broadcast_to", "V", lambda L, v: L.broadcast_to(v, (2, 4)),
     lambda v: np.broadcast_to(v, (2, 4))),
    ("broadcast_to-method", "A", lambda L, a: a[:, :1].broadcast_to((3, 5)),
     lambda a: np.broadcast_to(a[:, :1], (3, 5))),
    ("broadcast_tensors", "AV", lambda L, a, v: L.broadcast_tensors(a, v),
     lambda a, v: np.broadcast_arrays(a, v)),
    ("broadcast_tensors-col", "VS", lambda L, v, s: L.broadcast_tensors(v.reshape(4, 1), s),
     lambda v, s: np.broadcast_arrays(v.reshape(4, 1), s)),
    ("atleast_1d", "S", lambda L, s: L.atleast_1d(s), np.atleast_1d),
    ("atleast_2d", "V", lambda L, v: L.atleast_2d(v), np.atleast_2d),
    ("atleast_2d-many", "SV", lambda L, s, v: L.atleast_2d(s, v),
     lambda s, v: np.atleast_2d(s, v)),
    ("atleast_3d-1d", "V", lambda L, v: L.atleast_3d(v), np.atleast_3d),
    ("atleast_3d-2d", "A", lambda L, a: L.atleast_3d(a), np.atleast_3d),
    ("atleast_3d-0d", "S", lambda L, s: L.atleast_3d(s), np.atleast_3d),
    ("hstack", "AB", lambda L, a, b: L.hstack([a, b]), lambda a, b: np.hstack([a, b])),
    ("hstack-1d", "VS", lambda L, v, s: L.hstack((v, s)), lambda v, s: np.hstack((v, s))),
    ("vstack", "AV", lambda L, a, v: L.vstack([a, v]), lambda a, v: np.vstack([a, v])),
    ("row_stack", "VV", lambda L, v, w: L.row_stack([v, w]), lambda v, w: np.vstack([v, w])),
    ("dstack", "AB", lambda L, a, b: L.dstack([a, b]), lambda a, b: np.dstack([a, b])),
    ("column_stack", "VA", lambda L, v, a: L.column_stack([v[:3], a, v[1:]]),
     lambda v, a: np.column_stack([v[:3], a, v[1:]])),
    ("meshgrid-ij", "VV", lambda L, v, w: L.meshgrid(v, w[:3], indexing="ij"),
     lambda v, w: np.meshgrid(v, w[:3], indexing="ij")),
    ("meshgrid-xy", "VV", lambda L, v, w: L.meshgrid(v[:2], w[:3], v, indexing="xy"),
     lambda v, w: np.meshgrid(v[:2], w[:3], v, indexing="xy")),
    ("cartesian_prod", "VV", lambda L, v, w: L.cartesian_prod(v[:2], w[:3]),
     lambda v, w: np.stack([g.reshape(-1) for g in np.meshgrid(v[:2], w[:3],
                                                                 indexing="ij")], 1)),
    ("reshape_as", "AB", lambda L, a, b: a.reshape_as(b.t()), lambda a, b: a.reshape(4, 3)),
    ("unflatten", "A", lambda L, a: a.unflatten(1, (2, -1)), lambda a: a.reshape(3, 2, 2)),
    ("tensor_split-sections", "A", lambda L, a: L.tensor_split(a, 3, dim=1),
     lambda a: np.array_split(a, 3, axis=1)),
    ("tensor_split-indices", "A", lambda L, a: a.tensor_split([1, 3], 1),
     lambda a: np.split(a, [1, 3], axis=1)),
    ("tensor_split-unordered", "V", lambda L, v: v.tensor_split([3, 1]),
     lambda v: [v[:3], v[3:1], v[1:]]),
    ("tensor_split-negative", "A", lambda L, a: a.tensor_split([-1], 0),
     lambda a: np.split(a, [-1], axis=0)),
    ("hsplit", "A", lambda L, a: L.hsplit(a, 2), lambda a: np.hsplit(a, 2)),
    ("hsplit-indices", "A", lambda L, a: a.hsplit([1]), lambda a: np.hsplit(a, [1])),
    ("vsplit", "A", lambda L, a: a.vsplit(3), lambda a: np.vsplit(a, 3)),
    ("dsplit", "A", lambda L, a: L.dsplit(a.reshape(1, 3, 4), [2]),
     lambda a: np.dsplit(a.reshape(1, 3, 4), [2])),
    ("take_along_dim", "A", lambda L, a: L.take_along_dim(a, L.tensor([[3], [0], [1]]), 1),
     lambda a: np.take_along_axis(a, np.array([[3], [0], [1]]), 1)),
    ("take_along_dim-broadcast", "A",
     lambda L, a: a.take_along_dim(L.tensor([[2, 0, 0, 1]]), dim=0),
     lambda a: np.take_along_axis(a, np.array([[2, 0, 0, 1]]), 0)),
    ("take_along_dim-flat", "A", lambda L, a: a.take_along_dim(L.tensor([5, 5, 0])),
     lambda a: a.reshape(-1)[[5, 5, 0]]),
    ("msort", "A", lambda L, a: L.msort(a.flip(0)), lambda a: np.sort(a[::-1], 0)),
]
IDS = [c[0] for c in CASES]
# composed nodes README's Differences lists: sort is a gather (so msort shows it)
KNOWN_NODES = {"SortBackward0": "GatherBackward0"}


def _run(L, names, fn, values, dtype):
    """(leaves, outputs) of fn on leaves made from ``values`` (positions shifted by 0.5,
    so that none is zero)."""
    leaves = [L.tensor(values[n], dtype=dtype, requires_grad=True) for n in names]
    return leaves, _outs(fn(L, *leaves))


def _probes(outs):
    rng = np.random.default_rng(5)
    return [rng.normal(size=tuple(o.shape)) for o in outs]


@pytest.mark.parametrize("name, names, fn, np_fn", CASES, ids=IDS)
def test_values_and_the_adjoint_of_the_index_map(name, names, fn, np_fn):
    leaves, outs = _run(tg, names, fn, INPUTS, F64)
    positions = [np.asarray(p) for p in _outs(np_fn(*[INPUTS[n] for n in names]))]
    assert len(outs) == len(positions)
    for o, p in zip(outs, positions):
        assert tuple(o.shape) == p.shape
        assert np.array_equal(o.detach().numpy(), p)
    probes = _probes(outs)
    loss = sum(((o * tg.tensor(w, dtype=F64)).sum() for o, w in zip(outs, probes)),
               tg.tensor(0.0, dtype=F64))
    loss.backward()
    expected = np.zeros(SIZE)                        # the probes scattered to the positions
    for p, w in zip(positions, probes):
        np.add.at(expected, p.reshape(-1).astype(int), w.reshape(-1))
    for n, leaf in zip(names, leaves):
        pos = INPUTS[n].astype(int)
        want = expected[pos]
        if names.count(n) > 1:                      # the same values used twice: one leaf each
            continue
        got = np.zeros(pos.shape) if leaf.grad is None else leaf.grad.numpy()
        assert np.allclose(got, want, rtol=0, atol=1e-12), n


@pytest.mark.parametrize("name, names, fn, np_fn", CASES, ids=IDS)
def test_against_pytorch(name, names, fn, np_fn):
    torch = pytest.importorskip("torch")
    for dt, tdt in ((tg.float64, torch.float64), (tg.float32, torch.float32)):
        values = {k: v + 0.5 for k, v in INPUTS.items()}
        leaves, outs = _run(tg, names, fn, values, dt)
        t_leaves, t_outs = _run(torch, names, fn, values, tdt)
        assert len(outs) == len(t_outs)
        for o, t in zip(outs, t_outs):
            assert tuple(o.shape) == tuple(t.shape)
            assert np.array_equal(o.detach().numpy(), t.detach().numpy())
            tname = None if t.grad_fn is None else type(t.grad_fn).__name__
            tname = KNOWN_NODES.get(tname, tname)
            gname = None if o.grad_fn is None else o.grad_fn.name()
            assert gname == tname
            assert (o is leaves[0]) == (t is t_leaves[0])     # returned as it is, or not
        probes = _probes(outs)
        for lib, os_, ls in ((tg, outs, leaves), (torch, t_outs, t_leaves)):
            total = sum((o * lib.tensor(w, dtype=os_[0].dtype)).sum()
                        for o, w in zip(os_, probes))
            total.backward()
        for g, t in zip(leaves, t_leaves):
            if t.grad is None:
                assert g.grad is None
            else:
                assert np.allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_broadcast_shapes_and_its_error():
    assert tg.broadcast_shapes((2, 1), (3,), 1) == tg.Size([2, 3])
    assert tg.broadcast_shapes() == tg.Size([])
    with pytest.raises(RuntimeError, match="must match"):
        tg.broadcast_shapes((2,), (3,))


def test_broadcast_tensors_returns_a_tensor_already_of_the_shape_itself():
    a = tg.ones(2, 3, requires_grad=True)
    b = tg.ones(3, requires_grad=True)
    x, y = tg.broadcast_tensors(a, b)
    assert x is a
    assert y.grad_fn.name() == "ExpandBackward0" and tuple(y.shape) == (2, 3)


def test_atleast_keeps_a_tensor_with_enough_dims_and_answers_a_list_with_a_tuple():
    a = tg.ones(2, 3)
    assert tg.atleast_2d(a) is a and tg.atleast_1d(a) is a
    out = tg.atleast_1d([tg.tensor(1.0), a])
    assert isinstance(out, tuple) and tuple(out[0].shape) == (1,) and out[1] is a


def test_meshgrid_without_indexing_warns_and_indexes_ij():
    v = tg.arange(3.0)
    with pytest.warns(UserWarning, match="indexing argument"):
        x, y = tg.meshgrid(v, v[:2])
    assert tuple(x.shape) == (3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.meshgrid(v, v, indexing="ij")


def test_tensor_split_by_a_tensor_of_indices_or_sections():
    a = tg.arange(10.0)
    assert [p.tolist() for p in a.tensor_split(tg.tensor(3))] == \
        [p.tolist() for p in a.tensor_split(3)]
    assert [len(p) for p in a.tensor_split(tg.tensor([2, 7]))] == [2, 5, 3]


ERRORS = [
    ("hsplit-not-divisible", lambda L: L.hsplit(L.ones(2, 3), 2)),
    ("vsplit-1d", lambda L: L.vsplit(L.ones(4), 2)),
    ("dsplit-2d", lambda L: L.dsplit(L.ones(2, 2), 2)),
    ("tensor_split-0d", lambda L: L.tensor_split(L.tensor(1.0), 2)),
    ("tensor_split-0-sections", lambda L: L.ones(4).tensor_split(0)),
    ("unflatten-bad-sizes", lambda L: L.ones(2, 6).unflatten(1, (4, 2))),
    ("take_along_dim-ndim", lambda L: L.ones(2, 3).take_along_dim(L.tensor([0]), 1)),
    ("meshgrid-2d", lambda L: L.meshgrid(L.ones(2, 2), indexing="ij")),
    ("meshgrid-indexing", lambda L: L.meshgrid(L.ones(2), indexing="ji")),
    ("broadcast_to-bad", lambda L: L.broadcast_to(L.ones(3), (2, 4))),
    ("hstack-tensor", lambda L: L.hstack(L.ones(3))),
]


@pytest.mark.parametrize("name, call", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_pytorchs(name, call):
    with pytest.raises(Exception) as ours:
        call(tg)
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception) as theirs:
        call(torch)
    assert type(ours.value) is type(theirs.value)
    # (PyTorch prints the offending tensor in its C++ form after "got:": compared up to it)
    ours, theirs = (str(e.value).split("\n")[0].split("got:  ")[0] for e in (ours, theirs))
    assert ours == theirs


def test_a_compiled_function_of_them_equals_eager():
    def f(a, v):
        parts = tg.hstack([a, a]).tensor_split(3, 1)
        grid = tg.meshgrid(v, v[:2], indexing="xy")[1]
        return (parts[0] * parts[1]).sum() + grid.sum() + tg.column_stack([v, v]).pow(2).sum()
    cf = tg.compile(f)
    rng = np.random.default_rng(2)
    for _ in range(3):
        a0, v0 = rng.normal(size=(3, 4)), rng.normal(size=4)
        outs = []
        for fn in (f, cf):
            a = tg.tensor(a0, dtype=F64, requires_grad=True)
            v = tg.tensor(v0, dtype=F64, requires_grad=True)
            y = fn(a, v)
            y.backward()
            outs.append((y.item(), a.grad.numpy().copy(), v.grad.numpy().copy()))
        assert outs[0][0] == outs[1][0]
        assert np.array_equal(outs[0][1], outs[1][1]) and np.array_equal(outs[0][2], outs[1][2])


DIAGONALS = [((3, 4), ()), ((3, 4), (1,)), ((3, 4), (-2,)), ((2, 3, 4), (1, 2, 0)),
             ((2, 3, 4), (-1, 0, 2)), ((3, 4), (7,)), ((4, 3), (0, 1, 0)), ((2, 3, 4), (0, -1, -2))]


def _diagonal_positions(shape, offset=0, dim1=0, dim2=1):
    """np.diagonal of the positions, its new dim last (as PyTorch's and NumPy's)."""
    return np.diagonal(np.arange(int(np.prod(shape))).reshape(shape), offset, dim1, dim2)


@pytest.mark.parametrize("shape, args", DIAGONALS)
def test_diagonal_is_the_strided_view_of_numpys_diagonal(shape, args):
    pos = _diagonal_positions(shape, *args)
    for transposed in (False, True):            # of a contiguous tensor, and of a view
        base = np.arange(float(np.prod(shape))).reshape(shape)
        x = tg.tensor(base.T.copy() if transposed else base, dtype=F64, requires_grad=True)
        src = x.permute(*reversed(range(len(shape)))) if transposed else x
        d = src.diagonal(*args)
        assert np.array_equal(d.detach().numpy(), pos)
        probe = np.random.default_rng(1).normal(size=pos.shape)
        (d * tg.tensor(probe, dtype=F64)).sum().backward()
        want = np.zeros(base.size)
        np.add.at(want, pos.reshape(-1), probe.reshape(-1))
        got = x.grad.numpy().T if transposed else x.grad.numpy()
        assert np.allclose(got, want.reshape(shape), rtol=0, atol=1e-12)
        assert d.grad_fn.name() == "AsStridedBackward0"     # (PyTorch: DiagonalBackward0)


def test_diagonal_writes_reach_its_base_and_its_grad_matches_pytorchs():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(3).normal(size=(3, 4))
    grads = []
    for L in (tg, torch):
        x = L.tensor(a, dtype=L.float64, requires_grad=True)
        y = x * 1.0
        y.diagonal(1).mul_(3.0)                 # in place through the view: CopySlices
        (y * y).sum().backward()
        grads.append((y.detach().numpy(), x.grad.numpy(), y.grad_fn.name()))
    assert np.array_equal(grads[0][0], grads[1][0])
    assert np.allclose(grads[0][1], grads[1][1], rtol=1e-12, atol=0)
    assert grads[0][2] == grads[1][2] == "torch::autograd::CopySlices"
    z = tg.zeros(3, 3)
    z.diagonal().fill_(2.0)
    assert np.array_equal(z.numpy(), 2.0 * np.eye(3))


@pytest.mark.parametrize("call", [lambda L: L.ones(3).diagonal(),
                                  lambda L: L.ones(2, 3).diagonal(0, 1, 1),
                                  lambda L: L.ones(2, 3).diagonal(0, 0, 5),
                                  lambda L: L.tensor(1.0).diagonal()])
def test_diagonal_errors_are_pytorchs(call):
    with pytest.raises(Exception) as ours:
        call(tg)
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception) as theirs:
        call(torch)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_a_compiled_diagonal_equals_eager():
    def f(x):
        return (x.diagonal(1) * x.diagonal(-1, 1, 0)).sum() + tg.diagonal(x * x).sum()
    cf = tg.compile(f)
    rng = np.random.default_rng(4)
    for _ in range(3):
        a0 = rng.normal(size=(4, 4))
        res = []
        for fn in (f, cf):
            x = tg.tensor(a0, dtype=F64, requires_grad=True)
            y = fn(x)
            y.backward()
            res.append((y.item(), x.grad.numpy().copy()))
        assert res[0][0] == res[1][0] and np.array_equal(res[0][1], res[1][1])
