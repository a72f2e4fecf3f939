"""Every error of issue 2's Behaviour list: PyTorch's exception type and words.

Each scenario is written once against a module ``L`` (``tapegrad`` or ``torch``: the API
names are the same). ``test_error`` checks tapegrad's exception type and message (the
issue's text) and then that the library still works; ``test_message_matches_pytorch`` runs
the same scenario in PyTorch and compares the whole message, where tapegrad writes
``tapegrad.`` for ``torch.`` in type names (``tapegrad.FloatTensor``, ``tapegrad.Size``).
"""
import re
import warnings

import numpy as np
import pytest

import tapegrad as tg

from conftest import still_works

pytestmark = pytest.mark.usefixtures("isolated")

SECOND_TIME = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or "
               "if you need to access saved tensors after calling backward.")
MODIFIED = ("one of the variables needed for gradient computation has been modified by an "
            "inplace operation: ")
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
INT_GRAD = "Only Tensors of floating point and complex dtype can require gradients"
NON_LEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more information.")


# ----- the scenarios -----------------------------------------------------------------------
def backward_nonscalar(L):
    (L.ones(2, 2, requires_grad=True) * 2).backward()


def backward_twice(L):
    x = L.ones(2, 2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def backward_twice_scalar(L):
    x = L.tensor(1.5, dtype=L.float64, requires_grad=True)
    y = x * x
    y.backward()
    y.backward()


def backward_twice_through_shared_part(L):
    x = L.ones(3, requires_grad=True)
    h = x.exp()
    h.sum().backward()
    (h * 2).sum().backward()          # the exp's saved result was freed by the first backward


def backward_no_grad(L):
    L.ones(2).sum().backward()


def backward_no_grad_under_no_grad(L):
    x = L.ones(2, requires_grad=True)
    with L.no_grad():
        y = (x * 2).sum()
    y.backward()


def leaf_sub_(L):
    L.ones(2, requires_grad=True).sub_(1)


def leaf_iadd(L):
    x = L.ones(2, requires_grad=True)
    x += 1


def leaf_mul_(L):
    L.ones(2, 2, requires_grad=True).mul_(2)


def leaf_zero_(L):
    L.ones(2, requires_grad=True).zero_()


def leaf_copy_(L):
    L.ones(2, requires_grad=True).copy_(L.zeros(2))


def leaf_scalar_add_(L):
    L.tensor(1.5, dtype=L.float64, requires_grad=True).add_(1)


def modified_saved_input(L):
    x = L.ones(2, 2, requires_grad=True)
    y = x * 2
    z = y * y                 # saves y
    y.add_(1)
    z.sum().backward()


def modified_saved_output(L):
    x = L.ones(2, 2, requires_grad=True)
    y = x.exp()               # saves its result
    y.mul_(2)
    y.sum().backward()


def modified_leaf_under_no_grad(L):
    x = L.ones(2, 2, requires_grad=True)
    y = x * x                 # saves x
    with L.no_grad():
        x.mul_(2)
    y.sum().backward()


def modified_constant(L):
    x = L.ones(2, 2, requires_grad=True)
    c = L.ones(2, 2)
    y = x * c                 # saves c
    c.add_(1)
    y.sum().backward()


def modified_scalar_input(L):
    x = L.tensor(1.5, dtype=L.float64, requires_grad=True)
    y = x * 2
    z = y * y
    y.add_(1)
    z.backward()


def modified_scalar_output(L):
    x = L.tensor(1.5, dtype=L.float64, requires_grad=True)
    y = x.exp()
    y.mul_(2)
    y.backward()


def modified_scalar_leaf_under_no_grad(L):
    x = L.tensor(1.5, dtype=L.float64, requires_grad=True)
    y = x * x
    with L.no_grad():
        x.mul_(2)
    y.backward()


def modified_scalar_float32(L):
    x = L.tensor(1.5, requires_grad=True)
    y = x * 2
    z = y * y
    y.add_(1)
    z.backward()


def modified_scalar_constant(L):
    x = L.tensor(1.5, dtype=L.float64, requires_grad=True)
    c = L.tensor(2.0, dtype=L.float64)
    z = x * c                 # saves c
    c.add_(1)
    z.backward()


def int_requires_grad_tensor(L):
    L.tensor([1, 2], requires_grad=True)


def int_requires_grad_ones(L):
    L.ones(2, dtype=L.int64, requires_grad=True)


def int_requires_grad_(L):
    L.tensor([1, 2]).requires_grad_()


def int_requires_grad_attribute(L):
    t = L.tensor([1, 2])
    t.requires_grad = True


def mm_mismatch(L):
    L.ones(2, 3).mm(L.ones(4, 5))


def mm_mismatch_requiring_grad(L):
    L.ones(2, 3, requires_grad=True).mm(L.ones(4, 5, requires_grad=True))


def broadcast_mismatch(L):
    L.ones(3) + L.ones(4)


def broadcast_mismatch_requiring_grad(L):
    L.ones(3, requires_grad=True) * L.ones(4, requires_grad=True)


def broadcast_mismatch_2d(L):
    L.ones(2, 3) - L.ones(4, 3)


def item_of_two(L):
    L.ones(2).item()


def numpy_requires_grad(L):
    L.ones(2, requires_grad=True).numpy()


def gradient_wrong_shape(L):
    (L.ones(2, 2, requires_grad=True) * 2).backward(L.ones(3))


def gradient_wrong_shape_scalar(L):
    (L.ones(2, requires_grad=True) * 2).sum().backward(L.ones(2))


RE = RuntimeError


# (scenario, type, the message or its fixed beginning, whole message?, marks for the
#  tapegrad check, marks for the PyTorch comparison)
ERRORS = [
    (backward_nonscalar, RE, "grad can be implicitly created only for scalar outputs", True,
     (), ()),
    (backward_twice, RE, SECOND_TIME, True, (), ()),
    (backward_twice_scalar, RE, SECOND_TIME, True, (), ()),
    (backward_twice_through_shared_part, RE, SECOND_TIME, True, (), ()),
    (backward_no_grad, RE, "element 0 of tensors does not require grad and does not have a "
     "grad_fn", True, (), ()),
    (backward_no_grad_under_no_grad, RE, "element 0 of tensors does not require grad and does "
     "not have a grad_fn", True, (), ()),
    (leaf_sub_, RE, LEAF_INPLACE, True, (), ()),
    (leaf_iadd, RE, LEAF_INPLACE, True, (), ()),
    (leaf_mul_, RE, LEAF_INPLACE, True, (), ()),
    (leaf_zero_, RE, LEAF_INPLACE, True, (), ()),
    (leaf_copy_, RE, LEAF_INPLACE, True, (), ()),
    (leaf_scalar_add_, RE, LEAF_INPLACE, True, (), ()),
    (modified_saved_input, RE, MODIFIED, False, (), ()),
    (modified_saved_output, RE, MODIFIED, False, (), ()),
    (modified_leaf_under_no_grad, RE, MODIFIED, False, (), ()),
    (modified_constant, RE, MODIFIED, False, (), ()),
    (modified_scalar_input, RE, MODIFIED, False, (), ()),
    (modified_scalar_output, RE, MODIFIED, False, (), ()),
    (modified_scalar_leaf_under_no_grad, RE, MODIFIED, False, (), ()),
    (modified_scalar_float32, RE, MODIFIED, False, (), ()),
    (modified_scalar_constant, RE, MODIFIED, False, (), ()),
    (int_requires_grad_tensor, RE, INT_GRAD, True, (), ()),
    (int_requires_grad_ones, RE, INT_GRAD, True, (), ()),
    (int_requires_grad_, RE, "only Tensors of floating point dtype can require gradients", True,
     (), ()),
    (int_requires_grad_attribute, RE, "only Tensors of floating point and complex dtype can "
     "require gradients", True, (), ()),
    (mm_mismatch, RE, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", True, (), ()),
    (mm_mismatch_requiring_grad, RE, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)",
     True, (), ()),
    (broadcast_mismatch, RE, "The size of tensor a (3) must match the size of tensor b (4) at "
     "non-singleton dimension 0", True, (), ()),
    (broadcast_mismatch_requiring_grad, RE, "The size of tensor a (3) must match the size of "
     "tensor b (4) at non-singleton dimension 0", True, (), ()),
    (broadcast_mismatch_2d, RE, "The size of tensor a (2) must match the size of tensor b (4) "
     "at non-singleton dimension 0", True, (), ()),
    (item_of_two, RE, "a Tensor with 2 elements cannot be converted to Scalar", True, (), ()),
    (numpy_requires_grad, RE, "Can't call numpy() on Tensor that requires grad. Use "
     "tensor.detach().numpy() instead.", True, (), ()),
    (gradient_wrong_shape, RE, "Mismatch in shape: grad_output[0] has a shape of ", False,
     (), ()),
    (gradient_wrong_shape_scalar, RE, "Mismatch in shape: grad_output[0] has a shape of ", False,
     (), ()),
]


def _params(which):
    return [pytest.param(fn, typ, msg, whole, marks=list(marks[which]), id=fn.__name__)
            for fn, typ, msg, whole, *marks in ERRORS]


def _torch_to_tapegrad(msg):
    """PyTorch's message as tapegrad words it: ``torch.`` becomes ``tapegrad.`` in type names
    (capitalized: FloatTensor, Size); functions such as torch.autograd.* keep their name."""
    return re.sub(r"\btorch\.(?=[A-Z])", "tapegrad.", msg)


def _message(L, scenario):
    try:
        scenario(L)
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None, None


@pytest.mark.parametrize("scenario,typ,msg,whole", _params(0))
def test_error(scenario, typ, msg, whole):
    with pytest.raises(typ, match=re.escape(msg)) as info:
        scenario(tg)
    assert info.type is typ
    if whole:
        assert str(info.value) == msg
    else:
        assert str(info.value).startswith(msg)
    still_works()


@pytest.mark.parametrize("scenario,typ,msg,whole", _params(1))
def test_message_matches_pytorch(scenario, typ, msg, whole):
    torch = pytest.importorskip("torch")
    ttyp, tmsg = _message(torch, scenario)
    assert ttyp is typ and tmsg.startswith(msg), (ttyp, tmsg)   # PyTorch raises it too
    gtyp, gmsg = _message(tg, scenario)
    assert gtyp is ttyp
    assert gmsg == _torch_to_tapegrad(tmsg)
    still_works()


# ----- details of the errors -------------------------------------------------------------------
def test_modified_error_leaves_no_wrong_gradient():
    x = tg.ones(2, 2, requires_grad=True)
    y = x * 2
    z = y * y
    y.add_(1)
    assert y._version == 1
    with pytest.raises(RuntimeError, match=re.escape(MODIFIED)):
        z.sum().backward()
    assert x.grad is None            # the wrong gradient was not accumulated
    still_works()


def test_modified_error_names_shape_and_versions():
    x = tg.ones(2, 3, requires_grad=True)
    y = x.exp()
    y.mul_(2)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    msg = str(info.value)
    assert msg.startswith(MODIFIED + "[tapegrad.FloatTensor [2, 3]], which is output 0 of Exp, "
                          "is at version 1; expected version 0 instead.")


def test_retain_graph_allows_a_second_backward():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match=re.escape(SECOND_TIME)):
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    still_works()


