"""``tg.autograd.grad`` and ``backward(inputs=...)`` as PyTorch's: what runs, what is freed,
which hooks are called, which ``.grad`` are filled.

PyTorch's engine executes only the nodes between the outputs and the inputs (its
``exec_info``): in ``grad()`` an input's own node runs only when another input lies below
it, nothing below the inputs runs (so nothing there is freed, and a later backward through
it works) and no hook there is called; a leaf input's hooks run, and what they return is the
gradient grad() returns; a retained tensor whose node is run or captured gets its ``.grad``.
``backward(inputs=...)`` runs the inputs' nodes themselves too (so a leaf input's hooks and
post-accumulate hooks run, and a non-leaf input's record is freed).

Each scenario is written once against a module ``L`` (``tapegrad`` or ``torch``); every test
checks tapegrad against closed forms, then against PyTorch where it is installed (values,
hook calls and error messages word for word).
"""
import warnings

import numpy as np
import pytest

import tapegrad as tg

pytestmark = pytest.mark.usefixtures("isolated")

SECOND_TIME = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or "
               "if you need to access saved tensors after calling backward.")

XV = [1.5, -2.0, 0.25]
WV = [0.5, -1.0, 2.0]


def _plain(v):
    """Tensors as nested lists (None and other values as they are), for comparing."""
    if isinstance(v, (list, tuple)):
        return [_plain(u) for u in v]
    if isinstance(v, dict):
        return {k: _plain(u) for k, u in v.items()}
    if hasattr(v, "detach"):
        return np.array(v.detach().numpy(), np.float64)
    return v


def _error(fn):
    try:
        fn()
    except (RuntimeError, ValueError, TypeError) as e:
        return f"{type(e).__name__}: {e}".replace("torch.", "tapegrad.")
    return None


def _same(mine, theirs):
    """Equal structure, the same messages and hook calls, values within 1e-10 (float64)."""
    if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
        assert isinstance(mine, np.ndarray) and isinstance(theirs, np.ndarray), (mine, theirs)
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    elif isinstance(mine, list):
        assert isinstance(theirs, list) and len(mine) == len(theirs), (mine, theirs)
        for a, b in zip(mine, theirs):
            _same(a, b)
    elif isinstance(mine, dict):
        assert isinstance(theirs, dict) and mine.keys() == theirs.keys(), (mine, theirs)
        for k in mine:
            _same(mine[k], theirs[k])
    else:
        assert mine == theirs


def _as_pytorch(scenario, mine):
    """Runs the scenario with PyTorch and compares (skips where PyTorch is not installed)."""
    torch = pytest.importorskip("torch")
    _same(_plain(mine), _plain(scenario(torch)))


def _x(L, v=XV):
    return L.tensor(v, dtype=L.float64, requires_grad=True)


# ----- 1. grad() runs (and frees) only what lies between the outputs and the inputs ------------
@pytest.mark.parametrize("scalar", [False, True])
def test_grad_wrt_a_nonleaf_leaves_its_graph_below_usable(scalar):
    def scenario(L):
        x = L.tensor(1.5 if scalar else XV, dtype=L.float64, requires_grad=True)
        h = x * x
        y = (h * h).sum()
        (gh,) = L.autograd.grad(y, h)
        h.sum().backward()           # h's record (x*x) was not run: it still works
        return [gh, x.grad, _error(lambda: L.autograd.grad(y, h))]   # y's record was
    mine = scenario(tg)
    x = np.array(1.5 if scalar else XV)
    np.testing.assert_allclose(_plain(mine[0]), 2 * x ** 2, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), 2 * x, rtol=1e-14)
    assert mine[2] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


def test_grad_with_several_inputs_runs_what_leads_to_them():
    """h = e^x sin(wx), y = sum h^2, grad(y, [h, w]): the exp record leads to no input (it
    lies below h; x is not asked for), so a backward through it works afterwards; the
    records of y ran and were freed."""
    def scenario(L):
        x, w = _x(L), _x(L, WV)
        a = x.exp()
        h = a * (w * x).sin()
        y = (h * h).sum()
        gh, gw = L.autograd.grad(y, [h, w])
        a.sum().backward()
        return [gh, gw, x.grad, w.grad, _error(lambda: y.backward())]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    h = np.exp(x) * np.sin(w * x)
    np.testing.assert_allclose(_plain(mine[0]), 2 * h, rtol=1e-13)
    np.testing.assert_allclose(_plain(mine[1]), 2 * h * np.exp(x) * np.cos(w * x) * x,
                               rtol=1e-13)
    np.testing.assert_allclose(_plain(mine[2]), np.exp(x), rtol=1e-14)
    assert mine[3] is None
    assert mine[4] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


