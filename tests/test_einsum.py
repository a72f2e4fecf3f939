"""tg.einsum (einsum.py), diag and addmm (composite.py): values and gradients against
PyTorch in float32 and float64 and against finite differences, edge shapes, PyTorch's
errors, and tg.compile replays against eager calls."""
import numpy as np
import pytest

import tapegrad as tg

# (equation, operand shapes)
EINSUM = {
    "matmul": ("ij,jk->ik", [(3, 4), (4, 5)]),
    "matmul_implicit": ("ij,jk", [(3, 4), (4, 5)]),
    "bmm": ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    "transpose": ("ij->ji", [(3, 4)]),
    "transpose_implicit": ("ji", [(3, 4)]),
    "identity": ("ij->ij", [(3, 4)]),
    "trace": ("ii->", [(4, 4)]),
    "trace_implicit": ("ii", [(4, 4)]),
    "diagonal": ("ii->i", [(4, 4)]),
    "sum_axis": ("ij->i", [(3, 4)]),
    "sum_all": ("ij->", [(3, 4)]),
    "outer": ("i,j->ij", [(3,), (4,)]),
    "dot": ("i,i->", [(5,), (5,)]),
    "dot_implicit": ("i,i", [(5,), (5,)]),
    "mv": ("ij,j->i", [(3, 4), (4,)]),
    "hadamard": ("ij,ij->ij", [(3, 4), (3, 4)]),
    "bilinear": ("bn,anm,bm->ba", [(2, 3), (5, 3, 4), (2, 4)]),
    "batch_outer": ("bi,bj->bij", [(2, 3), (2, 4)]),
    "ellipsis_matmul": ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    "ellipsis_broadcast": ("...ij,jk->...ik", [(2, 2, 3, 4), (4, 5)]),
    "ellipsis_sum": ("...i->i", [(2, 3, 4)]),
    "ellipsis_implicit": ("i...->...", [(3, 2, 4)]),
    "ellipsis_middle": ("a...b,b->a...", [(2, 3, 4, 5), (5,)]),
    "broadcast_size1": ("ij,ij->ij", [(3, 4), (3, 1)]),
    "attention": ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    "mixed_case": ("aB,Bc->ac", [(3, 4), (4, 5)]),
    "upper_first": ("aB", [(3, 4)]),
    "repeated_three": ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
    "three_chain": ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    "sum_then_contract": ("ijk,kl->l", [(2, 3, 4), (4, 5)]),
    "spaces": (" i j , j k -> i k ", [(3, 4), (4, 5)]),
    "empty_dim": ("ij,jk->ik", [(3, 0), (0, 5)]),
    "scalar": (",i->i", [(), (3,)]),
}


def _operands(L, shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [L.tensor(rng.standard_normal(s).round(3), dtype=getattr(L, dtype),
                     requires_grad=True) for s in shapes]


def _run(L, f, ops):
    y = f(L, ops)
    w = L.arange(1, y.numel() + 1, dtype=y.dtype).reshape(y.shape)
    (y * w).sum().backward()
    return y.detach().numpy().copy(), [o.grad.numpy().copy() if o.grad is not None else
                                       np.zeros(tuple(o.shape)) for o in ops]


def _einsum(eq):
    return lambda L, ops: L.einsum(eq, *ops)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(EINSUM))
def test_einsum_matches_pytorch(name, dtype):
    torch = pytest.importorskip("torch")
    eq, shapes = EINSUM[name]
    y, g = _run(tg, _einsum(eq), _operands(tg, shapes, dtype))
    ty, tgr = _run(torch, _einsum(eq), _operands(torch, shapes, dtype))
    assert y.shape == ty.shape and y.dtype == ty.dtype
    tol = dict(rtol=2e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, ty, **tol)
    for a, b in zip(g, tgr):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("name", ["transpose", "identity", "diagonal", "outer", "hadamard",
                                  "broadcast_size1", "upper_first", "batch_outer"])
def test_einsum_without_summation_is_exact(name):
    """Patterns that sum nothing (views, diagonals, products) equal PyTorch's to the bit."""
    torch = pytest.importorskip("torch")
    eq, shapes = EINSUM[name]
    for dtype in ("float32", "float64"):
        y, g = _run(tg, _einsum(eq), _operands(tg, shapes, dtype, 1))
        ty, tgr = _run(torch, _einsum(eq), _operands(torch, shapes, dtype, 1))
        np.testing.assert_array_equal(y, ty)
        for a, b in zip(g, tgr):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(set(EINSUM) - {"empty_dim"}))
