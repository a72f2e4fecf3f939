"""tg.compile: a call with the same argument tensors as the last one, changed between the
calls in a way a replay must see (requires_grad switched off, a leaf made a non-leaf, a
float32 tensor in an argument's place, a new value array, a grad the user assigned, hooks,
a Python argument, a captured tensor's value). Every scenario runs on two identical sets of
tensors, one through the compiled function, one eagerly, and compares values, grads and
the compiled function's counts after each call: the first calls make the run of calls
with the very same tensors that a replay may check quickly; the change comes after."""
import numpy as np
import pytest

import tapegrad as tg

F64 = tg.float64


def _same(a, b):
    if a is None or b is None:
        assert a is None and b is None, (a, b)
        return
    assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def _run_both(fn, make, change, calls_before=4, calls_after=3, backward=True):
    """Calls compiled fn and fn on two sets of arguments from make(), calls_before times,
    then change(args, keep) on each set, then calls_after more calls; values and grads
    compared after each call. Before each call the leaves' grads are set to None, but for
    the tensors change() put in ``keep`` (a set of ids). Returns the compiled function."""
    f = tg.compile(fn)
    sets = [make(), make()]
    keep = set()
    for k in range(calls_before + calls_after):
        if k == calls_before:
            for args in sets:
                change(args, keep)
        outs = []
        for g, args in zip((f, fn), sets):
            for a in args:
                if isinstance(a, tg.Tensor) and a.is_leaf and a.requires_grad and \
                        id(a) not in keep:
                    a.grad = None
            out = g(*args)
            if backward and out.requires_grad:
                out.backward()
            outs.append(out)
        _same(outs[0], outs[1])
        for a, b in zip(*sets):
            if isinstance(a, tg.Tensor):
                assert a.is_leaf == b.is_leaf and a.requires_grad == b.requires_grad
                if a.is_leaf:
                    _same(a.grad, b.grad)
                _same(a, b)
    return f


def _scalars(n=5, seed=0):
    rng = np.random.default_rng(seed)
    vals = rng.uniform(-1, 1, n).tolist()
    return lambda: [tg.tensor(v, dtype=F64, requires_grad=True) for v in vals]


def _poly(*xs):
    acc = xs[0]
    for x in xs[1:]:
        acc = acc * xs[-1] + x
    return acc


def _counts(f):
    s = f.stats()
    return s["recordings"], s["replays"], s["guard_failures"], s["eager_calls"]


LAST = None


def test_same_tensors_replay_with_their_new_values():
    def change(args, keep):
        with tg.no_grad():
            args[0].copy_(tg.tensor(0.25, dtype=F64))     # a new Python float in _v
            args[2].mul_(3.0)
    f = _run_both(_poly, _scalars(), change)
    assert _counts(f) == (1, 6, 0, 0)


def test_requires_grad_switched_off_between_calls():
    def change(args, keep):
        args[1].requires_grad_(False)
    f = _run_both(_poly, _scalars(), change)
    assert _counts(f) == (2, 5, 0, 0)


def test_requires_grad_switched_off_of_an_unused_argument():
    def fn(a, b, c):
        return a * b

    def change(args, keep):
        args[2].requires_grad_(False)
    f = _run_both(fn, _scalars(3), change)
    assert _counts(f) == (2, 5, 0, 0)


def test_leaf_made_a_non_leaf_by_an_in_place_op():
    def make():
        a, b, c = _scalars(3, 1)()
        c.requires_grad_(False)     # a constant argument, then a result of b
        return [a, b, c]

    def change(args, keep):
        args[2].add_(args[1])
    f = _run_both(_poly, make, change, calls_after=1)
    assert _counts(f) == (2, 3, 0, 0)


def test_argument_replaced_by_a_float32_tensor():
    def change(args, keep):
        args[3] = tg.tensor(args[3].item(), dtype=tg.float32, requires_grad=True)
    f = _run_both(_poly, _scalars(), change)
    assert _counts(f) == (2, 5, 0, 0)


def test_argument_replaced_by_another_tensor_of_its_kind():
    def change(args, keep):
        args[0] = tg.tensor(0.5, dtype=F64, requires_grad=True)
    f = _run_both(_poly, _scalars(), change)
    assert _counts(f) == (1, 6, 0, 0)


