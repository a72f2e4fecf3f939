"""The in-place forms of the elementwise methods (``exp_``, ``clamp_``, ``pow_``,
``masked_fill_`` ...: inplace.IN_PLACE) and the random fills ``uniform_``/``normal_``.

Each in-place form must equal its out-of-place method to the bit (values, gradients, node
names), bump the version once, and keep PyTorch's rules: a leaf that requires grad refuses
it in grad mode, a view of such a leaf too, an integer tensor cannot take a float result,
a value a pending backward reads (the op's input, or its saved output: ``exp_`` saves its
result) cannot change afterwards, and a view's change reaches its base (CopySlices)."""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad.graph import class_name
from tapegrad.inplace import IN_PLACE, NO_DERIVATIVE

F64, F32 = tg.float64, tg.float32
RNG = np.random.default_rng(5)
VALUES = RNG.uniform(0.2, 1.4, (3, 4))        # in every op's domain, after _start
UNIT = "tan asin acos atanh arcsin arccos arctanh".split()     # |x| < 1
GT1 = ("acosh", "arccosh")                                     # x > 1

ARGS = {"clamp": (0.5, 1.2), "clip": (None, 1.1), "pow": (3.0,),
        "masked_fill": (tg.tensor(VALUES > 0.8), 0.25),
        "atan2": (tg.tensor([0.5, -1.0, 2.0, 0.3], dtype=F64),),
        "arctan2": (tg.tensor([0.5, -1.0, 2.0, 0.3], dtype=F64),),
        "hypot": (tg.tensor([0.5, -1.0, 2.0, 0.3], dtype=F64),),
        "fmod": (0.7,),
        "remainder": (tg.tensor([0.5, -1.0, 2.0, 0.3], dtype=F64),)}
FOUR_WIDE = ("masked_fill", "atan2", "arctan2", "hypot", "remainder")   # arrays only
# the in-place forms PyTorch has no derivative for: tested on their own below
DIFFERENTIABLE = [n for n in IN_PLACE if n not in NO_DERIVATIVE]


def _start(name, t):
    """The non-leaf an in-place form changes: t * 1.5 (t in (0.2, 1.4)), in the op's
    domain."""
    return t * 0.5 if name in UNIT else t * 1.5 + 1.0 if name in GT1 else t * 1.5


def _args(name, dtype):
    return tuple(a.to(dtype) if isinstance(a, tg.Tensor) and a.dtype.is_floating_point
                 else a for a in ARGS.get(name, ()))


def test_the_in_place_forms_are_pytorchs():
    torch = pytest.importorskip("torch")
    assert len(IN_PLACE) == 49
    for name in IN_PLACE:
        assert hasattr(torch.Tensor, name + "_"), name
        assert callable(getattr(tg.Tensor, name + "_")), name


# (the tensor operands of masked_fill and atan2 are 4 wide: array cases only)
CASES = [(n, s) for n in DIFFERENTIABLE for s in ((3, 4), ()) if s or n not in FOUR_WIDE]


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("name, shape", CASES, ids=[f"{n}-{len(s)}d" for n, s in CASES])
def test_in_place_equals_out_of_place_to_the_bit(name, shape, dtype):
    v = VALUES if shape else VALUES[0, 0]
    args = _args(name, dtype)
    a, b = (tg.tensor(v, dtype=dtype, requires_grad=True) for _ in range(2))
    ya, yb = _start(name, a), _start(name, b)
    out = getattr(ya, name + "_")(*args)
    zb = getattr(yb, name)(*args)
    assert out is ya and ya._version == 1
    assert ya.dtype is zb.dtype
    assert np.array_equal(ya.detach().numpy(), zb.detach().numpy())
    assert class_name(ya.grad_fn) == class_name(zb.grad_fn)
    (ya * ya).sum().backward()
    (zb * zb).sum().backward()
    assert np.array_equal(a.grad.numpy(), b.grad.numpy())


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_in_place_matches_torch(name):
    torch = pytest.importorskip("torch")
    targs = tuple(torch.tensor(a.numpy()) if isinstance(a, tg.Tensor) else a
                  for a in _args(name, F64))
    a = tg.tensor(VALUES, dtype=F64, requires_grad=True)
    t = torch.tensor(VALUES, dtype=torch.float64, requires_grad=True)
    ya, yt = _start(name, a), _start(name, t)
    getattr(ya, name + "_")(*_args(name, F64))
    getattr(yt, name + "_")(*targs)
    if name != "masked_fill":           # (a WhereBackward0 here: README, Differences)
        assert class_name(ya.grad_fn) == type(yt.grad_fn).__name__
    assert ya._version == yt._version
    np.testing.assert_allclose(ya.detach().numpy(), yt.detach().numpy(), rtol=1e-15, atol=0)
    (ya * ya).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-14, atol=0)