def test_einsum_grads_match_finite_differences(name):
    eq, shapes = EINSUM[name]
    ops = _operands(tg, shapes, "float64", 2)
    _, grads = _run(tg, _einsum(eq), ops)
    base = [o.detach().numpy().copy() for o in ops]
    for k, g in enumerate(grads):
        num = np.zeros_like(base[k])
        for i in np.ndindex(base[k].shape):
            vals = []
            for s in (1e-6, -1e-6):
                arrs = [b.copy() for b in base]
                arrs[k][i] += s
                y = tg.einsum(eq, *[tg.tensor(a) for a in arrs]).numpy()
                vals.append((y * np.arange(1, y.size + 1).reshape(y.shape)).sum())
            num[i] = (vals[0] - vals[1]) / 2e-6
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-6)


def test_einsum_call_forms():
    torch = pytest.importorskip("torch")
    a, b = _operands(tg, [(2, 3), (3, 4)], "float64")
    ta, tb = _operands(torch, [(2, 3), (3, 4)], "float64")
    want = torch.einsum("ij,jk->ik", ta, tb).detach().numpy()
    for got in (tg.einsum("ij,jk->ik", [a, b]), tg.einsum("ij,jk->ik", (a, b)),
                tg.einsum(a, [0, 1], b, [1, 2], [0, 2]), tg.einsum(a, [0, 1], b, [1, 2])):
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-12)
    x = tg.ones(2, 3, 4)
    assert tuple(tg.einsum(x, [Ellipsis, 1], [1]).shape) == (4,)
    assert tg.einsum("i,i", tg.tensor([1, 2, 3]), tg.tensor([4, 5, 6])).item() == 32
    assert tg.einsum("i->", tg.tensor([1, 2], dtype=tg.int32)).dtype is tg.int64
    assert tg.einsum("i->i", tg.tensor([1, 2], dtype=tg.int32)).dtype is tg.int32
    assert tg.einsum("i,i->i", tg.ones(2), tg.ones(2, dtype=tg.float64)).dtype is tg.float64


def test_einsum_grad_fns_are_the_primitives():
    a, b = _operands(tg, [(2, 3), (3, 4)], "float32")
    assert tg.einsum("ij->ji", a).grad_fn.name() == "PermuteBackward0"
    assert tg.einsum("ij->", a).grad_fn.name() == "SumBackward1"      # (as PyTorch's)
    assert tg.einsum("i,j->ij", a[0], b[0]).grad_fn.name() == "MulBackward0"
    assert tg.einsum("ij,jk", a, b).grad_fn is not None


EINSUM_ERRORS = [
    (("ij,jk->ik", [(2, 3), (4, 3)]), "einsum(): subscript j has size 4 for operand 1 which "
                                      "does not broadcast with previously seen size 3"),
    (("ij,jk", [(2, 3)]), "einsum(): fewer operands were provided than specified in the "
                          "equation"),
    (("ij", [(2, 3), (2, 3)]), "einsum(): more operands were provided than specified in the "
                               "equation"),
    (("ijk", [(2, 3)]), "einsum(): the number of subscripts in the equation (3) does not match"
                        " the number of dimensions (2) for operand 0 and no ellipsis was "
                        "given"),
    (("ijk...->", [(2, 3)]), "einsum(): the number of subscripts in the equation (3) is more "
                             "than the number of dimensions (2) for operand 0"),
    (("i1", [(2, 3)]), "einsum(): invalid subscript given at index 1 in the equation string, "
                       "subscripts must be in [a-zA-Z]"),
    (("ij->j->", [(2, 3)]), "einsum(): invalid subscript given at index 5 in the equation "
                            "string, subscripts must be in [a-zA-Z]"),
    (("ij->ii", [(2, 3)]), "einsum(): output subscript i appears more than once in the "
                           "output"),
    (("ij->k", [(2, 3)]), "einsum(): output subscript k does not appear in the equation for "
                          "any input operand"),
    (("ii", [(2, 3)]), "einsum(): subscript i is repeated for operand 0 but the sizes don't "
                       "match, 3 != 2"),
    (("i...j...", [(2, 3)]), "einsum(): found '.' for operand 0 for which an ellipsis was "
                             "already found"),
    (("i..j", [(2, 3)]), "einsum(): found '.' for operand 0 that is not part of any "
                         "ellipsis"),
    (("...i,...i", [(2, 3), (4, 3)]), "einsum(): dimension 0 covered by ellipsis in operand "
                                      "1has size 4 which does not broadcast with previously "
                                      "seen ellipsis with size 2 for the respective "
                                      "dimension"),
]


