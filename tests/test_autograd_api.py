"""The rest of PyTorch's autograd API: grad(), hooks, detach, dtype casts and promotion,
gradcheck, anomaly detection, nn.functional; against closed forms and PyTorch."""
import re
import warnings

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F


def t64(values, requires_grad=True):
    return tg.tensor(np.asarray(values, np.float64), dtype=tg.float64,
                     requires_grad=requires_grad)


# ----- autograd.grad and backward(inputs=) ------------------------------------------------
def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x, y = t64([1.0, 2.0]), t64([3.0, 4.0])
    gx, gy = tg.autograd.grad((x * y).sum(), (x, y))
    np.testing.assert_array_equal(gx.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None


def test_grad_unused_input_error_and_allow_unused():
    x, y = t64([1.0, 2.0]), t64([3.0, 4.0])
    with pytest.raises(RuntimeError, match=re.escape(
            "The differentiated Tensor at index 1 appears to not have been used in the graph. "
            "Set allow_unused=True if this is the desired behavior.")):
        tg.autograd.grad((x * 2).sum(), [x, y])
    gx, gy = tg.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None and np.array_equal(gx.numpy(), [2.0, 2.0])


def test_grad_of_a_non_leaf_and_with_grad_outputs():
    x = t64([1.0, 2.0])
    h = x * x
    out = h * 3
    gh, = tg.autograd.grad(out, h, grad_outputs=t64([1.0, 10.0], False))
    np.testing.assert_array_equal(gh.numpy(), [3.0, 30.0])


def test_backward_inputs_accumulates_only_into_those():
    x, y = t64([1.0, 2.0]), t64([3.0, 4.0])
    (x * y).sum().backward(inputs=[y])
    assert x.grad is None
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 2.0])


def test_autograd_backward_with_several_roots():
    x = t64([1.0, 2.0])
    tg.autograd.backward([(x * 2).sum(), x * x], [None, t64([1.0, 1.0], False)])
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 6.0])


# ----- hooks ----------------------------------------------------------------------------
def test_tensor_hook_sees_and_replaces_the_gradient():
    x = t64([1.0, 2.0])
    h = x * 3
    seen = []
    handle = h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (h * h).sum().backward()
    np.testing.assert_array_equal(seen[0], [6.0, 12.0])          # d(h^2)/dh = 2h
    np.testing.assert_array_equal(x.grad.numpy(), [180.0, 360.0])
    handle.remove()
    x.grad = None
    h2 = x * 3
    (h2 * h2).sum().backward()
    assert len(seen) == 1


def test_leaf_hook_changes_what_accumulates_and_post_hook_runs_after():
    x = t64([1.0, 2.0])
    x.register_hook(lambda g: g + 1)
    after = []
    x.register_post_accumulate_grad_hook(lambda t: after.append(t.grad.numpy().copy()))
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(after[0], [3.0, 3.0])


def test_hook_on_a_tensor_without_grad_errors():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                                           "require gradient"):
        tg.ones(2).register_hook(lambda g: g)


def test_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    out = {}
    for L in (tg, torch):
        x = L.tensor([1.0, -2.0, 3.0], dtype=L.float64, requires_grad=True)
        a = x.exp()
        b = a * x
        b.register_hook(lambda g: g * 2)
        a.register_hook(lambda g: g - 1)
        (b.sum() + a.sum()).backward()
        out[L] = x.grad.numpy().copy() if L is tg else x.grad.detach().numpy()
    np.testing.assert_allclose(out[tg], out[torch], rtol=1e-14)


def _as_plain(v):
    if isinstance(v, (list, tuple)):
        return [_as_plain(u) for u in v]
    return np.array(v.detach().tolist(), np.float64) if hasattr(v, "detach") else v


def _same_in_pytorch(scenario):
    """tapegrad's result of scenario(L) is PyTorch's (values 1e-12, hook logs, None)."""
    torch = pytest.importorskip("torch")
    mine, theirs = _as_plain(scenario(tg)), _as_plain(scenario(torch))

    def same(a, b):
        if isinstance(a, list):
            assert isinstance(b, list) and len(a) == len(b), (a, b)
            for u, w in zip(a, b):
                same(u, w)
        elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        else:
            assert a == b, (a, b)
    same(mine, theirs)
    return mine