def test_in_place_under_no_grad_is_allowed_on_leaves():
    w = tg.ones(2, requires_grad=True)
    with tg.no_grad():
        w.sub_(0.5)
        w.zero_()
        w.add_(3)
    assert w.is_leaf and w.requires_grad and w._version == 3
    np.testing.assert_array_equal(w.detach().numpy(), [3.0, 3.0])
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 6.0])


def test_error_inside_no_grad_restores_grad_mode():
    with pytest.raises(RuntimeError, match=re.escape("The size of tensor a (3)")):
        with tg.no_grad():
            assert not tg.is_grad_enabled()
            tg.ones(3) + tg.ones(4)
    assert tg.is_grad_enabled()
    still_works()


def test_gradient_of_right_shape_works():
    x = tg.ones(2, 2, requires_grad=True)
    (x * 2).backward(tg.tensor([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 4.0], [6.0, 8.0]])


def test_detach_numpy_is_the_way_out():
    x = tg.ones(2, requires_grad=True)
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 1.0])
    assert tg.tensor([2.5]).item() == 2.5 and tg.ones(1, 1).item() == 1.0


# ----- no false alarms: an in-place change of a value the backward does not read -------------
UNREAD = [
    pytest.param(lambda L, w, c: (w * 2).sum(), [[2.0, 2.0], [2.0, 2.0]],
                 id="mul-by-number"),
    pytest.param(lambda L, w, c: (w * c).sum(), [[3.0, 3.0], [3.0, 3.0]], id="mul-by-constant"),
    pytest.param(lambda L, w, c: c.mm(w).sum(), [[6.0, 6.0], [6.0, 6.0]], id="mm-constant-first"),
    pytest.param(lambda L, w, c: (w + 1).sum(), [[1.0, 1.0], [1.0, 1.0]], id="add-number"),
    pytest.param(lambda L, w, c: (w - c).sum(), [[1.0, 1.0], [1.0, 1.0]], id="sub-constant"),
    pytest.param(lambda L, w, c: w.exp().sum(), [[np.e, np.e], [np.e, np.e]],
                 id="exp-saves-its-output"),
]