def test_gradients_against_closed_forms():
    x = tg.tensor([0.3, 0.9, 1.7], dtype=F64, requires_grad=True)
    y = x * 2.0
    y.sin_()
    y.pow_(2)                                   # y = sin(2x)^2
    y.sum().backward()
    v = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.sin(2 * v) * np.cos(2 * v), rtol=1e-14)
    w = tg.tensor(0.7, dtype=F64, requires_grad=True)
    s = w * 1.0
    s.sin_()
    s.mul_(2.0)                                 # s = 2 sin(w)
    z = w * 1.0
    z.clamp_(max=0.5)                           # 0.7 > 0.5: clamped, gradient 0
    u = w * 1.0
    u.tanh_()
    (s + z + u).backward()
    assert z.item() == 0.5
    assert w.grad.item() == pytest.approx(2 * np.cos(0.7) + 1 - np.tanh(0.7) ** 2, rel=1e-15)


def test_a_tensor_operand_that_requires_grad():
    x = tg.tensor([1.0, 2.0, 3.0], dtype=F64)               # needs no grad itself
    o = tg.tensor([0.5, -1.0, 2.0], dtype=F64, requires_grad=True)
    x.atan2_(o)
    assert x.requires_grad and class_name(x.grad_fn) == "Atan2Backward0"
    x.sum().backward()
    xv, ov = np.array([1.0, 2.0, 3.0]), o.detach().numpy()
    np.testing.assert_allclose(o.grad.numpy(), -xv / (xv ** 2 + ov ** 2), rtol=1e-15)
    base = tg.tensor([1.0, 2.0, 3.0], dtype=F64, requires_grad=True)
    e = tg.tensor([0.5, 1.5, 2.0], dtype=F64, requires_grad=True)
    y = base * 1.0
    y.pow_(e)
    y.sum().backward()
    bv, ev = base.detach().numpy(), e.detach().numpy()
    np.testing.assert_allclose(base.grad.numpy(), ev * bv ** (ev - 1), rtol=1e-15)
    np.testing.assert_allclose(e.grad.numpy(), bv ** ev * np.log(bv), rtol=1e-15)


def test_a_view_of_a_non_leaf_changes_its_base():
    x = tg.tensor([[0.5, 1.0], [1.5, 2.0]], dtype=F64, requires_grad=True)
    y = x * 1.0
    y[0].sin_()
    assert class_name(y.grad_fn) == "CopySlices"
    (y * y).sum().backward()
    v = x.detach().numpy()
    want = 2 * v
    want[0] = 2 * np.sin(v[0]) * np.cos(v[0])
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-15)


def test_retain_grad_moves_with_the_change():
    x = tg.tensor([0.5, 1.0], dtype=F64, requires_grad=True)
    y = x * 1.0
    y.retain_grad()
    y.exp_()
    (y * 3.0).sum().backward()
    assert y.grad.tolist() == [3.0, 3.0]


def test_under_no_grad_a_leaf_changes_and_nothing_is_recorded():
    w = tg.tensor([4.0, 9.0, -1.0], dtype=F64, requires_grad=True)
    with tg.no_grad():
        w.clamp_(min=0.0)
        w.sqrt_()
    assert w.tolist() == [2.0, 3.0, 0.0] and w._version == 2
    assert w.grad_fn is None and w.requires_grad
    t = tg.tensor([1.5, -2.5, 0.4])                          # no grad anywhere
    assert t.round_().tolist() == [2.0, -2.0, 0.0] and t.grad_fn is None
    i = tg.tensor([3, -4])
    assert i.neg_().tolist() == [-3, 4] and i.dtype is tg.int64


@pytest.mark.parametrize("make, match", [
    (lambda: tg.ones(2, requires_grad=True).exp_(),
     "a leaf Variable that requires grad is being used in an in-place operation."),
    (lambda: tg.ones(2, 2, requires_grad=True)[0].relu_(),
     "a view of a leaf Variable that requires grad is being used in an in-place operation."),
    (lambda: tg.tensor([1, 2]).exp_(),
     "result type Float can't be cast to the desired output type Long"),
    (lambda: tg.ones(2, requires_grad=True).uniform_(),
     "a leaf Variable that requires grad is being used in an in-place operation."),
    (lambda: (tg.ones(2, requires_grad=True) * 2).normal_(),
     "normal_ on a tensor that requires grad is not supported yet")])