def test_grad_runs_an_inputs_record_when_another_input_lies_below():
    """grad(y, [k, h]) with k = h*h: k's record leads to h, so it runs (and is freed); h's
    own record (sin) leads to no input and stays usable."""
    def scenario(L):
        x = _x(L)
        h = x.sin()
        k = h * h
        y = (k * k).sum()
        gk, gh = L.autograd.grad(y, [k, h])
        again = _error(lambda: L.autograd.grad(k.sum(), h))
        h.sum().backward()
        return [gk, gh, again, x.grad]
    mine = scenario(tg)
    x = np.array(XV)
    k = np.sin(x) ** 2
    np.testing.assert_allclose(_plain(mine[0]), 2 * k, rtol=1e-13)
    np.testing.assert_allclose(_plain(mine[1]), 4 * k * np.sin(x), rtol=1e-13)
    assert mine[2] == "RuntimeError: " + SECOND_TIME
    np.testing.assert_allclose(_plain(mine[3]), np.cos(x), rtol=1e-14)
    _as_pytorch(scenario, mine)


def test_grad_wrt_a_leaf_leaves_a_side_branch_usable():
    """y = sum x^2 e^w, grad(y, x): the exp record leads to no input and is not run."""
    def scenario(L):
        x, w = _x(L), _x(L, WV)
        c = w.exp()
        y = (x * x * c).sum()
        (gx,) = L.autograd.grad(y, x)
        c.sum().backward()
        return [gx, w.grad]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    np.testing.assert_allclose(_plain(mine[0]), 2 * x * np.exp(w), rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), np.exp(w), rtol=1e-14)
    _as_pytorch(scenario, mine)


def test_grad_wrt_a_leaf_frees_everything_above_it():
    def scenario(L):
        x = _x(L)
        h = x * x
        y = (h * h).sum()
        (gx,) = L.autograd.grad(y, x)
        return [gx, _error(lambda: h.sum().backward()), _error(lambda: L.autograd.grad(y, x))]
    mine = scenario(tg)
    np.testing.assert_allclose(_plain(mine[0]), 4 * np.array(XV) ** 3, rtol=1e-14)
    assert mine[1] == mine[2] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


def test_grad_with_retain_graph_frees_nothing():
    def scenario(L):
        x = _x(L)
        h = x * x
        y = (h * h).sum()
        first = L.autograd.grad(y, h, retain_graph=True)
        second = L.autograd.grad(y, [h, x])
        return [first, second]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0][0]), 2 * x ** 2, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1][1]), 4 * x ** 3, rtol=1e-14)
    _as_pytorch(scenario, mine)


def test_grad_across_a_link_to_an_older_tape():
    """a was made before a backward (a new tape starts after it); h = 3a links back. grad(y,
    h) does not run a's record: a backward through it afterwards works."""
    def scenario(L):
        x = _x(L)
        a = x * x
        a.sum().backward(retain_graph=True)
        x.grad = None
        h = a * 3
        y = (h * h).sum()
        (gh,) = L.autograd.grad(y, h)
        a.sum().backward()
        gx = x.grad
        h2 = a * 3
        y2 = (h2 * h2).sum()
        (gh2,) = L.autograd.grad(y2, h2, retain_graph=True)    # not through a: works
        return [gh, gx, gh2, _error(lambda: L.autograd.grad(y2, x)),   # a's record was
                _error(lambda: a.sum().backward())]                   # freed by a.sum()
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 6 * x ** 2, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), 2 * x, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[2]), 6 * x ** 2, rtol=1e-14)
    assert mine[3] == mine[4] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