def _unread(L, build):
    w = L.ones(2, 2, dtype=L.float64, requires_grad=True)
    c = L.full((2, 2), 3.0, dtype=L.float64)
    out = build(L, w, c)
    with L.no_grad():
        w.sub_(0.5)                # w's value is not read by out's backward
    out.backward()
    return w.grad.numpy().tolist()


@pytest.mark.parametrize("build,expected", UNREAD)
def test_no_error_for_a_change_the_backward_does_not_read(build, expected):
    np.testing.assert_allclose(_unread(tg, build), expected, rtol=1e-15)


@pytest.mark.parametrize("build,expected", [pytest.param(*p.values, id=p.id) for p in UNREAD])
def test_no_error_for_a_change_the_backward_does_not_read_in_pytorch(build, expected):
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(_unread(torch, build), expected, rtol=1e-15)


# ----- the non-leaf .grad warning ----------------------------------------------------------------
def test_non_leaf_grad_warns_and_returns_none():
    x = tg.ones(2, requires_grad=True)
    y = x * 2
    with pytest.warns(UserWarning) as rec:
        g = y.grad
    assert g is None
    assert len(rec) == 1 and rec[0].category is UserWarning
    assert str(rec[0].message) == NON_LEAF_GRAD
    y.sum().backward()
    with pytest.warns(UserWarning, match=re.escape(NON_LEAF_GRAD[:60])):
        assert y.grad is None          # still not populated after backward
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    still_works()


def test_no_warning_for_leaves_and_retained_non_leaves():
    x = tg.ones(2, requires_grad=True)
    y = x * 2
    y.retain_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is None and y.grad is None
        y.sum().backward()
        np.testing.assert_array_equal(y.grad.numpy(), [1.0, 1.0])
        np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
        assert tg.ones(2).grad is None


def test_non_leaf_grad_warning_matches_pytorch():
    torch = pytest.importorskip("torch")
    y = torch.ones(2, requires_grad=True) * 2
    with pytest.warns(UserWarning) as rec:
        assert y.grad is None
    text = str(rec[0].message)
    text = re.sub(r" \(Triggered internally at .*\)$", "", text)   # PyTorch's build path
    assert text == NON_LEAF_GRAD


# ----- non-differentiable points -----------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda v: tg.tensor([v], dtype=tg.float64, requires_grad=True),
                                  lambda v: tg.tensor(v, dtype=tg.float64, requires_grad=True)],
                         ids=["array", "scalar"])
def test_relu_and_abs_at_zero(make):
    for op in ("relu", "abs"):
        x = make(0.0)
        getattr(x, op)().sum().backward()
        assert x.grad.numpy().tolist() in ([0.0], 0.0), op