@pytest.mark.parametrize("case,message", EINSUM_ERRORS)
def test_einsum_errors_in_pytorchs_words(case, message):
    torch = pytest.importorskip("torch")
    eq, shapes = case
    with pytest.raises(RuntimeError) as want:
        torch.einsum(eq, *[torch.zeros(s) for s in shapes])
    assert str(want.value) == message
    with pytest.raises(RuntimeError) as got:
        tg.einsum(eq, *[tg.zeros(s) for s in shapes])
    assert str(got.value) == message


def test_einsum_argument_errors():
    with pytest.raises(ValueError, match="must specify the equation string and at least one "
                                         "operand"):
        tg.einsum("ij,jk->ik")
    with pytest.raises(ValueError, match=r"not within the valid range \[0, 52\)"):
        tg.einsum(tg.zeros(2, 3), [0, 52])
    with pytest.raises(TypeError, match="expected Tensor as element 0 in argument 1, but got "
                                        "int"):
        tg.einsum("i", 3)


# ----- diag -----------------------------------------------------------------------------
DIAG = [((4,), 0), ((4,), 1), ((4,), -2), ((3, 5), 0), ((3, 5), 2), ((3, 5), -1),
        ((5, 3), -3), ((3, 5), 5), ((3, 5), -4), ((0,), 2), ((0,), 0), ((1,), 0)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,k", DIAG)
def test_diag_matches_pytorch(shape, k, dtype):
    torch = pytest.importorskip("torch")
    data = np.arange(1, int(np.prod(shape)) + 1, dtype=np.float64).reshape(shape) / 8
    data.ravel()[::3] *= -1

    def f(L, ops):
        return L.diag(ops[0], k) if k % 2 else ops[0].diag(k)
    y, g = _run(tg, f, [tg.tensor(data, dtype=getattr(tg, dtype), requires_grad=True)])
    ty, tgr = _run(torch, f, [torch.tensor(data, dtype=getattr(torch, dtype),
                                           requires_grad=True)])
    assert y.shape == ty.shape
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(g[0], tgr[0])
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ty))     # (+0 off the diagonal)


def test_diag_of_other_dtypes_and_errors():
    assert tg.diag(tg.tensor([1, 2])).tolist() == [[1, 0], [0, 2]]
    assert tg.diag(tg.tensor([True, True]), 1).tolist() == [[False, True, False],
                                                            [False, False, True],
                                                            [False, False, False]]
    assert tg.tensor([[1, 2], [3, 4]]).diag().tolist() == [1, 4]
    x = tg.tensor([1.0, float("inf"), float("nan")], requires_grad=True)
    d = x.diag()
    assert np.isnan(d.detach().numpy()[2, 2]) and d.detach().numpy()[0, 1] == 0.0
    d.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    for shape in [(), (2, 2, 2)]:
        with pytest.raises(RuntimeError, match=rf"^diag\(\): Supports 1D or 2D tensors. Got "
                                               rf"{len(shape)}D$"):
            tg.zeros(shape).diag()


# ----- addmm ----------------------------------------------------------------------------
ADDMM = {
    "plain": (lambda L, i, a, b: L.addmm(i, a, b), (2, 4)),
    "broadcast_row": (lambda L, i, a, b: L.addmm(i, a, b), (4,)),
    "broadcast_col": (lambda L, i, a, b: i.addmm(a, b), (2, 1)),
    "scalar_input": (lambda L, i, a, b: L.addmm(i, a, b), ()),
    "beta_alpha": (lambda L, i, a, b: L.addmm(i, a, b, beta=2.0, alpha=0.5), (2, 4)),
    "beta_int": (lambda L, i, a, b: i.addmm(a, b, beta=3), (2, 4)),
    "beta_zero": (lambda L, i, a, b: L.addmm(i, a, b, beta=0), (2, 4)),
    "alpha_zero": (lambda L, i, a, b: L.addmm(i, a, b, alpha=0), (2, 4)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ADDMM))
