"""``tg.autograd.Function``: custom forward/backward pairs, as in PyTorch's tutorial
"Extending PyTorch" and "PyTorch: Defining New autograd Functions".

Every Function is written once against a module ``L`` (``tapegrad`` or ``torch``) and run
with both: values and gradients are compared with each other (float64, 1e-10), with closed
forms and with finite differences; errors are compared word for word (tapegrad writes
``tapegrad.`` where PyTorch writes ``torch.`` in type names).
"""
import gc
import math
import re
import weakref

import numpy as np
import pytest

import tapegrad as tg

from conftest import fd_grad, still_works

pytestmark = pytest.mark.usefixtures("isolated")


def _np(t):
    return np.array(t.detach().numpy(), np.float64)


def _torch():
    return pytest.importorskip("torch")


# ----- the Functions, written once for both libraries ---------------------------------------
def functions(L):
    """The custom Functions of the tests, as subclasses of ``L.autograd.Function``."""
    F = L.autograd.Function

    class MyExp(F):
        """y = e^x; backward reads the saved output: dy/dx = y."""
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad_output):
            y, = ctx.saved_tensors
            return grad_output * y

    class MyReLU(F):
        """The tutorial's ReLU: the gradient is zeroed where the input is negative."""
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input

    class LegendrePolynomial3(F):
        """P3(x) = (5x^3 - 3x) / 2, P3'(x) = 3/2 (5x^2 - 1) (the tutorial's example)."""
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    class ScaledMul(F):
        """z = k a b with a Python number k: its gradient slot must be None."""
        @staticmethod
        def forward(ctx, a, k, b):
            ctx.save_for_backward(a, b)
            ctx.k = k
            return a * b * k

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            ga = g * b * ctx.k if ctx.needs_input_grad[0] else None
            gb = g * a * ctx.k if ctx.needs_input_grad[2] else None
            return ga, None, gb

    class SinCos(F):
        """Two outputs: (sin x, cos x)."""
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin(), x.cos()

        @staticmethod
        def backward(ctx, gs, gc):
            x, = ctx.saved_tensors
            return gs * x.cos() - gc * x.sin()

    return dict(MyExp=MyExp, MyReLU=MyReLU, P3=LegendrePolynomial3, ScaledMul=ScaledMul,
                SinCos=SinCos)


TG, TORCH = functions(tg), None


def _fns(L):
    global TORCH
    if L is tg:
        return TG
    if TORCH is None:
        TORCH = functions(L)
    return TORCH


def _both(scenario):
    """Runs ``scenario(L, fns)`` with tapegrad and PyTorch; returns both results as
    (lists of) float64 arrays."""
    torch = _torch()
    out = []
    for L in (tg, torch):
        res = scenario(L, _fns(L))
        out.append([np.array(r.detach().numpy(), np.float64) if r is not None else None
                    for r in res])
    return out


def _same(mine, theirs, tol=1e-10):
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


XV = np.array([[-1.3, 0.4, 2.1], [0.7, -0.2, 1.5]])