def test_value_array_replaced_same_shape():
    def make():
        return [tg.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True),
                tg.tensor([[0.5, 1.5, -1.0]], dtype=F64)]

    def change(args, keep):
        args[1].data = tg.tensor([[2.0, -0.5, 4.0]], dtype=F64)
    f = _run_both(lambda w, x: (w * x).sum(), make, change)
    assert _counts(f) == (1, 6, 0, 0)


def test_value_array_replaced_by_another_shape():
    def make():
        return [tg.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True),
                tg.tensor([0.5, 1.5, -1.0], dtype=F64)]

    def change(args, keep):
        args[1].data = tg.tensor([[2.0, -0.5, 4.0], [1.0, 1.0, 1.0]], dtype=F64)
    f = _run_both(lambda w, x: (w * x).sum(), make, change)
    assert _counts(f) == (2, 5, 0, 0)


def test_value_array_replaced_by_another_dtype():
    def make():
        return [tg.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True),
                tg.tensor([0.5, 1.5, -1.0], dtype=F64)]

    def change(args, keep):
        args[1].data = tg.tensor([2.0, -0.5, 4.0], dtype=tg.float32)
    f = _run_both(lambda w, x: (w * x).sum(), make, change)
    assert _counts(f) == (2, 5, 0, 0)


def test_value_array_replaced_by_a_non_contiguous_one():
    def make():
        return [tg.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True),
                tg.tensor([0.5, 1.5, -1.0], dtype=F64)]

    def change(args, keep):
        args[1].data = tg.tensor([2.0, 9.0, -0.5, 9.0, 4.0, 9.0], dtype=F64)[::2]
    f = _run_both(lambda w, x: (w * x).sum(), make, change)
    assert _counts(f) == (1, 6, 0, 0)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_scalar_value_replaced_by_a_0d_array_value(requires_grad):
    # the leaf keeps the kind of value its grad storage was made for (a Python float):
    # the call replays (a leaf that requires grad crashed here before 7295bc9)
    def make():
        args = _scalars()()
        args[1].requires_grad_(requires_grad)
        return args

    def change(args, keep):
        value = tg.tensor([0.75], dtype=F64).reshape(())
        assert type(value._v) is np.ndarray     # (a 0-d tensor whose value is an array)
        args[1].data = value
        assert type(args[1]._v) is float and args[1].item() == 0.75
    f = _run_both(_poly, make, change)
    assert _counts(f) == (1, 6, 0, 0)


def test_constant_argument_replaced_by_another():
    def make():
        a, b, c = _scalars(3, 2)()
        c.requires_grad_(False)
        return [a, b, c]

    def change(args, keep):
        args[2] = tg.tensor(-3.5, dtype=F64)
    f = _run_both(_poly, make, change)
    assert _counts(f) == (1, 6, 0, 0)


def _step_fn(w, b, x):
    loss = ((w * x - 1.0) ** 2).sum() + (b * w.sum()) ** 2
    loss.backward()
    with tg.no_grad():
        for t in (w, b):
            if t.requires_grad:
                t.sub_(0.1 * t.grad)
                t.grad = None
    return loss.detach()


@pytest.mark.parametrize("what", ["grad", "hook", "post_hook", "requires_grad", "strided"])
def test_step_with_a_leaf_changed_between_calls(what):
    """A compiled step (backward inside): a leaf given a grad of the user's, hooks, or
    requires_grad switched off, a non-contiguous array made an input's value between
    calls. (A grad of the user's: the step reads
    w.grad after backward, which eagerly is the user's tensor with the backward's grad
    added; the replay read the leaf's own storage, without the user's part, so that call
    runs eagerly.)"""
    def make():
        return [tg.tensor([0.5, -1.0, 2.0], dtype=F64, requires_grad=True),
                tg.tensor(0.3, dtype=F64, requires_grad=True),
                tg.tensor([2.0, 1.0, -1.0], dtype=F64)]
    seen = []

    def change(args, keep):
        w = args[0]
        if what == "grad":
            keep.add(id(w))
            w.grad = tg.tensor([1.0, 1.0, 1.0], dtype=F64)
        elif what == "hook":
            w.register_hook(lambda g: seen.append(1) or g * 0.5)
        elif what == "post_hook":
            w.register_post_accumulate_grad_hook(lambda t: seen.append(2))
        elif what == "strided":     # x's values now every other element of an array
            args[2].data = tg.tensor([0.25, 9.0, -0.5, 9.0, 1.5, 9.0], dtype=F64)[::2]
        else:
            args[1].requires_grad_(False)
    f = _run_both(_step_fn, make, change, backward=False)
    if what in ("hook", "post_hook"):
        assert len(seen) == 6           # three calls, each set's
    global LAST
    LAST = _counts(f)
    assert LAST == {"grad": (2, 4, 0, 1), "hook": (2, 2, 0, 3), "post_hook": (2, 2, 0, 3),
                    "requires_grad": (4, 3, 0, 0), "strided": (2, 5, 0, 0)}[what]