def test_grad_under_anomaly_mode_runs_the_same_records():
    def scenario(L):
        x = _x(L)
        h = x.exp()
        y = (h * h).sum()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with L.autograd.detect_anomaly():
                (gh,) = L.autograd.grad(y, h)
        h.sum().backward()
        return [gh, x.grad]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 2 * np.exp(x), rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), np.exp(x), rtol=1e-14)
    _as_pytorch(scenario, mine)


def test_grad_does_not_call_a_custom_functions_backward_below_the_inputs():
    def scenario(L):
        calls = []

        class Cube(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, g):
                calls.append("Cube")
                (x,) = ctx.saved_tensors
                return 3 * x ** 2 * g
        x = _x(L)
        h = Cube.apply(x)
        y = (h * h).sum()
        (gh,) = L.autograd.grad(y, h)
        below = list(calls)
        h.sum().backward()
        return [gh, below, calls, x.grad]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 2 * x ** 3, rtol=1e-14)
    assert mine[1] == [] and mine[2] == ["Cube"]
    np.testing.assert_allclose(_plain(mine[3]), 3 * x ** 2, rtol=1e-14)
    _as_pytorch(scenario, mine)


# ----- 2. hooks -----------------------------------------------------------------------------
def test_grad_runs_a_leaf_inputs_hooks_and_returns_what_they_return():
    def scenario(L):
        seen = []
        x = _x(L)
        x.register_hook(lambda g: seen.append(g.detach().clone()) or g * 10)
        x.register_post_accumulate_grad_hook(lambda t: seen.append("post"))
        (gx,) = L.autograd.grad((x * x).sum(), x)
        return [gx, seen, x.grad]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 20 * x, rtol=1e-14)
    assert len(mine[1]) == 1          # called once, with the gradient; no post hook
    np.testing.assert_allclose(_plain(mine[1][0]), 2 * x, rtol=1e-14)
    assert mine[2] is None
    _as_pytorch(scenario, mine)


def test_a_leaf_inputs_hooks_run_once_for_the_sum_of_all_outputs_and_duplicates():
    def scenario(L):
        seen = []
        x = _x(L)
        x.register_hook(lambda g: seen.append(g.detach().clone()) or g + 1)
        x.register_hook(lambda g: None)             # returns nothing: the gradient stays
        got = L.autograd.grad([(x * x).sum(), (x * 3).sum()], [x, x])
        return [got, seen]
    mine = scenario(tg)
    x = np.array(XV)
    for g in mine[0]:
        np.testing.assert_allclose(_plain(g), 2 * x + 3 + 1, rtol=1e-14)
    assert len(mine[1]) == 1
    np.testing.assert_allclose(_plain(mine[1][0]), 2 * x + 3, rtol=1e-14)
    _as_pytorch(scenario, mine)


def test_grad_of_a_leaf_with_respect_to_itself_runs_its_hook():
    def scenario(L):
        x = _x(L)
        x.register_hook(lambda g: g * 10)
        return L.autograd.grad(x, x, L.ones(3, dtype=L.float64))
    mine = scenario(tg)
    np.testing.assert_allclose(_plain(mine[0]), [10.0] * 3)
    _as_pytorch(scenario, mine)


def test_grad_runs_a_nonleaf_inputs_hook_and_no_hook_below_or_beside():
    def scenario(L):
        seen = []
        x, w = _x(L), _x(L, WV)
        w.register_hook(lambda g: seen.append("w") or g)       # a leaf, not an input
        z = x * 2
        z.register_hook(lambda g: seen.append("z") or g)       # below the input h
        h = z * 3
        h.register_hook(lambda g: seen.append("h") or g * 10)
        y = (h * h * w).sum()
        (gh,) = L.autograd.grad(y, h)
        return [gh, seen]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    np.testing.assert_allclose(_plain(mine[0]), 10 * 2 * 6 * x * w, rtol=1e-14)
    assert mine[1] == ["h"]
    _as_pytorch(scenario, mine)


def test_an_unused_inputs_hook_does_not_run():
    def scenario(L):
        seen = []
        x, z = _x(L), _x(L, WV)
        z.register_hook(lambda g: seen.append("z") or g)
        h = x * 2
        y = (h * h).sum()
        got = L.autograd.grad(y, [x, z], allow_unused=True, retain_graph=True)
        mat = L.autograd.grad(y, [h, z], materialize_grads=True)
        return [got, mat, seen]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0][0]), 8 * x, rtol=1e-14)
    assert mine[0][1] is None
    np.testing.assert_allclose(_plain(mine[1][0]), 4 * x, rtol=1e-14)
    np.testing.assert_array_equal(_plain(mine[1][1]), np.zeros(3))
    assert mine[2] == []
    _as_pytorch(scenario, mine)