@pytest.mark.parametrize("value", [1.5, [1.5, -2.0]], ids=["scalar", "array"])
def test_backward_of_a_leaf_itself_then_through_a_graph_accumulates(value):
    """x.backward() on a leaf no graph had used gave it a .grad of its own; a later backward
    through x * 2 then went to storage .grad no longer showed (a silent wrong gradient,
    found by tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        x = L.tensor(value, dtype=L.float64, requires_grad=True)
        x.backward(L.ones_like(x))
        first = x.grad.clone()
        (x * 2).sum().backward()
        return [first, x.grad]
    mine = _same_in_pytorch(scenario)
    np.testing.assert_array_equal(mine[1], np.full(np.shape(value), 3.0))


def test_backward_of_a_leaf_itself_runs_its_hooks():
    """As PyTorch's AccumulateGrad: the leaf's hooks change what accumulates, then its
    post-accumulate hooks run (they were skipped)."""
    def scenario(L):
        seen = []
        x = L.tensor(1.5, dtype=L.float64, requires_grad=True)
        x.register_hook(lambda g: seen.append(g.item()) or g * 3)
        x.register_post_accumulate_grad_hook(lambda t: seen.append(("post", t.grad.item())))
        x.backward()
        x.backward(L.tensor(2.0, dtype=L.float64))
        return [x.grad, seen]
    mine = _same_in_pytorch(scenario)
    assert mine[1] == [1.0, ["post", 3.0], 2.0, ["post", 9.0]]


def test_a_hooked_leaf_used_again_on_a_newer_tape_gets_its_grad():
    """x is used on a graph kept with retain_graph, then on the tape after it; a leaf with
    hooks is accumulated by the engine, which looked for it only on the tape it was last
    used on: the second backward through the first graph gave x nothing (a silent wrong
    gradient, found by tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        x = L.tensor([1.0, 2.0, 3.0], dtype=L.float64, requires_grad=True)
        y = (x * 2).sum()
        y.backward(retain_graph=True)
        x.log()                                   # x on the next tape
        x.register_hook(lambda g: g * 3)
        y.backward()
        return [x.grad]
    mine = _same_in_pytorch(scenario)
    np.testing.assert_array_equal(mine[0], [8.0, 8.0, 8.0])


@pytest.mark.parametrize("change", ["mul_", "setitem", "a_view", "the_retained_view",
                                    "the_retained_views_base"])
def test_retain_grad_survives_an_in_place_change(change):
    """PyTorch moves the retains_grad hook to the new grad_fn of a tensor changed in place
    (or of the base a view of it changed); tapegrad forgot it, and .grad stayed None (found
    by tests/test_lifetimes_fuzz.py). A retained view is recorded afresh when it or its
    base changes (AsStridedBackward0), and keeps retaining its grad too."""
    def scenario(L):
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        h = x * 2
        kept = h.unsqueeze(0) if change.startswith("the_retained_view") else h
        kept.retain_grad()
        if change == "mul_":
            h.mul_(3)
        elif change == "setitem":
            h[0] = x[1]
        elif change == "a_view":
            h[0:1].mul_(3)
        elif change == "the_retained_view":
            kept.add_(x)
        else:
            h[1] = x[0] * 5
        flag = kept.retains_grad
        (kept * kept).sum().backward()
        return [flag, kept.grad, x.grad]
    mine = _same_in_pytorch(scenario)
    assert mine[0] is True and mine[1] is not None


def test_a_retained_grad_is_replaced_by_a_later_backward():
    """PyTorch's retain_grad hook sets grad = grad + new: a .grad the user holds keeps its
    values (tapegrad added into it in place; found by tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        x = L.tensor([1.0, -2.0], dtype=L.float64, requires_grad=True)
        h = x * 3
        h.retain_grad()
        y = (h * h).sum()
        y.backward(retain_graph=True)
        held = h.grad
        y.backward()
        return [held, h.grad, held is h.grad]
    mine = _same_in_pytorch(scenario)
    np.testing.assert_array_equal(mine[0], [6.0, -12.0])


def test_a_leaf_hook_runs_once_on_the_whole_gradient_across_tapes():
    """y = x * h with h on an older tape (a backward came between): x gets gradient from
    both tapes. PyTorch's AccumulateGrad runs its hooks once, on the sum; tapegrad ran them
    once per tape, so a hook that clamps gave a wrong gradient (silently; found by
    tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        seen = []
        x = L.tensor([1.37, 2.0], dtype=L.float64, requires_grad=True)
        h = x * 2
        h.sum().backward(retain_graph=True)
        x.register_hook(lambda g: seen.append(g.tolist()) or g.clamp(max=3.0))
        x.register_post_accumulate_grad_hook(lambda t: seen.append("post"))
        (x * h).sum().backward()
        return [x.grad, seen]
    mine = _same_in_pytorch(scenario)
    np.testing.assert_array_equal(mine[0], [5.0, 5.0])
    assert mine[1] == [[5.48, 8.0], "post"]


# ----- detach, requires_grad, data, casts ------------------------------------------------
def test_detach_shares_memory_and_does_not_require_grad():
    x = t64([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    with tg.no_grad():
        x.add_(1.0)
    np.testing.assert_array_equal(d.numpy(), [2.0, 3.0])


def test_requires_grad_of_a_non_leaf_cannot_be_turned_off():
    y = t64([1.0]) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf "
                                           "variables"):
        y.requires_grad_(False)


def test_cast_gradients_flow_back_in_the_input_dtype():
    x = tg.tensor([1.0, 2.0], requires_grad=True)             # float32
    y = x.double() * t64([3.0, 4.0], False)
    assert y.dtype is tg.float64
    y.sum().backward()
    assert x.grad.dtype is tg.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    assert y.grad_fn.next_functions[0][0].name() == "ToCopyBackward0"


def test_mixed_dtypes_promote_as_pytorch():
    a = tg.ones(2, dtype=tg.float32, requires_grad=True)
    b = tg.ones(2, dtype=tg.float64, requires_grad=True)
    assert (a * b).dtype is tg.float64
    assert (a * tg.tensor(2.0, dtype=tg.float64)).dtype is tg.float32   # 0-d loses to 1-d
    assert (tg.tensor([1, 2]) * 1.5).dtype is tg.float32
    (a * b).sum().backward()
    assert a.grad.dtype is tg.float32 and b.grad.dtype is tg.float64


def test_clone_records_clone_backward():
    x = t64([1.0, 2.0])
    y = x.clone()
    assert y.grad_fn.name() == "CloneBackward0"
    (y * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


# ----- gradcheck and anomaly mode ---------------------------------------------------------
def test_gradcheck_passes_for_correct_gradients():
    x, y = t64(np.linspace(0.1, 1, 4)), t64(np.linspace(-1, 1, 4))
    assert tg.autograd.gradcheck(lambda a, b: (a.log() * b.tanh() + a.sqrt()).sum(), (x, y))
    assert tg.autograd.gradcheck(lambda a: a.softmax(0) * a, (x,))


def test_gradcheck_reports_both_jacobians():
    x = t64([1.0, 2.0])
    with pytest.raises(tg.autograd.GradcheckError, match="Jacobian mismatch for output 0 with "
                                                         "respect to input 0") as e:
        tg.autograd.gradcheck(lambda a: (a * 2 + a.detach() ** 2).sum(), (x,))
    assert "numerical:" in str(e.value) and "analytical:" in str(e.value)


def test_anomaly_mode_names_the_node_and_shows_the_forward_call():
    with tg.autograd.detect_anomaly():
        a = tg.zeros(1, dtype=tg.float64, requires_grad=True)
        b = a / a                                       # the line the warning points to
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with pytest.raises(RuntimeError, match=r"Function 'DivBackward0' returned nan "
                                                   r"values in its \dth output."):
                b.sum().backward()
    assert any("Error detected in DivBackward0" in str(x.message) and "b = a / a"
               in str(x.message) for x in w)


# Each case: (node name, which output is NaN, forward of operands a, b) where a NaN in one
# operand's value makes exactly the other operand's gradient NaN: d(a.b)/db = a, and so on.
_NAN_OPERAND_CASES = [
    ("DotBackward0", 1, lambda a, b: a.dot(b), [np.nan, 2.0], [1.0, 1.0]),
    ("DotBackward0", 0, lambda a, b: a.dot(b), [1.0, 2.0], [np.nan, 1.0]),
    ("MulBackward0", 1, lambda a, b: (a * b).sum(), [np.nan, 2.0], [1.0, 1.0]),
    ("MulBackward0", 0, lambda a, b: (a * b).sum(), [1.0, 2.0], [np.nan, 1.0]),
    ("MvBackward0", 1, lambda a, b: a.reshape(1, 2).mv(b).sum(), [np.nan, 2.0], [1.0, 1.0]),
]


@pytest.mark.parametrize("name,index,fn,av,bv", _NAN_OPERAND_CASES)
def test_anomaly_mode_checks_every_operands_gradient(name, index, fn, av, bv):
    """A NaN in either output of a two-operand backward is caught, the second one included
    (d(a.b)/db = a: a NaN in a makes b's gradient NaN), named as PyTorch names it."""
    message = f"Function '{name}' returned nan values in its {index}th output."

    def run(lib):
        a = lib.tensor(av, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(bv, dtype=lib.float64, requires_grad=True)
        with lib.autograd.detect_anomaly(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match=re.escape(message)):
                fn(a, b).backward()
    run(tg)
    torch = pytest.importorskip("torch")
    run(torch)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_relu_of_a_0d_nan_is_nan(dtype):
    """relu(nan) is NaN for a 0-d tensor (the Python-float fast path) as for arrays and in
    PyTorch; its gradient through the NaN is 1 (PyTorch's threshold_backward: nan <= 0 is
    false, so the gradient passes)."""
    x = tg.tensor(np.nan, dtype=getattr(tg, dtype), requires_grad=True)
    y = x.relu()
    assert np.isnan(y.item()) and y.grad_fn.name() == "ReluBackward0"
    y.backward()
    assert x.grad.item() == 1.0
    assert np.isnan(tg.tensor([np.nan]).relu().numpy()[0])
    torch = pytest.importorskip("torch")
    tx = torch.tensor(np.nan, dtype=getattr(torch, dtype), requires_grad=True)
    ty = tx.relu()
    ty.backward()
    assert np.isnan(ty.item()) and tx.grad.item() == x.grad.item()


def test_nan_propagates_without_anomaly_mode():
    a = tg.zeros(1, dtype=tg.float64, requires_grad=True)
    (a / a).sum().backward()
    assert np.isnan(a.grad.numpy()).all()


# ----- nn.functional ---------------------------------------------------------------------
def test_functional_losses_match_pytorch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    rng = np.random.default_rng(1)
    X, W, B = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    Y, T = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)

    def run(L, Fn):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        w = L.tensor(W, dtype=L.float64, requires_grad=True)
        b = L.tensor(B, dtype=L.float64, requires_grad=True)
        h = Fn.linear(x, w, b)
        loss = (Fn.mse_loss(h, L.tensor(Y, dtype=L.float64))
                + Fn.cross_entropy(x, L.tensor(T))
                + Fn.binary_cross_entropy_with_logits(h, L.tensor((Y > 0) * 1.0,
                                                                  dtype=L.float64)))
        loss.backward()
        return loss.item(), x.grad.detach().numpy(), w.grad.detach().numpy(), \
            b.grad.detach().numpy()

    for a, b in zip(run(tg, F), run(torch, TF)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_cross_entropy_closed_form():
    logits = t64([[2.0, 0.0, -1.0]])
    loss = F.cross_entropy(logits, tg.tensor([0]))
    e = np.exp([2.0, 0.0, -1.0])
    assert abs(loss.item() - (-np.log(e[0] / e.sum()))) < 1e-14
    loss.backward()
    np.testing.assert_allclose(logits.grad.numpy()[0], e / e.sum() - [1, 0, 0], rtol=1e-13)