def test_user_assigned_grad_is_added_into():
    def change(args, keep):
        keep.add(id(args[1]))
        args[1].grad = tg.tensor(10.0, dtype=F64)
    f = _run_both(_poly, _scalars(), change)
    assert _counts(f) == (1, 6, 0, 0)


def test_user_assigned_grad_of_an_array_leaf():
    def make():
        return [tg.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True),
                tg.tensor([0.5, 1.5, -1.0], dtype=F64)]

    def change(args, keep):
        keep.add(id(args[0]))
        args[0].grad = tg.tensor([1.0, 2.0, 3.0], dtype=F64)
    f = _run_both(lambda w, x: (w * x).sum(), make, change)
    assert _counts(f) == (1, 6, 0, 0)


@pytest.mark.parametrize("post", [False, True])
def test_hooks_run_eagerly(post):
    def change(args, keep):
        if post:
            args[2].register_post_accumulate_grad_hook(lambda t: t.grad.mul_(2.0))
        else:
            args[2].register_hook(lambda g: g * 3.0)
    f = _run_both(_poly, _scalars(), change)
    assert _counts(f) == (1, 6, 0, 0)   # (replayed: the hooks run from its backward)


def test_python_argument_changed():
    def fn(a, b, n):
        return a * n + b if n > 1 else a - b

    def change(args, keep):
        args[2] = 1
    make = _scalars(2)
    f = _run_both(fn, lambda: make() + [3], change)
    assert _counts(f) == (2, 5, 0, 0)


def test_captured_tensor_value_replaced():
    w = tg.tensor([1.0, 2.0], dtype=F64)

    def fn(a, b):
        return (a * w + b).sum()
    f = tg.compile(fn)
    a, b = _scalars(2)()
    for k in range(6):
        if k == 3:
            w.data = tg.tensor([3.0, -4.0], dtype=F64)
        a.grad = b.grad = None
        out = f(a, b)
        out.backward()
        got = (a.grad.item(), b.grad.item())
        a.grad = b.grad = None
        want = fn(a, b)
        want.backward()
        _same(out, want)
        assert got == (a.grad.item(), b.grad.item())
    assert _counts(f) == (1, 5, 0, 0)


def test_captured_leaf_given_a_new_node():
    """A captured leaf whose requires_grad went off and on again (a new leaf node, its
    grad in new storage): the replay must write its grad there."""
    w = tg.tensor([1.0, 2.0], dtype=F64, requires_grad=True)

    def fn(a):
        return (a * w).sum()
    f = tg.compile(fn)
    a = tg.tensor(0.5, dtype=F64, requires_grad=True)
    for k in range(6):
        if k == 3:
            w.requires_grad_(False)
            w.requires_grad_(True)
        a.grad = w.grad = None
        f(a).backward()
        got = (a.grad.item(), w.grad.numpy().tolist())
        a.grad = w.grad = None
        fn(a).backward()
        assert got == (a.grad.item(), w.grad.numpy().tolist())
    assert _counts(f) == (1, 5, 0, 0)


def test_more_arguments_than_the_last_call():
    f = tg.compile(lambda *xs: _poly(*xs))
    xs = _scalars(6)()
    for _ in range(3):
        f(*xs[:5])
    out = f(*xs)
    _same(out, _poly(*xs))
    assert _counts(f) == (2, 2, 0, 0)


def test_detached_argument_between_calls():
    def change(args, keep):
        args[0].detach_()
    f = _run_both(_poly, _scalars(), change)
    assert _counts(f) == (2, 5, 0, 0)


def test_many_scalar_arguments():
    f = _run_both(_poly, _scalars(300, 3), lambda args, keep: args.reverse())
    assert _counts(f) == (1, 6, 0, 0)