# ----- values and gradients ------------------------------------------------------------------
@pytest.mark.parametrize("name,closed", [
    ("MyExp", lambda x: (np.exp(x), np.exp(x))),
    ("MyReLU", lambda x: (np.maximum(x, 0), (x > 0).astype(float))),
    ("P3", lambda x: (0.5 * (5 * x ** 3 - 3 * x), 1.5 * (5 * x ** 2 - 1))),
])
def test_unary_functions_against_closed_forms_fd_and_pytorch(name, closed):
    def scenario(L, fns):
        x = L.tensor(XV, dtype=L.float64, requires_grad=True)
        y = fns[name].apply(x)
        (y * L.tensor(XV + 2.0, dtype=L.float64)).sum().backward()
        return [y, x.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    value, slope = closed(XV)
    np.testing.assert_allclose(mine[0], value, rtol=1e-12)
    np.testing.assert_allclose(mine[1], slope * (XV + 2.0), rtol=1e-12)
    fd = fd_grad(lambda v: float((closed(v)[0] * (XV + 2.0)).sum()), XV)
    np.testing.assert_allclose(mine[1], fd, rtol=1e-6, atol=1e-6)


def test_function_composed_with_ops_on_both_sides():
    """x -> h = x * w -> MyExp -> * h -> sum: gradients flow through the custom record
    into a non-leaf input and on to the leaves."""
    def scenario(L, fns):
        x = L.tensor(XV, dtype=L.float64, requires_grad=True)
        w = L.tensor([0.5, -0.3, 0.2], dtype=L.float64, requires_grad=True)
        h = x * w
        loss = (fns["MyExp"].apply(h) * h).sum()
        loss.backward()
        return [loss, x.grad, w.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    w0 = np.array([0.5, -0.3, 0.2])
    fd = fd_grad(lambda v: float((np.exp(v * w0) * v * w0).sum()), XV)
    np.testing.assert_allclose(mine[1], fd, rtol=1e-6, atol=1e-6)


def test_python_number_argument_and_two_tensor_inputs():
    def scenario(L, fns):
        a = L.tensor([1.5, -2.0], dtype=L.float64, requires_grad=True)
        b = L.tensor([0.5, 3.0], dtype=L.float64, requires_grad=True)
        z = fns["ScaledMul"].apply(a, 2.5, b)
        z.sum().backward()
        return [z, a.grad, b.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    np.testing.assert_allclose(mine[1], 2.5 * np.array([0.5, 3.0]))
    np.testing.assert_allclose(mine[2], 2.5 * np.array([1.5, -2.0]))


def test_the_same_tensor_twice_and_the_function_used_twice():
    def scenario(L, fns):
        a = L.tensor([1.5, -2.0], dtype=L.float64, requires_grad=True)
        z = fns["ScaledMul"].apply(a, 1.0, a)          # a^2
        y = fns["MyExp"].apply(fns["MyExp"].apply(z) * 0.1)
        y.sum().backward()
        return [y, a.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    av = np.array([1.5, -2.0])
    fd = fd_grad(lambda v: float(np.exp(0.1 * np.exp(v * v)).sum()), av)
    np.testing.assert_allclose(mine[1], fd, rtol=1e-6)


def test_two_outputs_and_an_unused_output():
    def scenario(L, fns):
        x = L.tensor([0.3, 1.2, -0.7], dtype=L.float64, requires_grad=True)
        s, c = fns["SinCos"].apply(x)
        (s * 2 + c * c).sum().backward(retain_graph=True)
        g_both = x.grad.clone()
        x.grad = None
        c.sum().backward()                 # sin unused: its grad arrives as zeros
        return [s, c, g_both, x.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    xv = np.array([0.3, 1.2, -0.7])
    np.testing.assert_allclose(mine[2], 2 * np.cos(xv) - 2 * np.cos(xv) * np.sin(xv))
    np.testing.assert_allclose(mine[3], -np.sin(xv))


def test_scalar_inputs_and_outputs():
    """0-d tensors made from Python numbers (tapegrad's scalar fast path) in and out."""
    def scenario(L, fns):
        a = L.tensor(0.7, dtype=L.float64, requires_grad=True)
        b = L.tensor(-1.1, dtype=L.float64, requires_grad=True)
        y = fns["P3"].apply(a * b) * a
        y.backward()
        return [y, a.grad, b.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    p3 = lambda v: 0.5 * (5 * v ** 3 - 3 * v)     # noqa: E731
    fd = fd_grad(lambda v: float(p3(v[0] * v[1]) * v[0]), np.array([0.7, -1.1]))
    np.testing.assert_allclose([mine[1], mine[2]], fd, rtol=1e-6)


def test_legendre_tutorial_training_matches_pytorch():
    """PyTorch's tutorial "Defining New autograd Functions": y = a + b P3(c + d x) fit to
    sin(x) by gradient descent (200 steps instead of 2000)."""
    def scenario(L, fns):
        x = L.linspace(-math.pi, math.pi, 2000, dtype=L.float64)
        y = x.sin()
        a, b, c, d = (L.full((), v, dtype=L.float64, requires_grad=True)
                      for v in (0.0, -1.0, 0.0, 0.3))
        losses = []
        for _ in range(200):
            y_pred = a + b * fns["P3"].apply(c + d * x)
            loss = (y_pred - y).pow(2).sum()
            losses.append(loss.item())
            loss.backward()
            with L.no_grad():
                for p in (a, b, c, d):
                    p -= 5e-6 * p.grad
                    p.grad = None
        return [L.tensor(losses, dtype=L.float64), a, b, c, d]
    mine, theirs = _both(scenario)
    _same(mine, theirs, tol=1e-9)
    assert mine[0][-1] < mine[0][0] / 2


def test_gradcheck_passes_on_a_custom_function():
    x = tg.tensor(XV, dtype=tg.float64, requires_grad=True)
    assert tg.autograd.gradcheck(TG["P3"].apply, (x,))


def test_autograd_grad_hooks_and_retain_grad_through_a_function():
    def scenario(L, fns):
        x = L.tensor([0.5, -1.5], dtype=L.float64, requires_grad=True)
        y = fns["MyExp"].apply(x)
        y.register_hook(lambda g: g * 3)
        (gx,) = L.autograd.grad((y * y).sum(), x)
        y = fns["MyExp"].apply(x)
        y.retain_grad()
        y.register_hook(lambda g: g * 3)
        (y * y).sum().backward()
        return [gx, x.grad, y.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    xv = np.array([0.5, -1.5])
    np.testing.assert_allclose(mine[0], 3 * 2 * np.exp(2 * xv), rtol=1e-12)


def test_function_output_used_after_a_backward_links_back():
    """y's graph was backwarded (retained); a new graph uses y: the backward reaches the
    custom record through a link to the older tape."""
    def scenario(L, fns):
        x = L.tensor([0.2, 0.9], dtype=L.float64, requires_grad=True)
        y = fns["MyExp"].apply(x * 2)
        y.sum().backward(retain_graph=True)
        x.grad = None
        z = (y * 3).sum()
        z.backward()
        return [x.grad]
    mine, theirs = _both(scenario)
    _same(mine, theirs)
    np.testing.assert_allclose(mine[0], 6 * np.exp(2 * np.array([0.2, 0.9])))


# ----- the node: names, next_functions, the ctx -------------------------------------------
def test_node_name_repr_and_next_functions():
    torch = _torch()
    got = {}
    for L in (tg, torch):
        fns = _fns(L)
        a = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        c = L.tensor([1.0, 2.0], dtype=L.float64)
        z = fns["ScaledMul"].apply(a * 2, 3.0, c)
        node = z.grad_fn
        s, co = fns["SinCos"].apply(a)
        w = co * 1
        got[L.__name__] = (
            node.name(), type(node).__name__, repr(z).split("grad_fn=")[1],
            repr(node).split(" object at")[0].split(".")[-1],
            [(n.name() if n is not None else None, nr) for n, nr in node.next_functions],
            z.grad_fn is node, s.grad_fn is co.grad_fn,
            [(n.name() if n is not None else None, nr) for n, nr in w.grad_fn.next_functions],
            node.k, node.needs_input_grad)
    mine, theirs = got["tapegrad"], got["torch"]
    assert mine[0] == "ScaledMulBackward" and mine[1] == "ScaledMulBackward"
    assert mine[2:] == theirs[2:]
    assert mine[0] == theirs[0] and mine[1] == theirs[1]
    assert repr(z.grad_fn).startswith("<torch.autograd.function.ScaledMulBackward object at")
    a = tg.tensor([1.0], requires_grad=True)
    assert repr(TG["MyExp"].apply(a).grad_fn).startswith(
        "<tapegrad.autograd.function.MyExpBackward object at")
    assert isinstance(TG["MyExp"].apply(a).grad_fn, tg.autograd.function.BackwardCFunction)


def test_needs_input_grad_in_forward_and_backward():
    torch = _torch()
    seen = {}
    for L in (tg, torch):
        log = []

        class Needs(L.autograd.Function):
            @staticmethod
            def forward(ctx, a, b, s):
                log.append(ctx.needs_input_grad)
                return a + b

            @staticmethod
            def backward(ctx, g):
                log.append(ctx.needs_input_grad)
                log.append(L.is_grad_enabled())
                return g, g, None
        x = L.tensor([1.0, 2.0], requires_grad=True)
        Needs.apply(x, L.ones(2), "text").sum().backward()
        seen[L.__name__] = log
    assert seen["tapegrad"] == seen["torch"] == [(True, False, False), (True, False, False),
                                                 False]


def test_no_record_under_no_grad_or_without_grad_inputs():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = TG["MyExp"].apply(x)
    assert not y.requires_grad and y.grad_fn is None
    y = TG["MyExp"].apply(x.detach())
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_allclose(y.numpy(), np.exp([1.0, 2.0]), rtol=1e-6)


def test_new_style_setup_context_and_keyword_arguments():
    torch = _torch()
    res = {}
    for L in (tg, torch):
        class Scale(L.autograd.Function):
            @staticmethod
            def forward(x, k=2.0):
                return x * k

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.k = inputs[1]

            @staticmethod
            def backward(ctx, g):
                return g * ctx.k, None
        x = L.tensor([1.0, -2.0], dtype=L.float64, requires_grad=True)
        y = Scale.apply(x, k=3.0) + Scale.apply(x)
        y.sum().backward()
        res[L.__name__] = (_np(y) if L is tg else y.detach().numpy(),
                           _np(x.grad) if L is tg else x.grad.numpy(), y.grad_fn.name())
    np.testing.assert_array_equal(res["tapegrad"][0], res["torch"][0])
    np.testing.assert_array_equal(res["tapegrad"][1], [5.0, 5.0])
    np.testing.assert_array_equal(res["torch"][1], [5.0, 5.0])


def test_mark_non_differentiable_and_materialized_grads():
    torch = _torch()
    seen = {}
    for L in (tg, torch):
        log = []

        class Split(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                mask = (x > 0).to(x.dtype)
                ctx.mark_non_differentiable(mask)
                return x * 2, mask

            @staticmethod
            def backward(ctx, g, g_mask):
                log.append(np.array(g_mask.numpy()))
                return g * 2
        x = L.tensor([1.0, -2.0, 3.0], dtype=L.float64, requires_grad=True)
        y, mask = Split.apply(x)
        assert not mask.requires_grad and mask.grad_fn is None and y.requires_grad
        (y * mask).sum().backward()
        seen[L.__name__] = (log, np.array(x.grad.numpy()))
    for a, b in zip(seen["tapegrad"][0] + [seen["tapegrad"][1]],
                    seen["torch"][0] + [seen["torch"][1]]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(seen["tapegrad"][1], [2.0, 0.0, 2.0])


def test_set_materialize_grads_false_passes_none():
    torch = _torch()
    seen = {}
    for L in (tg, torch):
        log = []

        class Two(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.set_materialize_grads(False)
                return x * 2, x * 3

            @staticmethod
            def backward(ctx, g1, g2):
                log.append((g1 is None, g2 is None))
                return (0 if g1 is None else 2 * g1) + (0 if g2 is None else 3 * g2)
        x = L.tensor([1.0, 2.0], requires_grad=True)
        Two.apply(x)[1].sum().backward()
        seen[L.__name__] = (log, x.grad.tolist())
    assert seen["tapegrad"] == seen["torch"] == ([(True, False)], [3.0, 3.0])


def test_saved_tensors_are_freed_after_backward_unless_retained():
    torch = _torch()
    for L in (tg, torch):
        fns = _fns(L)
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        y = fns["MyExp"].apply(x)
        y.sum().backward(retain_graph=True)
        assert len(y.grad_fn.saved_tensors) == 1
        y.sum().backward()
        np.testing.assert_allclose(np.array(x.grad.tolist()), 2 * np.exp([1.0, 2.0]))
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
        assert str(info.value).startswith("Trying to backward through the graph a second time")
        with pytest.raises(RuntimeError, match="Trying to backward through the graph"):
            y.grad_fn.saved_tensors

    still_works()


def test_the_graph_is_freed_by_reference_counting():
    """The node keeps no tensor of its tape: dropping the outputs frees the tape without the
    cycle collector (tapegrad's memory model)."""
    from tapegrad.state import thread_state
    from tapegrad.tape import Tape
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    y = TG["MyExp"].apply(x * 2)
    z = TG["SinCos"].apply(y)[0] * y
    tape = weakref.ref(z._tape)
    gc.disable()
    try:
        thread_state().tape = Tape()     # the graph's tape is no longer the current one
        del y, z
        assert tape() is None
    finally:
        gc.enable()


# ----- errors, in PyTorch's words ---------------------------------------------------------
def _fn(L, backward, forward=lambda ctx, a, *rest: a * 2):
    return type("F", (L.autograd.Function,), {"forward": staticmethod(forward),
                                              "backward": staticmethod(backward)})


def modified_output(L):
    x = L.tensor([1.0, 2.0], requires_grad=True)
    y = _fns(L)["MyExp"].apply(x)
    y.add_(1)
    y.sum().backward()


def modified_non_leaf_input(L):
    x = L.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = _fns(L)["MyReLU"].apply(h)
    h.mul_(3)
    y.sum().backward()


def modified_scalar_constant_input(L):
    h = L.tensor(2.0, dtype=L.float64)
    x = L.tensor(1.5, dtype=L.float64, requires_grad=True)
    y = _fns(L)["ScaledMul"].apply(x, 1.0, h)
    h.add_(1)
    y.backward()


def too_few_gradients(L):
    _fn(L, lambda ctx, g: ()).apply(L.ones(2, requires_grad=True)).sum().backward()


def too_many_gradients(L):
    _fn(L, lambda ctx, g: (g, g)).apply(L.ones(2, requires_grad=True)).sum().backward()


def gradient_for_a_number(L):
    _fn(L, lambda ctx, g: (g, g)).apply(L.ones(2, requires_grad=True), 3).sum().backward()


def gradient_of_wrong_shape(L):
    f = _fn(L, lambda ctx, g: (None, g[:1]), lambda ctx, k, a: a * k)
    f.apply(3, L.ones(2, requires_grad=True)).sum().backward()


def gradient_not_a_tensor(L):
    _fn(L, lambda ctx, g: 3.0).apply(L.ones(2, requires_grad=True)).sum().backward()


def save_a_number(L):
    _fn(L, lambda ctx, g: g, lambda ctx, a: (ctx.save_for_backward(3.0), a)[1]).apply(
        L.ones(2, requires_grad=True))


def no_backward(L):
    class NoBackward(L.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2
    NoBackward.apply(L.ones(2, requires_grad=True)).sum().backward()


def no_forward(L):
    class NoForward(L.autograd.Function):
        @staticmethod
        def backward(ctx, g):
            return g
    NoForward.apply(L.ones(2, requires_grad=True))


def legacy_call(L):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fns(L)["MyExp"]()(L.ones(2, requires_grad=True))


ERRORS = [modified_output, modified_non_leaf_input, modified_scalar_constant_input,
          too_few_gradients, too_many_gradients, gradient_for_a_number,
          gradient_of_wrong_shape, gradient_not_a_tensor, save_a_number, no_backward,
          no_forward, legacy_call]


def _message(L, scenario):
    try:
        scenario(L)
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None, None


@pytest.mark.parametrize("scenario", ERRORS, ids=[f.__name__ for f in ERRORS])
def test_errors_match_pytorch(scenario):
    torch = _torch()
    ttyp, tmsg = _message(torch, scenario)
    assert ttyp is not None, "PyTorch raised nothing"
    gtyp, gmsg = _message(tg, scenario)
    assert gtyp is ttyp
    assert gmsg == re.sub(r"\btorch\.(?=[A-Z])", "tapegrad.", tmsg)
    still_works()


def test_a_modified_saved_tensor_leaves_no_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = TG["MyExp"].apply(x)
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    assert x.grad is None


def test_broadcastable_and_float32_gradients_are_reduced_and_cast():
    torch = _torch()
    res = {}
    for L in (tg, torch):
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        f = _fn(L, lambda ctx, g: L.ones(3, 2, dtype=L.float32))
        f.apply(x).sum().backward()
        res[L.__name__] = (x.grad.dtype is L.float64, x.grad.tolist())
    assert res["tapegrad"] == res["torch"] == (True, [3.0, 3.0])


def test_inside_tg_compile_is_refused():
    fn = tg.compile(lambda x: TG["MyExp"].apply(x).sum())
    with pytest.raises(RuntimeError, match="tg.compile: a custom autograd.Function"):
        fn(tg.ones(2, requires_grad=True))
    still_works()


def test_mark_dirty_is_refused_clearly():
    class Dirty(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g
    with pytest.raises(NotImplementedError, match="mark_dirty"):
        Dirty.apply(tg.ones(2, requires_grad=True) * 1)
    assert tg.is_grad_enabled()