def test_refused_as_pytorch_refuses(make, match):
    with pytest.raises(RuntimeError, match=match.replace(".", r"\.").replace("(", r"\(")):
        make()


def _version_error(fn):
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: "
                                           r"\[tapegrad\.DoubleTensor \[2\]\], which is output 0 "
                                           r"of (\w+), is at version (\d); expected version (\d)"):
        fn()


def test_a_value_a_backward_reads_cannot_change_afterwards():
    def input_saved():                  # sin saved y; exp_ overwrote it
        x = tg.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
        y = x * 1.0
        z = y.sin()
        y.exp_()
        z.sum().backward()

    def output_saved():                 # exp_ saved its result, y; add_ changed it
        x = tg.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
        y = x * 1.0
        y.exp_()
        y.add_(1.0)
        y.sum().backward()

    def relu_then_mul():
        x = tg.tensor([-1.0, 2.0], dtype=F64, requires_grad=True)
        y = x * 1.0
        y.relu_()
        y.mul_(2.0)
        y.sum().backward()
    for fn in (input_saved, output_saved, relu_then_mul):
        _version_error(fn)
    x = tg.tensor([1.0, 2.0], dtype=F64, requires_grad=True)     # nothing changed after:
    y = x * 1.0                                                  # a clean backward
    y.exp_()
    y.log().sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_the_version_errors_are_pytorchs():
    torch = pytest.importorskip("torch")
    msgs = []
    for lib in (tg, torch):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        y = x * 1
        y[0].exp_()
        y[:, 1].clamp_(max=2.5)
        with pytest.raises(RuntimeError) as e:
            (y * y).sum().backward()
        msgs.append(str(e.value).split("Hint")[0].replace(lib.__name__ + ".", ""))
    assert msgs[0] == msgs[1]


def test_inside_tg_compile_an_in_place_form_is_refused():
    f = tg.compile(lambda x: (x * 1.0).exp_().sum())
    with pytest.raises(RuntimeError, match=r"tg.compile: the in-place exp_\(\) inside a "
                                           r"compiled function is not supported"):
        f(tg.ones(2, requires_grad=True))


@pytest.mark.parametrize("dtype", [F64, F32])
def test_uniform_and_normal_fill_in_place(dtype):
    tg.manual_seed(0)
    w = tg.zeros(20000, dtype=dtype)
    assert w.uniform_(-2.0, 3.0) is w and w._version == 1 and w.dtype is dtype
    v = w.numpy()
    assert v.min() >= -2.0 and v.max() <= 3.0
    assert abs(v.mean() - 0.5) < 0.05 and abs(v.std() - 5 / np.sqrt(12)) < 0.05
    assert w.normal_(1.0, 2.0) is w and w._version == 2
    v = w.numpy()
    assert abs(v.mean() - 1.0) < 0.05 and abs(v.std() - 2.0) < 0.05
    p = tg.zeros(3, 4, dtype=dtype, requires_grad=True)
    with tg.no_grad():
        p.uniform_()
    assert p.shape == (3, 4) and p.requires_grad and (p.detach().numpy() > 0).all()


def _two_wide_args(L, name):
    """The arguments of name_ for a 2-wide float64 tensor of library L (tg or torch)."""
    return {"clamp": (0.5, 1.0), "clip": (None, 1.1), "pow": (3.0,),
            "masked_fill": (L.tensor([True, False]), 0.5),
            "atan2": (L.tensor([0.5, 2.0], dtype=L.float64),),
            "arctan2": (L.tensor([0.5, 2.0], dtype=L.float64),),
            "hypot": (L.tensor([0.5, 2.0], dtype=L.float64),),
            "fmod": (0.4,),
            "remainder": (L.tensor([0.5, -2.0], dtype=L.float64),)}.get(name, ())


def _two_wide(name):
    """The values name_ changes, in its domain."""
    return [0.3, 0.6] if name in UNIT else [1.3, 1.7] if name in GT1 else [0.7, 1.3]


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_changing_the_result_again_raises_where_pytorch_saved_it(name):
    """exp_, tanh_ ... save their result (the tensor itself): a later add_ makes the
    backward raise. The others (clamp_ included, whose PyTorch backward reads the old input)
    run, with the gradient of the two steps."""
    from tapegrad.inplace import SAVES_RESULT
    x = tg.tensor(_two_wide(name), dtype=F64, requires_grad=True)
    y = x * 1.0
    args = _two_wide_args(tg, name)
    getattr(y, name + "_")(*args)
    y.add_(1.0)
    if name in SAVES_RESULT:
        _version_error(lambda: (y * y).sum().backward())
        return
    (y * y).sum().backward()
    x2 = tg.tensor(_two_wide(name), dtype=F64, requires_grad=True)
    z = getattr(x2 * 1.0, name)(*args) + 1.0            # the same steps, out of place
    (z * z).sum().backward()
    assert np.array_equal(x.grad.numpy(), x2.grad.numpy())