def test_grad_outputs_and_a_leaf_hook():
    def scenario(L):
        x = _x(L)
        x.register_hook(lambda g: g * 2)
        h = x * 2
        y = h * h
        v1 = L.tensor([1.0, 2.0, 3.0], dtype=L.float64)
        v2 = L.tensor([3.0, 4.0, 5.0], dtype=L.float64)
        return L.autograd.grad([y, h], x, grad_outputs=[v1, v2])
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 2 * (8 * x * [1, 2, 3] + 2 * np.array([3, 4, 5])),
                               rtol=1e-14)
    _as_pytorch(scenario, mine)


def test_create_graph_with_a_leaf_hook_then_a_first_order_grad():
    """The hook scales both gradients: g = 10 * 2x, then d(sum g)/dx = 20, hooked: 200."""
    def scenario(L):
        x = _x(L)
        x.register_hook(lambda g: g * 10)
        (g,) = L.autograd.grad((x * x).sum(), x, create_graph=True)
        (gg,) = L.autograd.grad(g.sum(), x)
        return [g, gg, g.requires_grad]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 20 * x, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), [200.0] * 3)
    assert mine[2] is True
    _as_pytorch(scenario, mine)


def test_create_graph_grad_wrt_a_nonleaf_then_backward_below_it():
    def scenario(L):
        x = _x(L)
        h = x * x
        y = (h * h).sum()
        (g,) = L.autograd.grad(y, h, create_graph=True)
        h.sum().backward()
        first = x.grad.detach().clone()
        gh = L.autograd.grad(g.sum(), h, retain_graph=True)   # g = 2h: d(sum g)/dh = 2
        # create_graph kept y's graph, but g = 2h reaches x through h's record, which
        # h.sum().backward() freed
        return [g, first, gh, _error(lambda: g.sum().backward())]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 2 * x ** 2, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), 2 * x, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[2][0]), [2.0] * 3)
    assert mine[3] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


# ----- 3. retained grads ---------------------------------------------------------------------
def test_grad_fills_retained_grads_on_its_way_as_pytorch():
    """PyTorch's retain_grad is a hook of the tensor's node: grad() runs it for the nodes it
    runs or captures (k above the input h, h itself), not below or beside."""
    def scenario(L):
        x, w = _x(L), _x(L, WV)
        a = x * 2
        a.retain_grad()              # below the input
        c = w * w
        c.retain_grad()              # beside: leads to no input
        h = a * 3
        h.retain_grad()              # the input
        k = h * 2
        k.retain_grad()              # above
        y = (k * k * c).sum()
        (gh,) = L.autograd.grad(y, h, retain_graph=True)
        after_h = [None if t.grad is None else t.grad.detach().clone() for t in (a, c, h, k)]
        (gx,) = L.autograd.grad(y, x)
        after_x = [None if t.grad is None else t.grad.detach().clone() for t in (a, c, h, k)]
        return [gh, after_h, gx, after_x]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    h, c = 6 * x, w * w
    k = 2 * h
    gk = 2 * k * c
    np.testing.assert_allclose(_plain(mine[0]), 2 * gk, rtol=1e-14)
    assert mine[1][0] is None and mine[1][1] is None
    np.testing.assert_allclose(_plain(mine[1][2]), 2 * gk, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1][3]), gk, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[2]), 12 * gk, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[3][0]), 6 * gk, rtol=1e-14)   # now on the way
    assert mine[3][1] is None
    np.testing.assert_allclose(_plain(mine[3][2]), 4 * gk, rtol=1e-14)   # accumulated
    np.testing.assert_allclose(_plain(mine[3][3]), 2 * gk, rtol=1e-14)
    _as_pytorch(scenario, mine)