def test_addmm_matches_pytorch(name, dtype):
    torch = pytest.importorskip("torch")
    f, ishape = ADDMM[name]

    def g(L, ops):
        return f(L, *ops)
    shapes = [ishape, (2, 3), (3, 4)]
    y, gr = _run(tg, g, _operands(tg, shapes, dtype, 4))
    ty, tgr = _run(torch, g, _operands(torch, shapes, dtype, 4))
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(y, ty, **tol)
    for a, b in zip(gr, tgr):
        np.testing.assert_allclose(a, b, **tol)


def test_addmm_is_mm_plus_input_and_beta_zero_ignores_input():
    a, b = _operands(tg, [(2, 3), (3, 4)], "float64", 5)
    i = tg.tensor([[float("nan")] * 4, [float("inf")] * 4], dtype=tg.float64,
                  requires_grad=True)
    np.testing.assert_array_equal(tg.addmm(tg.ones(2, 4, dtype=tg.float64), a, b).detach().numpy(),
                                  (a.mm(b) + 1).detach().numpy())
    y = tg.addmm(i, a, b, beta=0)
    np.testing.assert_array_equal(y.detach().numpy(), a.mm(b).detach().numpy())
    y.sum().backward()
    np.testing.assert_array_equal(i.grad.numpy(), np.zeros((2, 4)))


ADDMM_ERRORS = [
    ([(4,), (2, 3), (3, 3)], None, "The expanded size of the tensor (3) must match the "
                                   "existing size (4) at non-singleton dimension 1.  Target "
                                   "sizes: [2, 3].  Tensor sizes: [4]"),
    ([(2, 3), (3,), (3, 3)], None, "mat1 must be a matrix, got 1-D tensor"),
    ([(2, 3), (2, 3), (3,)], None, "mat2 must be a matrix, got 1-D tensor"),
    ([(2, 3), (2, 3), (4, 3)], None, "mat1 and mat2 shapes cannot be multiplied (2x3 and "
                                     "4x3)"),
    ([(2, 3), (2, 3), (3, 3)], 2, "self and mat2 must have the same dtype, but got Float and "
                                  "Double"),
    ([(2, 3), (2, 3), (3, 3)], 0, "self and mat2 must have the same dtype, but got Double and "
                                  "Float"),
]


@pytest.mark.parametrize("shapes,double,message", ADDMM_ERRORS)
def test_addmm_errors_in_pytorchs_words(shapes, double, message):
    torch = pytest.importorskip("torch")
    for L in (torch, tg):
        ops = [L.zeros(s, dtype=L.float64 if i == double else L.float32)
               for i, s in enumerate(shapes)]
        with pytest.raises(RuntimeError) as e:
            L.addmm(*ops)
        assert str(e.value).startswith(message), (L.__name__, str(e.value))


# ----- tg.compile -----------------------------------------------------------------------
COMPILED = {
    "einsum_bmm": (lambda a, b: tg.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 5)]),
    "einsum_trace": (lambda a, b: tg.einsum("ii", a) * b.sum(), [(3, 3), (2,)]),
    "einsum_outer_sum": (lambda a, b: tg.einsum("ij,k->jk", a, b), [(3, 4), (2,)]),
    "einsum_three": (lambda a, b: tg.einsum("ij,jk,k->i", a, b, b[0]), [(2, 3), (3, 3)]),
    "diag": (lambda a, b: a.diag(1).sum() + tg.diag(b, -1), [(3, 4), (2,)]),
    "addmm": (lambda a, b: tg.addmm(b[0], a, b, beta=0.5, alpha=2), [(2, 3), (3, 3)]),
}


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_tg_compile_replays_equal_eager_calls(name):
    """To the bit, products included (a replay multiplies with eager's matmul loop)."""
    f, shapes = COMPILED[name]
    comp = tg.compile(f)
    same = np.testing.assert_array_equal
    for seed in range(4):
        ops_e = _operands(tg, shapes, "float64", seed)
        ops_c = _operands(tg, shapes, "float64", seed)
        ye, yc = f(*ops_e), comp(*ops_c)
        same(yc.detach().numpy(), ye.detach().numpy())
        ye.sum().backward()
        yc.sum().backward()
        for a, b in zip(ops_c, ops_e):
            same(a.grad.numpy(), b.grad.numpy())
    assert comp.stats()["replays"] >= 2