def test_the_saved_results_are_pytorchs():
    torch = pytest.importorskip("torch")
    from tapegrad.inplace import SAVES_RESULT
    raises = set()
    for name in DIFFERENTIABLE:
        x = torch.tensor(_two_wide(name), dtype=torch.float64, requires_grad=True)
        y = x * 1.0
        getattr(y, name + "_")(*_two_wide_args(torch, name))
        y.add_(1.0)
        try:
            (y * y).sum().backward()
        except RuntimeError:
            raises.add(name)
    assert raises == SAVES_RESULT


@pytest.mark.parametrize("name", sorted(NO_DERIVATIVE))
def test_in_place_forms_without_a_derivative(name):
    """asinh_, acosh_, atanh_ (and the arc- aliases): PyTorch has no derivative of them
    (derivatives.yaml: not_implemented). Where one would be recorded, its error, at the
    call (PyTorch's at the backward that reaches its AsinhBackward1 node, which is raised
    here for both); under no_grad, or on a tensor that needs no grad, the value, as the
    out-of-place op's."""
    torch = pytest.importorskip("torch")
    msg = f"the derivative for 'inplace version of {NO_DERIVATIVE[name]}' is not implemented."
    x = tg.tensor(_two_wide(name), dtype=F64, requires_grad=True)
    with pytest.raises(NotImplementedError, match=msg.replace(".", r"\.")):
        getattr(x * 1.0, name + "_")()
    t = torch.tensor(_two_wide(name), dtype=torch.float64, requires_grad=True)
    y = t * 1.0
    getattr(y, name + "_")()
    with pytest.raises(NotImplementedError) as e:
        y.sum().backward()
    assert str(e.value) == msg
    with tg.no_grad():
        y = x * 1.0
        assert getattr(y, name + "_")() is y and y._version == 1
    z = tg.tensor(_two_wide(name), dtype=F64)
    getattr(z, name + "_")()
    want = getattr(torch, name)(torch.tensor(_two_wide(name), dtype=torch.float64)).numpy()
    for v in (y, z):
        assert not v.requires_grad or v.grad_fn is None
        np.testing.assert_allclose(v.numpy(), want, rtol=1e-15, atol=0)
        np.testing.assert_array_equal(v.numpy(), getattr(tg.tensor(_two_wide(name),
                                                                   dtype=F64), name)().numpy())


FUZZ_OPS = [("exp_", ()), ("tanh_", ()), ("sigmoid_", ()), ("sin_", ()), ("relu_", ()),
            ("abs_", ()), ("neg_", ()), ("clamp_", (-0.5, 0.8)), ("pow_", (2.0,)),
            ("square_", ()), ("atan_", ()), ("mul_", (1.5,)), ("add_", (0.3,)), ("erf_", ()),
            ("floor_", ())]


def _random_in_place_program(L, seed):
    """Up to five in-place ops on a non-leaf, its rows, a slice, its transpose, with
    readers of its value in between; then a backward. (x.grad, y) or the error's text."""
    rng = np.random.default_rng(seed)
    x = L.tensor(rng.uniform(0.2, 1.2, (3, 4)), dtype=L.float64, requires_grad=True)
    y = x * 1.0
    readers = []
    for _ in range(rng.integers(1, 6)):
        kind = rng.integers(0, 5)
        name, args = FUZZ_OPS[rng.integers(0, len(FUZZ_OPS))]
        if kind == 4:
            readers.append(y.sin() if rng.random() < 0.5 else y * 2.0)
        target = [y, y[rng.integers(0, 3)] if kind == 1 else y, y[:, 1:3], y.t(), y][kind]
        getattr(target, name)(*args)
    try:
        ((y * y).sum() + sum(r.sum() for r in readers)).backward()
    except RuntimeError as e:
        return "raised: " + str(e).split(":")[0]
    return x.grad.numpy(), y.detach().numpy()


def test_random_in_place_programs_match_torch():
    """Gradients to 1e-12, or both raise the version error: 300 random programs."""
    torch = pytest.importorskip("torch")
    for seed in range(300):
        ours, theirs = _random_in_place_program(tg, seed), _random_in_place_program(torch, seed)
        if isinstance(theirs, str) or isinstance(ours, str):
            assert ours == theirs, seed
            continue
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=1e-12, err_msg=seed)
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, atol=1e-12, err_msg=seed)