# ----- 4. the arguments ----------------------------------------------------------------------
def test_grad_arguments_as_pytorch():
    def scenario(L):
        x = _x(L)
        y = (x * x).sum()
        out = [_error(lambda: L.autograd.grad(y, x, allow_unused=False, materialize_grads=True)),
               _error(lambda: L.autograd.grad(y, [])),
               _error(lambda: L.autograd.grad(y, x, grad_outputs=L.ones(2, dtype=L.float64)))]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            d = L.autograd.grad(y, {"x": x}, None, True, False, False)   # only_inputs=False
        out.append([str(w.message) for w in caught if w.category is FutureWarning])
        out.append(d)
        return out
    mine = scenario(tg)
    assert mine[0] == ("ValueError: Expected allow_unused to be True or not passed when "
                       "materialize_grads=True, but got: allow_unused=False.")
    assert mine[1] == "RuntimeError: `inputs` argument to `grad()` cannot be empty."
    assert mine[2].startswith("RuntimeError: Mismatch in shape")
    assert mine[3] == ["only_inputs argument is deprecated and is ignored now (defaults to "
                       "True). To accumulate gradient for other parts of the graph, please "
                       "use torch.autograd.backward."]
    assert list(mine[4]) == ["x"]
    np.testing.assert_allclose(_plain(mine[4]["x"]), 2 * np.array(XV), rtol=1e-14)
    _as_pytorch(scenario, mine)


def test_is_grads_batched_says_it_is_not_supported():
    x = _x(tg)
    with pytest.raises(NotImplementedError, match="is_grads_batched"):
        tg.autograd.grad((x * x).sum(), x, is_grads_batched=True)


# ----- 5. backward(inputs=...) ---------------------------------------------------------------
def test_backward_inputs_runs_the_inputs_records_and_nothing_below():
    """PyTorch runs a non-leaf input's node in backward(inputs=...) (so it is freed) and
    nothing below it or beside."""
    def scenario(L):
        seen = []
        x, w = _x(L), _x(L, WV)
        c = w.exp()
        z = x * 2
        z.register_hook(lambda g: seen.append("z") or g)
        h = z * 3
        h.register_hook(lambda g: seen.append("h") or g)
        y = (h * h * c).sum()
        y.backward(inputs=[h])
        with warnings.catch_warnings():
            warnings.simplefilter("error")      # h now retains its grad: no warning
            hg = h.grad.detach().clone()
        c.sum().backward()               # beside: not run, still usable
        return [hg, x.grad, w.grad, list(seen), _error(lambda: h.sum().backward()),
                h.retains_grad]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    np.testing.assert_allclose(_plain(mine[0]), 12 * x * np.exp(w), rtol=1e-14)
    assert mine[1] is None
    np.testing.assert_allclose(_plain(mine[2]), np.exp(w), rtol=1e-14)
    assert mine[3] == ["h"]
    assert mine[4] == "RuntimeError: " + SECOND_TIME
    assert mine[5] is True
    _as_pytorch(scenario, mine)


def test_backward_inputs_runs_a_leaf_inputs_hooks_once():
    def scenario(L):
        seen = []
        x, w = _x(L), _x(L, WV)
        x.register_hook(lambda g: seen.append("x") or g * 3)
        x.register_post_accumulate_grad_hook(lambda t: seen.append(("post", _plain(t.grad))))
        w.register_hook(lambda g: seen.append("w") or g)
        (x * x * w).sum().backward(inputs=[x, x])
        first = x.grad.detach().clone()
        (x * x * w).sum().backward(inputs=x)
        return [first, x.grad, w.grad, seen]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    np.testing.assert_allclose(_plain(mine[0]), 6 * x * w, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), 12 * x * w, rtol=1e-14)
    assert mine[2] is None
    assert [s if isinstance(s, str) else s[0] for s in mine[3]] == ["x", "post", "x", "post"]
    _as_pytorch(scenario, mine)


def test_backward_inputs_gives_a_retained_input_its_grad_once():
    def scenario(L):
        x = _x(L)
        h = x * x
        h.retain_grad()
        k = h * 2
        k.retain_grad()
        (k * k).sum().backward(inputs=[h])
        return [h.grad, k.grad, x.grad]
    mine = scenario(tg)
    x = np.array(XV)
    np.testing.assert_allclose(_plain(mine[0]), 8 * x ** 2, rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), 4 * x ** 2, rtol=1e-14)
    assert mine[2] is None
    _as_pytorch(scenario, mine)


def test_grad_through_a_custom_function_and_a_stack_stops_at_the_input():
    """y = sum(stack([cube(a), 2a])^2), a = e^x: grad(y, a) runs the Function's backward
    and the stack's (multi-operand records), not the exp record below a."""
    def scenario(L):
        calls = []

        class Cube(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, g):
                calls.append("Cube")
                (x,) = ctx.saved_tensors
                return 3 * x ** 2 * g
        x = _x(L)
        a = x.exp()
        s = L.stack([Cube.apply(a), a * 2])
        y = (L.cat([s, s[:1]]) ** 2).sum()
        (ga,) = L.autograd.grad(y, a)
        a.sum().backward()
        return [ga, x.grad, calls, _error(lambda: y.backward())]
    mine = scenario(tg)
    a = np.exp(np.array(XV))
    np.testing.assert_allclose(_plain(mine[0]), 12 * a ** 5 + 8 * a, rtol=1e-13)
    np.testing.assert_allclose(_plain(mine[1]), a, rtol=1e-14)
    assert mine[2] == ["Cube"]
    assert mine[3] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


def test_grad_runs_no_link_towards_a_tape_without_inputs():
    """e = e^(x^2) was made before a backward, so later records reach it through a link
    to an older tape, where no input is. grad(y, w) does not run s = sin(e)'s record,
    which leads only there: a backward through it afterwards works."""
    def scenario(L):
        x = _x(L)
        e = (x * x).exp()
        e.sum().backward(retain_graph=True)
        x.grad = None
        w = _x(L, WV)
        s = e.sin()
        y = (s * w).sum()
        (gw,) = L.autograd.grad(y, w)
        s.sum().backward()
        return [gw, x.grad]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    e = np.exp(x * x)
    np.testing.assert_allclose(_plain(mine[0]), np.sin(e), rtol=1e-14)
    np.testing.assert_allclose(_plain(mine[1]), np.cos(e) * e * 2 * x, rtol=1e-13)
    _as_pytorch(scenario, mine)


def test_grad_runs_the_links_towards_an_input_on_an_older_tape():
    def scenario(L):
        x = _x(L)
        a = x * x
        a.sum().backward(retain_graph=True)
        w = _x(L, WV)
        y = (a.exp() * w).sum()
        gx, gw = L.autograd.grad(y, [x, w])
        return [gx, gw, _error(lambda: L.autograd.grad(y, w))]
    mine = scenario(tg)
    x, w = np.array(XV), np.array(WV)
    np.testing.assert_allclose(_plain(mine[0]), 2 * x * np.exp(x * x) * w, rtol=1e-13)
    np.testing.assert_allclose(_plain(mine[1]), np.exp(x * x), rtol=1e-14)
    assert mine[2] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


# ----- a root's hooks (found by tests/test_lifetimes_fuzz.py) -------------------------------------
@pytest.mark.parametrize("how", ["grad", "backward_inputs", "grad_leaf_root",
                                 "backward_inputs_leaf_root", "retained_root"])
def test_a_roots_hooks_run_even_when_it_leads_to_no_input(how):
    """PyTorch always calls the tensor hooks (and the retain_grad hook) of the node it starts
    from, needed or not (engine.cpp: 'We always want to call tensor pre-hooks'); tapegrad
    skipped them when the root led to no input."""
    def scenario(L):
        seen = []
        x, w = _x(L), _x(L, WV)
        y = (x * x).sum()
        if how.endswith("leaf_root"):
            y = L.tensor(2.0, dtype=L.float64, requires_grad=True)
        if how == "retained_root":
            y.retain_grad()
        else:
            y.register_hook(lambda g: seen.append(_plain(g)) or g * 2)
        if how.startswith("grad"):
            got = L.autograd.grad(y, [w], allow_unused=True)
        else:
            got = y.backward(inputs=[w])
        return [got, seen, w.grad, x.grad, y.grad if how == "retained_root" else None]
    mine = scenario(tg)
    if how == "retained_root":
        assert mine[4] == 1.0
    else:
        assert mine[1] == [1.0]
    _as_pytorch(scenario, mine)


@pytest.mark.parametrize("create_graph", [False, True])
def test_grad_of_an_output_with_respect_to_itself_after_its_graph_was_freed(create_graph):
    """grad(y, y) runs no record (y's own is captured, not run), so it works after a
    backward freed y's graph; with create_graph=True tapegrad checked y's own record and
    raised (found by tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        x = _x(L)
        y = x.exp().sum() * x.exp().sum()
        y.backward()
        got = L.autograd.grad(y, [y], create_graph=create_graph)
        return [got, _error(lambda: L.autograd.grad(y, [x], create_graph=create_graph))]
    mine = scenario(tg)
    assert _plain(mine[0])[0] == 1.0
    assert mine[1] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_needed_inputs_gradient_is_captured_before_its_hooks(create_graph):
    """PyTorch captures a non-leaf input's gradient before calling its node when the node
    runs (another input lies below: the hooks run with the node), after the hooks when it
    does not (engine.cpp, NOTE [Hooks ordering]); tapegrad always returned it after the
    hooks (found by tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        x = L.tensor(-0.67, dtype=L.float64, requires_grad=True)
        h = x * 3
        k = h * 2
        h.register_hook(lambda g: g * 10)
        out = [L.autograd.grad(k, [h], retain_graph=True, create_graph=create_graph),
               L.autograd.grad(k, [h, x], retain_graph=True, create_graph=create_graph)]
        k.register_hook(lambda g: g * 10)
        out += [L.autograd.grad(k, [k], retain_graph=True, create_graph=create_graph),
                L.autograd.grad(k, [k, x], retain_graph=True, create_graph=create_graph)]
        return out
    mine = _plain(scenario(tg))
    assert [[float(v) for v in r] for r in mine] == [[20.0], [2.0, 60.0], [10.0],
                                                     [1.0, 600.0]]
    _as_pytorch(scenario, mine)


def test_grad_through_a_link_runs_no_hook_and_fills_no_grad_of_what_leads_nowhere():
    """y on a newer tape continues into h on the tape of x (a backward came between); grad(y,
    [w]) with w beside h on that older tape: the sweep there starts at h (a link's root, not an
    output), which leads to no input: h's hook is not called and h.grad stays as it was, as
    PyTorch (found by tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        seen = []
        x, w = _x(L), _x(L, WV)
        h = x.sum()
        v = x / w
        h.backward(inputs=[h, x])              # h retains its grad; the next tape starts
        h.register_hook(lambda g: seen.append(_plain(g)))
        y = h.cos() ** 2
        got = L.autograd.grad(y, [y, v], retain_graph=True, allow_unused=True)
        return [got, h.grad, seen]
    mine = scenario(tg)
    assert mine[1] == 1.0 and mine[2] == []
    _as_pytorch(scenario, mine)


@pytest.mark.parametrize("create_graph", [False, True])
def test_grad_with_respect_to_a_result_of_a_freed_graph_through_a_link(create_graph):
    """p's graph was freed; r = p.exp() is on the next tape (a link to p). grad(r, [p]) needs
    nothing of p's graph (p's own record is captured, not run), as PyTorch; tapegrad raised
    the second-time error for the link (found by tests/test_lifetimes_fuzz.py)."""
    def scenario(L):
        x = L.tensor(-1.98, dtype=L.float64, requires_grad=True)
        p = x * x
        p.backward()
        r = p.exp()
        got = L.autograd.grad(r, [p], retain_graph=True, create_graph=create_graph)
        return [got, _error(lambda: L.autograd.grad(r, [x], create_graph=create_graph))]
    mine = scenario(tg)
    assert mine[1] == "RuntimeError: " + SECOND_TIME
    _as_pytorch(scenario, mine)


def test_grad_with_create_graph_runs_a_leaf_roots_hooks():
    """As without create_graph (test_a_roots_hooks_run_even_when_it_leads_to_no_input)."""
    def scenario(L):
        seen = []
        x, w = _x(L), L.tensor(2.0, dtype=L.float64, requires_grad=True)
        w.register_hook(lambda g: seen.append(_plain(g)))
        got = L.autograd.grad(w, [x], allow_unused=True, create_graph=True)
        return [got, seen]
    mine = scenario(tg)
    assert mine[1] == [1.0]
    _as_pytorch(scenario, mine)
