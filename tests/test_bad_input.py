"""The bad-input catalogue (issue 7): every case asserts the exact exception type and message
(PyTorch's words where PyTorch has them) or, for values that are legal but hostile (NaN, inf,
empty tensors), the exact values PyTorch gives; and after each case, that the library works
normally (``still_works``: a small backward gives the right gradient).

Each scenario is written once against a module ``L`` (``tapegrad`` or ``torch``; the API
names are the same). ``test_bad_input`` runs it in tapegrad; ``test_bad_input_in_pytorch``
runs it in PyTorch and checks that the catalogue's expectation is PyTorch's (type names
``torch.X`` read ``tapegrad.X`` in tapegrad's messages). Cases where tapegrad has words of its
own (PyTorch accepts the input, or words it differently by design) are marked ``own``.

Every case passes as the behaviour it describes: the bugs this catalogue once pinned are
fixed (issue 14), and a new one is fixed, not marked.
"""
import math
import re
import warnings
from collections import namedtuple

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.state import thread_state

from conftest import still_works

pytestmark = pytest.mark.usefixtures("isolated")   # a fresh tape per test (tests/conftest.py)

nan, inf = math.nan, math.inf

SECOND_TIME = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or "
               "if you need to access saved tensors after calling backward.")
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
VIEW_LEAF_INPLACE = ("a view of a leaf Variable that requires grad is being used in an "
                     "in-place operation.")
INT_GRAD = "Only Tensors of floating point and complex dtype can require gradients"
HINT = ("Hint: enable anomaly detection to find the operation that failed to compute its "
        "gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def SIZE(a, b, dim):
    return (f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
            f"non-singleton dimension {dim}")


def MODIFIED(kind, shape, node, now=1, expected=0):
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: [torch.{kind} {shape}], which is output 0 of {node}, is at "
            f"version {now}; expected version {expected} instead. " + HINT)


# ----- the catalogue ----------------------------------------------------------------------
Case = namedtuple("Case", "id scenario expect own")
# expect: (exception type, message) or ("value", expected structure) ; own: tapegrad's own
# words (no PyTorch comparison of the message).
CASES = []


def case(id, expect, own=False):
    def register(scenario):
        CASES.append(Case(id, scenario, expect, own))
        return scenario
    return register


def raises(typ, msg):
    return (typ, msg)


def value(v):
    return ("value", v)


def _leaf(L, data, dtype=None):
    return L.tensor(data, dtype=dtype or L.float64, requires_grad=True)


def _grads(L, build, *leaves):
    """(the output's value, the leaves' grads) of ``build(*leaves)`` after backward."""
    out = build(*leaves)
    out.backward()
    return out.tolist(), [None if x.grad is None else x.grad.tolist() for x in leaves]


# --- wrong shapes: every binary op, with and without grad, leading and trailing mismatch ---
BINARY = {
    "add": lambda L, a, b: a + b,
    "sub": lambda L, a, b: a - b,
    "mul": lambda L, a, b: a * b,
    "div": lambda L, a, b: a / b,
    "pow": lambda L, a, b: a.pow(b),
    "maximum": lambda L, a, b: a.maximum(b),
    "minimum": lambda L, a, b: a.minimum(b),
    "where_input": lambda L, a, b: L.where(a > 0, a, b),
    "where_condition": lambda L, a, b: L.where(b > 0, a, a),
    "max_other": lambda L, a, b: a.max(b),
    "gt": lambda L, a, b: a > b,
    "eq": lambda L, a, b: a == b,
    "add_method_alpha": lambda L, a, b: a.add(b, alpha=2),
}
# where broadcasts its condition first: the condition is "tensor a" in PyTorch's words
_SWAPPED = {"where_condition"}
for _name, _f in BINARY.items():
    _sw = _name in _SWAPPED
    for _rg in (False, True):
        case(f"shape_{_name}{'_rg' if _rg else ''}",
             raises(RuntimeError, SIZE(4, 2, 0) if _sw else SIZE(2, 4, 0)))(
            lambda L, f=_f, rg=_rg: f(L, L.ones(2, 3, requires_grad=rg), L.ones(4, 3)))
    case(f"shape_{_name}_trailing", raises(RuntimeError, SIZE(2, 3, 1) if _sw else
                                           SIZE(3, 2, 1)))(
        lambda L, f=_f: f(L, L.ones(2, 3, requires_grad=True), L.ones(3, 2)))

INPLACE = {"add_": lambda t, o: t.add_(o), "sub_": lambda t, o: t.sub_(o),
           "mul_": lambda t, o: t.mul_(o), "div_": lambda t, o: t.div_(o),
           "iadd": lambda t, o: t.__iadd__(o)}
for _name, _f in INPLACE.items():
    case(f"shape_{_name}_mismatch", raises(RuntimeError, SIZE(3, 4, 0)))(
        lambda L, f=_f: f(L.ones(3), L.ones(4)))
    case(f"shape_{_name}_grows", raises(RuntimeError, "output with shape [3] doesn't match the "
                                                      "broadcast shape [2, 3]"))(
        lambda L, f=_f: f(L.ones(3), L.ones(2, 3)))
    case(f"shape_{_name}_grows_rg", raises(RuntimeError, "output with shape [3] doesn't match "
                                                         "the broadcast shape [2, 3]"))(
        lambda L, f=_f: f(L.ones(3, requires_grad=True) * 1, L.ones(2, 3)))

case("mm_inner", raises(RuntimeError, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"))(
    lambda L: L.ones(2, 3, requires_grad=True).mm(L.ones(4, 5)))
case("mm_1d_self", raises(RuntimeError, "self must be a matrix"))(
    lambda L: L.ones(3, requires_grad=True).mm(L.ones(3, 5)))
case("mm_1d_mat2", raises(RuntimeError, "mat2 must be a matrix"))(
    lambda L: L.ones(2, 3, requires_grad=True).mm(L.ones(3)))
case("mm_3d_mat2", raises(RuntimeError, "mat2 must be a matrix"))(
    lambda L: L.ones(2, 3, requires_grad=True).mm(L.ones(3, 2, 2)))
case("mm_dtype", raises(RuntimeError, "expected m1 and m2 to have the same dtype, but got: "
                                      "float != double"))(
    lambda L: L.ones(2, 3, requires_grad=True).mm(L.ones(3, 2, dtype=L.float64)))
case("mm_list", raises(TypeError, "mm(): argument 'mat2' (position 1) must be Tensor, not list"))(
    lambda L: L.ones(2, 3, requires_grad=True).mm([[1.0]]))
case("matmul_2d", raises(RuntimeError, "mat1 and mat2 shapes cannot be multiplied (2x3 and "
                                       "4x5)"))(
    lambda L: L.ones(2, 3, requires_grad=True) @ L.ones(4, 5))
case("matmul_1d_1d", raises(RuntimeError, "inconsistent tensor size, expected tensor [3] and src "
                                          "[4] to have the same number of elements, but got 3 "
                                          "and 4 elements respectively"))(
    lambda L: L.ones(3, requires_grad=True) @ L.ones(4))
case("matmul_2d_1d", raises(RuntimeError, "size mismatch, got input (2), mat (2x3), vec (4)"))(
    lambda L: L.ones(2, 3, requires_grad=True) @ L.ones(4))
case("matmul_1d_2d", raises(RuntimeError, "mat1 and mat2 shapes cannot be multiplied (1x3 and "
                                          "4x2)"))(
    lambda L: L.ones(3, requires_grad=True) @ L.ones(4, 2))
case("matmul_batch", raises(RuntimeError, "Expected size for first two dimensions of batch2 "
                                          "tensor to be: [2, 3] but got: [2, 4]."))(
    lambda L: L.ones(2, 2, 3, requires_grad=True) @ L.ones(2, 4, 5))
case("matmul_batch_broadcast", raises(RuntimeError, SIZE(2, 3, 0)))(
    lambda L: L.ones(2, 3, 4, requires_grad=True) @ L.ones(3, 4, 6))
case("matmul_0d", raises(RuntimeError, "both arguments to matmul need to be at least 1D, but "
                                       "they are 2D and 0D"))(
    lambda L: L.ones(2, 3, requires_grad=True) @ L.tensor(2.0))
case("bmm_batch", raises(RuntimeError, "Expected size for first two dimensions of batch2 tensor "
                                       "to be: [2, 3] but got: [3, 3]."))(
    lambda L: L.ones(2, 2, 3, requires_grad=True).bmm(L.ones(3, 3, 5)))
case("bmm_inner", raises(RuntimeError, "Expected size for first two dimensions of batch2 tensor "
                                       "to be: [2, 3] but got: [2, 4]."))(
    lambda L: L.ones(2, 2, 3, requires_grad=True).bmm(L.ones(2, 4, 5)))
case("bmm_2d", raises(RuntimeError, "batch1 must be a 3D tensor"))(
    lambda L: L.ones(2, 3, requires_grad=True).bmm(L.ones(2, 3, 5)))
case("dot_sizes", raises(RuntimeError, "inconsistent tensor size, expected tensor [3] and src "
                                       "[4] to have the same number of elements, but got 3 and "
                                       "4 elements respectively"))(
    lambda L: L.ones(3, requires_grad=True).dot(L.ones(4)))
case("dot_2d", raises(RuntimeError, "1D tensors expected, but got 1D and 2D tensors"))(
    lambda L: L.ones(3, requires_grad=True).dot(L.ones(4, 3)))
case("dot_dtype", raises(RuntimeError, "dot : expected both vectors to have same dtype, but "
                                       "found Float and Double"))(
    lambda L: L.ones(3, requires_grad=True).dot(L.ones(3, dtype=L.float64)))
case("mv_sizes", raises(RuntimeError, "size mismatch, got input (2), mat (2x3), vec (4)"))(
    lambda L: L.ones(2, 3, requires_grad=True).mv(L.ones(4)))
case("mv_2d_vec", raises(RuntimeError, "vector + matrix @ vector expected, got 1, 2, 2"))(
    lambda L: L.ones(2, 3, requires_grad=True).mv(L.ones(3, 1)))
case("cat_sizes", raises(RuntimeError, "Sizes of tensors must match except in dimension 0. "
                                       "Expected size 3 but got size 4 for tensor number 1 in "
                                       "the list."))(
    lambda L: L.cat([L.ones(2, 3, requires_grad=True), L.ones(2, 4)], 0))
case("stack_sizes", raises(RuntimeError, "stack expects each tensor to be equal size, but got "
                                         "[2, 3] at entry 0 and [2, 4] at entry 1"))(
    lambda L: L.stack([L.ones(2, 3, requires_grad=True), L.ones(2, 4)]))
case("index_out_of_range_dim1", raises(IndexError, "index 5 is out of bounds for dimension 1 "
                                                   "with size 3"))(
    lambda L: L.ones(2, 3, requires_grad=True)[0, 5])

# --- requires_grad on non-float tensors ---------------------------------------------------
case("int_tensor_requires_grad", raises(RuntimeError, INT_GRAD))(
    lambda L: L.tensor([1, 2], requires_grad=True))
case("int_ones_requires_grad", raises(RuntimeError, INT_GRAD))(
    lambda L: L.ones(2, dtype=L.int64, requires_grad=True))
case("int32_zeros_requires_grad", raises(RuntimeError, INT_GRAD))(
    lambda L: L.zeros(2, dtype=L.int32, requires_grad=True))
case("int_full_requires_grad", raises(RuntimeError, INT_GRAD))(
    lambda L: L.full((2,), 3, requires_grad=True))
case("int_arange_requires_grad", raises(RuntimeError, INT_GRAD))(
    lambda L: L.arange(3, requires_grad=True))
case("bool_requires_grad", raises(RuntimeError, INT_GRAD))(
    lambda L: L.tensor([True], requires_grad=True))
case("int_scalar_requires_grad", raises(RuntimeError, INT_GRAD))(
    lambda L: L.tensor(3, requires_grad=True))
case("int_requires_grad_", raises(RuntimeError, "only Tensors of floating point dtype can "
                                                "require gradients"))(
    lambda L: L.tensor([1, 2]).requires_grad_())
case("int_requires_grad_setter", raises(RuntimeError, "only Tensors of floating point and "
                                                      "complex dtype can require gradients"))(
    lambda L: setattr(L.tensor([1, 2]), "requires_grad", True))
case("int_randn", raises(NotImplementedError, "\"normal_kernel_cpu\" not implemented for "
                                              "'Long'"))(
    lambda L: L.randn(2, dtype=L.int64))

# --- backward misuse ----------------------------------------------------------------------
case("backward_non_scalar", raises(RuntimeError, "grad can be implicitly created only for "
                                                 "scalar outputs"))(
    lambda L: (L.ones(2, 2, requires_grad=True) * 2).backward())
case("backward_non_scalar_empty", raises(RuntimeError, "grad can be implicitly created only "
                                                       "for scalar outputs"))(
    lambda L: (L.ones(0, requires_grad=True) * 2).backward())
case("backward_twice", raises(RuntimeError, SECOND_TIME))(
    lambda L: (lambda y: (y.backward(), y.backward()))((_leaf(L, [1.0, 2.0]) * 3).sum()))
case("backward_twice_scalar", raises(RuntimeError, SECOND_TIME))(
    lambda L: (lambda y: (y.backward(), y.backward()))(_leaf(L, 1.5).exp()))
case("backward_twice_matmul", raises(RuntimeError, SECOND_TIME))(
    lambda L: (lambda y: (y.backward(), y.backward()))(
        _leaf(L, [[1.0, 2.0]]).mm(L.ones(2, 1, dtype=L.float64)).sum()))
# PyTorch checks the outputs before the inputs; backward(inputs=...) retains each input's
# grad first (found by tests/test_lifetimes_fuzz.py)
case("grad_of_a_constant_wrt_a_constant", raises(RuntimeError, NO_GRAD_FN))(
    lambda L: L.autograd.grad(L.tensor(1.0, dtype=L.float64), [L.tensor(2.0, dtype=L.float64)]))
case("grad_of_a_constant_wrt_a_constant_create_graph", raises(RuntimeError, NO_GRAD_FN))(
    lambda L: L.autograd.grad(L.ones(2, dtype=L.float64).sum(), [L.ones(2, dtype=L.float64)],
                              create_graph=True))
case("backward_inputs_a_constant", raises(RuntimeError, "can't retain_grad on Tensor that has "
                                                        "requires_grad=False"))(
    lambda L: (_leaf(L, [1.0, 2.0]) * 2).sum().backward(inputs=[L.ones(2)]))
case("backward_of_a_leaf_inputs_a_constant", raises(RuntimeError, "can't retain_grad on "
                                                                  "Tensor that has "
                                                                  "requires_grad=False"))(
    lambda L: _leaf(L, 1.5).backward(inputs=[_leaf(L, 1.0), L.ones(2)]))
ZERO_DIM_INDEX = ("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                  "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
case("index_0d_int", raises(IndexError, ZERO_DIM_INDEX))(
    lambda L: _leaf(L, 1.5)[0])
case("index_0d_slice", raises(IndexError, "slice() cannot be applied to a 0-dim tensor."))(
    lambda L: _leaf(L, 1.5)[1:])
case("index_0d_two_ints", raises(IndexError, "too many indices for tensor of dimension 0"))(
    lambda L: _leaf(L, 1.5)[0, 0])
case("setitem_0d_nonleaf_int", raises(IndexError, ZERO_DIM_INDEX))(
    lambda L: (_leaf(L, 1.5) * 2).__setitem__(0, 1.0))
case("setitem_0d_leaf_int", raises(IndexError, ZERO_DIM_INDEX))(
    lambda L: _leaf(L, 1.5).__setitem__(0, 1.0))
case("setitem_0d_constant_slice", raises(IndexError, "slice() cannot be applied to a 0-dim "
                                                     "tensor."))(
    lambda L: L.tensor(1.5).__setitem__(slice(None), 1.0))
# item assignment on a leaf: PyTorch's index and expand errors come first for a basic key
# (a view's copy_), the leaf's own error first for an advanced one (index_put_)
case("setitem_leaf_basic_key_wrong_shape", raises(RuntimeError, "The expanded size of the "
                                                  "tensor (3) must match the existing size "
                                                  "(4) at non-singleton dimension 0.  Target "
                                                  "sizes: [3].  Tensor sizes: [4]"))(
    lambda L: _leaf(L, [[1.0, 2.0, 3.0]] * 2).__setitem__(0, L.ones(4)))
case("setitem_leaf_advanced_key", raises(RuntimeError, LEAF_INPLACE))(
    lambda L: _leaf(L, [[1.0, 2.0, 3.0]] * 2).__setitem__([0, 1], L.ones(3)))
case("setitem_leaf_mask_wrong_shape", raises(RuntimeError, LEAF_INPLACE))(
    lambda L: _leaf(L, [[1.0, 2.0, 3.0]] * 2).__setitem__(L.tensor([True, False]), L.ones(4)))
OVERLAP = ("unsupported operation: more than one element of the written-to tensor refers to a "
           "single memory location. Please clone() the tensor before performing the "
           "operation.")
case("inplace_on_an_expanded_tensor", raises(RuntimeError, OVERLAP))(
    lambda L: L.ones(3).expand(2, 3).mul_(2))
case("inplace_on_an_expanded_tensor_with_grad", raises(RuntimeError, OVERLAP))(
    lambda L: (_leaf(L, [1.0, 2.0, 3.0]) * 1).expand(2, 3).add_(1))
case("inplace_on_an_expanded_tensor_by_itself", raises(RuntimeError, OVERLAP))(
    lambda L: (lambda e: e.mul_(e))(L.ones(3).expand(2, 3)))
# the leaf checks and the expand of an item assignment come before the overlap (PyTorch)
case("inplace_on_an_expanded_view_of_a_leaf", raises(RuntimeError, VIEW_LEAF_INPLACE))(
    lambda L: _leaf(L, [1.0, 2.0, 3.0]).expand(2, 3).mul_(2))
case("setitem_on_an_expanded_tensor_wrong_shape", raises(RuntimeError, "The expanded size of "
                                                         "the tensor (3) must match the "
                                                         "existing size (4) at non-singleton "
                                                         "dimension 0.  Target sizes: [3].  "
                                                         "Tensor sizes: [4]"))(
    lambda L: L.ones(3).expand(2, 3).__setitem__(0, L.ones(4)))
# an expand that repeats nothing is an ordinary writable view
case("inplace_on_an_expand_to_the_same_shape", value([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]))(
    lambda L: (lambda x: (x.expand(2, 3).add_(1), x.tolist())[1])(L.ones(2, 3)))
case("inplace_on_an_expand_adding_a_dim_of_one", value([[3.0, 3.0]]))(
    lambda L: (lambda x: (x.expand(1, 1, 2).mul_(3), x.tolist())[1])(L.ones(1, 2)))
case("setitem_of_a_1_element_value_into_an_element", value([5.0, 0.0, 0.0]))(
    lambda L: (lambda x: (x.__setitem__(0, L.ones(1) * 5), x.tolist())[1])(L.zeros(3)))
case("backward_without_grad", raises(RuntimeError, NO_GRAD_FN))(
    lambda L: L.ones(2).sum().backward())
case("backward_without_grad_scalar", raises(RuntimeError, NO_GRAD_FN))(
    lambda L: (L.tensor(1.5) * 2).backward())


def _under_no_grad(L):
    x = L.ones(2, requires_grad=True)
    with L.no_grad():
        y = (x * 2).sum()
    y.backward()


case("backward_made_under_no_grad", raises(RuntimeError, NO_GRAD_FN))(_under_no_grad)
case("backward_of_comparison", raises(RuntimeError, NO_GRAD_FN))(
    lambda L: (L.ones(2, requires_grad=True) > 0).sum().backward())
case("backward_of_detached", raises(RuntimeError, NO_GRAD_FN))(
    lambda L: (L.ones(2, requires_grad=True) * 2).detach().sum().backward())
def _create_graph_of_constant_grad(L):
    x = L.ones(2, requires_grad=True)
    (x * 2).sum().backward(create_graph=True)
    return [x.grad.tolist(), x.grad.requires_grad]


def _create_graph_after_free(L):
    x = _leaf(L, [1.0, 2.0])
    out = (x * x).sum()
    out.backward()
    L.autograd.grad(out, x, create_graph=True)


case("backward_create_graph", value([[2.0, 2.0], False]))(_create_graph_of_constant_grad)
case("create_graph_after_the_graph_was_freed", raises(RuntimeError, SECOND_TIME))(
    _create_graph_after_free)


def _second_backward_through(L, make):
    x = _leaf(L, [1.0, 2.0])
    y = make(x)
    y.sum().backward()
    (y * 3).sum().backward()          # again through y's (freed) graph
    return [x.grad.tolist()]


# PyTorch raises only when a freed saved tensor is needed: x + x and sum() saved nothing
case("second_backward_through_nodes_that_saved_nothing_add", value([[8.0, 8.0]]))(
    lambda L: _second_backward_through(L, lambda x: x + x))
case("second_backward_through_nodes_that_saved_nothing_sum", value([[8.0, 8.0]]))(
    lambda L: _second_backward_through(L, lambda x: x.sum().expand(2)))
case("second_backward_through_cat_that_saved_nothing", value([[8.0, 8.0]]))(
    lambda L: _second_backward_through(L, lambda x: L.cat([x, x])))
# add/sub's alpha is a number in PyTorch's AddBackward0 (tapegrad's record of other * alpha
# was freed: the second backward raised)
case("second_backward_through_add_alpha", value([[12.0, 12.0]]))(
    lambda L: _second_backward_through(L, lambda x: L.add(x, x, alpha=2)))
case("second_backward_through_sub_alpha_method", value([[-4.0, -4.0]]))(
    lambda L: _second_backward_through(L, lambda x: x.sub(x, alpha=2)))
case("second_backward_through_add_alpha_scalar", value([4.0 * 4]))(
    lambda L: (lambda x: (lambda y: (y.backward(), (y * 3).backward(), x.grad.item())[2:])(
        x.add(x, alpha=3)))(_leaf(L, 1.5)))
case("second_backward_through_add__alpha", value([[3.0, 3.0], [12.0, 12.0]]))(
    lambda L: (lambda x: (lambda y: (y.add_(x, alpha=2), y.sum().backward(),
                                     (y * 3).sum().backward(), [y.tolist(),
                                                                x.grad.tolist()])[3])(
        x + 0.0))(_leaf(L, [1.0, 1.0])))


def _backward_twice(L, make):
    x = _leaf(L, [1.0, 2.0])
    y = make(x)
    y.backward()
    y.backward()                      # the whole graph was reached and freed: again
    return [x.grad.tolist()]


# cat/stack keep only sizes, as PyTorch: they run again (this crashed the interpreter when
# the freed tape's int lists went with its values); indices and where's condition are saved
case("backward_twice_through_cat", value([[4.0, 4.0]]))(
    lambda L: _backward_twice(L, lambda x: L.cat([x, x]).sum()))
case("backward_twice_through_stack", value([[4.0, 4.0]]))(
    lambda L: _backward_twice(L, lambda x: L.stack([x, x]).sum()))
case("backward_twice_through_index", raises(RuntimeError, SECOND_TIME))(
    lambda L: _backward_twice(L, lambda x: x[[0, 1, 1]].sum()))
case("backward_twice_through_where", raises(RuntimeError, SECOND_TIME))(
    lambda L: _backward_twice(L, lambda x: L.where(x > 1.5, x, x.neg()).sum()))
case("backward_twice_through_exp_and_cat", raises(RuntimeError, SECOND_TIME))(
    lambda L: _backward_twice(L, lambda x: L.cat([x.exp(), x]).sum()))
case("second_backward_through_exp", raises(RuntimeError, SECOND_TIME))(
    lambda L: _second_backward_through(L, lambda x: x.exp()))
case("backward_retain_graph_twice", value([6.0, [[3.0, 3.0]]]))(
    lambda L: (lambda x: (lambda y: (y.backward(retain_graph=True), y.backward(),
                                     [y.item(), [x.grad.tolist()]])[2])((x * 1.5).sum()))(
        _leaf(L, [1.0, 3.0])))


# --- gradient= of the wrong shape or dtype ------------------------------------------------
def _shape_msg(g, o):
    return (f"Mismatch in shape: grad_output[0] has a shape of torch.Size({g}) and output[0] "
            f"has a shape of torch.Size({o}).")


case("gradient_wrong_shape", raises(RuntimeError, _shape_msg([3], [2, 2])))(
    lambda L: (L.ones(2, 2, requires_grad=True) * 2).backward(L.ones(3)))
case("gradient_broadcastable_shape", raises(RuntimeError, _shape_msg([2], [2, 2])))(
    lambda L: (L.ones(2, 2, requires_grad=True) * 2).backward(L.ones(2)))
case("gradient_1_for_0d", raises(RuntimeError, _shape_msg([1], [])))(
    lambda L: (L.ones(2, requires_grad=True) * 2).sum().backward(L.ones(1)))
case("gradient_0d_for_1", raises(RuntimeError, _shape_msg([], [1])))(
    lambda L: (L.ones(1, requires_grad=True) * 2).backward(L.tensor(1.0)))
case("gradient_wrong_shape_scalar_leaf", raises(RuntimeError, _shape_msg([2], [])))(
    lambda L: (_leaf(L, 1.5) * 2).backward(L.ones(2)))
case("gradient_int_dtype", value([[4.0, 6.0]]))(
    lambda L: (lambda x: ((x * 2).backward(L.tensor([2, 3])), [x.grad.tolist()])[1])(
        _leaf(L, [1.0, 1.0])))
case("gradient_bool_dtype", value([[2.0, 0.0]]))(
    lambda L: (lambda x: ((x * 2).backward(L.tensor([True, False])), [x.grad.tolist()])[1])(
        _leaf(L, [1.0, 1.0])))
case("gradient_float32_for_float64", value([[2.0, 4.0]]))(
    lambda L: (lambda x: ((x * 2).backward(L.tensor([1.0, 2.0], dtype=L.float32)),
                          [x.grad.tolist()])[1])(_leaf(L, [1.0, 1.0])))
case("gradient_float64_for_float32", value([[2.0, 4.0]]))(
    lambda L: (lambda x: ((x * 2).backward(L.tensor([1.0, 2.0], dtype=L.float64)),
                          [x.grad.tolist()])[1])(_leaf(L, [1.0, 1.0], L.float32)))

# --- in-place on a leaf, on a view of a leaf, on a saved value ----------------------------
for _name, _f in {"add_": lambda x: x.add_(1), "sub_": lambda x: x.sub_(1),
                  "mul_": lambda x: x.mul_(2), "div_": lambda x: x.div_(2),
                  "zero_": lambda x: x.zero_(), "fill_": lambda x: x.fill_(2.0),
                  "iadd": lambda x: x.__iadd__(1), "imul": lambda x: x.__imul__(2),
                  "copy_": lambda x: x.copy_(x.detach() * 2)}.items():
    case(f"leaf_{_name}", raises(RuntimeError, LEAF_INPLACE))(
        lambda L, f=_f: f(L.ones(2, requires_grad=True)))
    case(f"scalar_leaf_{_name}", raises(RuntimeError, LEAF_INPLACE))(
        lambda L, f=_f: f(_leaf(L, 1.5)))
case("leaf_setitem", raises(RuntimeError, VIEW_LEAF_INPLACE))(
    lambda L: L.ones(2, requires_grad=True).__setitem__(0, 5.0))
case("leaf_view_add_", raises(RuntimeError, VIEW_LEAF_INPLACE))(
    lambda L: L.ones(2, 2, requires_grad=True)[0].add_(1))
case("leaf_view_mul_", raises(RuntimeError, VIEW_LEAF_INPLACE))(
    lambda L: L.ones(2, 2, requires_grad=True).t().mul_(2))


def _saved(L, build, change):
    x = _leaf(L, [1.0, 2.0])
    y = x * 2
    z = build(y)
    change(y)
    z.sum().backward()


case("saved_output_of_exp", raises(RuntimeError, MODIFIED("DoubleTensor", [2], "Exp")))(
    lambda L: (lambda x: (lambda y: (y.add_(1), y.sum().backward()))(x.exp()))(
        _leaf(L, [1.0, 2.0])))
case("saved_input_of_sigmoid_output", raises(RuntimeError, MODIFIED("DoubleTensor", [2],
                                                                    "Sigmoid")))(
    lambda L: (lambda x: (lambda y: (y.mul_(2), y.sum().backward()))(x.sigmoid()))(
        _leaf(L, [1.0, 2.0])))
case("saved_input_of_mul", raises(RuntimeError, MODIFIED("DoubleTensor", [2], "Add")))(
    lambda L: _saved(L, lambda y: y * y, lambda y: y.add_(1)))
case("saved_input_changed_by_setitem", raises(RuntimeError, MODIFIED(
        "DoubleTensor", [2], "torch::autograd::CopySlices")))(
    lambda L: _saved(L, lambda y: y * y, lambda y: y.__setitem__(0, 3.0)))
case("saved_input_changed_through_view", raises(RuntimeError, MODIFIED(
        "DoubleTensor", [2], "torch::autograd::CopySlices")))(
    lambda L: _saved(L, lambda y: y * y, lambda y: y[0].mul_(3.0)))


def _leaf_changed_under_no_grad(L):
    x = _leaf(L, [1.0, 2.0])
    z = x * x
    with L.no_grad():
        x.mul_(2)
    z.sum().backward()


case("saved_leaf_changed_under_no_grad", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [2], "-").replace(", which is output 0 of -,", "")))(
    _leaf_changed_under_no_grad)
def _scalar_changed_after_another_backward(L):
    """The in-place op is recorded on the tape after the graph's (a backward came between):
    every record of the graph's tape that read the old value must raise (found by
    tests/test_lifetimes_fuzz.py: the gradient used the old value, silently)."""
    x, w = _leaf(L, 0.15), _leaf(L, 2.0)
    a = x * 3
    b = a * w
    (w * 1).backward()
    a.mul_(2)
    b.backward()


def _two_values_changed(L):
    """PyTorch meets the latest record first: its error names what that record read."""
    x = _leaf(L, 0.15)
    p = x.pow(3)
    with L.no_grad():
        x.mul_(x)                 # read by pow
    a = x - p
    b = a * p
    a.mul_(x)                     # read by the mul, recorded after pow
    b.backward()


def _saved_output_of_max(L):
    y = (_leaf(L, [1.0, 3.0, 2.0]) * 1).max()
    z = y.exp()
    y.mul_(1)
    z.backward()


def _leaf_scalar_changed_twice(L):
    x = _leaf(L, 0.15)
    y = x.pow(3)
    with L.no_grad():
        x.mul_(2)
        x.mul_(2)
    y.backward()


case("saved_leaf_scalar_changed_twice_under_no_grad", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "-", now=2).replace(", which is output 0 of -,", "")))(
    _leaf_scalar_changed_twice)
def _scalar_read_through_a_link_then_changed(L):
    """sin reads e on the tape after e's (a link): e changed in place must make that record
    raise too (it used e's old value, silently; found by tests/test_lifetimes_fuzz.py)."""
    x = _leaf(L, 0.3)
    e = x * 2
    e.backward(retain_graph=True)
    c = e.sin()
    e.sub_(x)
    c.backward()


# x.mul_(x): the record saves x as the other operand, which the op then changes (PyTorch
# raises at backward; tapegrad used a copy and gave the gradient)
for _op, _node in (("mul_", "Mul"), ("div_", "Div")):
    for _shape, _v in (([2], [0.3, 0.5]), ([], 0.3)):
        case(f"inplace_{_op}_by_itself_{len(_shape)}d", raises(RuntimeError, MODIFIED(
            "DoubleTensor", _shape, _node)))(
            lambda L, op=_op, v=_v: (lambda s: (getattr(s, op)(s), s.sum().backward()))(
                _leaf(L, v) * 2))
case("inplace_add__by_itself", value([[4.0, 4.0]]))(
    lambda L: (lambda x: (lambda s: (s.add_(s), s.sum().backward(), [x.grad.tolist()])[2])(
        x * 2))(_leaf(L, [0.3, 0.5])))
def _leaf_scalar_changed_after_a_retained_backward(L):
    """x's tape was left by a backward (retain_graph): the change under no_grad was marked on
    the new tape only, and the second backward used x's old value (silently; found by
    tests/test_lifetimes_fuzz.py)."""
    x = _leaf(L, -1.16)
    y = x.sin()
    y.backward(retain_graph=True)
    with L.no_grad():
        x.add_(1)
    y.backward()


case("saved_leaf_scalar_changed_after_a_retained_backward", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "-").replace(", which is output 0 of -,", "")))(
    _leaf_scalar_changed_after_a_retained_backward)
# a constant changed in place by an operand that requires grad: its own record reads the
# old value legitimately (48f9237 made it raise for a 0-d constant; found by the fuzz test)
case("constant_scalar_div__by_a_leaf", value([-0.5 / 1.23 ** 2]))(
    lambda L: (lambda c, w: (c.div_(w), c.backward(), w.grad.item())[2:])(
        L.tensor(0.5, dtype=L.float64), _leaf(L, -1.23)))
def _changed_and_freed(L):
    """p's graph was freed, and p changed in place after sin read it: PyTorch meets sin's
    node first (the changed value), before the freed graph below (found by the fuzz test)."""
    p = (_leaf(L, [1.5, -2.0]) * 1).prod()
    p.backward()
    s = p.sin()
    p.sub_(1)
    s.backward()


def _changed_leaf_and_freed_older_graph(L):
    """min(h, c) reads c, changed in place under no_grad; h = clamp(x)'s graph was freed
    (older): PyTorch meets the minimum's node first (found by the fuzz test)."""
    c, x = _leaf(L, 0.5), _leaf(L, 1.21)
    h = x.clamp(-0.5, 0.5)
    h.backward()
    m = L.minimum(x, c)
    with L.no_grad():
        c.sub_(x)
    m.div_(h)
    m.backward()


def _leaf_on_two_graphs_then_changed(L, partial):
    """A 0-d leaf recorded on a graph, a backward (retaining it, or from another root of
    the same graph, which leaves y's records unfreed), used again on a newer graph, then
    changed under no_grad: a backward through the older graph must raise PyTorch's version
    error, not use the old value (it gave x.grad 8 and 9, silently)."""
    x = _leaf(L, 2.0)
    y = x * x
    if partial:
        (x * 5).backward()
    else:
        y.backward(retain_graph=True)
    x * 3
    with L.no_grad():
        x.add_(1)
    y.backward()


_CHANGED_LEAF = MODIFIED("DoubleTensor", [], "-").replace(", which is output 0 of -,", "")
case("leaf_on_two_graphs_changed_then_the_retained_older_one",
     raises(RuntimeError, _CHANGED_LEAF))(lambda L: _leaf_on_two_graphs_then_changed(L, False))
case("leaf_on_two_graphs_changed_then_the_unfreed_part_of_the_older_one",
     raises(RuntimeError, _CHANGED_LEAF))(lambda L: _leaf_on_two_graphs_then_changed(L, True))


def _leaf_changed_then_a_newer_graph(L):
    """The same leaf, changed after two graphs: a graph recorded after the change runs,
    at the new value (d/dx x^2 at 3)."""
    x = _leaf(L, 2.0)
    y = x * x
    y.backward(retain_graph=True)
    x * 3
    with L.no_grad():
        x.add_(1)
        x.grad.zero_()
    (x * x).backward()
    return [x.grad.item()]


case("leaf_on_two_graphs_changed_then_a_newer_graph_runs", value([6.0]))(
    _leaf_changed_then_a_newer_graph)
case("changed_leaf_and_freed_older_graph", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "-").replace(", which is output 0 of -,", "")))(
    _changed_leaf_and_freed_older_graph)
case("changed_in_place_and_freed_below", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "Sub")))(_changed_and_freed)
case("saved_scalar_read_through_a_link_then_changed", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "Sub")))(_scalar_read_through_a_link_then_changed)
case("saved_scalar_changed_after_another_backward", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "Mul")))(_scalar_changed_after_another_backward)
case("two_values_changed_the_latest_reader_first", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "Mul")))(_two_values_changed)
case("saved_output_of_max_names_max1", raises(RuntimeError, MODIFIED(
    "DoubleTensor", [], "Max1")))(_saved_output_of_max)
case("saved_scalar_output_of_exp", raises(RuntimeError, MODIFIED("DoubleTensor", [], "Exp")))(
    lambda L: (lambda x: (lambda y: (y.mul_(2), y.backward()))(x.exp()))(_leaf(L, 1.5)))
case("unsaved_change_is_fine", value([[[4.0, 4.0]]]))(    # add's backward reads nothing
    lambda L: (lambda x: (lambda y: (lambda z: (y.add_(1), z.sum().backward(),
                                                [[x.grad.tolist()]])[2])(y + y))(x * 2))(
        _leaf(L, [1.0, 2.0])))


# --- NaN and inf propagate as in PyTorch (values from torch 2.13.0) -----------------------
def _v(build, *data):
    return lambda L: _grads(L, build, *[_leaf(L, d) for d in data])


VALUES = [
    ("nan_times", _v(lambda x: (x * nan).sum(), [1.0, 1.0]), (nan, [[nan, nan]])),
    ("nan_input", _v(lambda x: (x * x).sum(), [nan, 1.0]), (nan, [[nan, 2.0]])),
    ("inf_exp", _v(lambda x: x.exp().sum(), [inf, 1.0, -inf]),
     (inf, [[inf, math.e, 0.0]])),
    ("inf_times_zero", _v(lambda x: (x * 0.0).sum(), [inf, 1.0]), (nan, [[0.0, 0.0]])),
    ("log_zero_negative", _v(lambda x: x.log().sum(), [0.0, -1.0, 1.0]),
     (nan, [[inf, -1.0, 1.0]])),
    ("sqrt_zero_negative", _v(lambda x: x.sqrt().sum(), [0.0, -1.0, 4.0]),
     (nan, [[inf, nan, 0.25]])),
    ("reciprocal_zero", _v(lambda x: (1.0 / x).sum(), [0.0, -0.0, 2.0]),
     (nan, [[-inf, -inf, -0.25]])),
    ("zero_over_zero", _v(lambda x: (x / x).sum(), [0.0, 2.0]), (nan, [[nan, 0.0]])),
    ("scalar_log_zero", _v(lambda x: x.log(), 0.0), (-inf, [inf])),
    ("scalar_sqrt_zero", _v(lambda x: x.sqrt(), 0.0), (0.0, [inf])),
    ("scalar_reciprocal_zero", _v(lambda x: 1.0 / x, 0.0), (inf, [-inf])),
    ("scalar_nan", _v(lambda x: x * x + 1, nan), (nan, [nan])),
    ("scalar_exp_inf", _v(lambda x: x.exp(), inf), (inf, [inf])),
    ("scalar_exp_overflow", _v(lambda x: x.exp(), 1000.0), (inf, [inf])),
    ("scalar_sqrt_of_negative_power", _v(lambda x: x ** 0.5, -1.0), (nan, [nan])),
    ("scalar_zero_to_the_zero", _v(lambda x: x ** 0.0, 0.0), (1.0, [0.0])),
    ("zero_to_minus_one", _v(lambda x: (x ** -1.0).sum(), [0.0, 2.0]), (inf, [[-inf, -0.25]])),
    ("clamp_nan", _v(lambda x: x.clamp(0, 1).sum(), [nan, -1.0, 0.5]), (nan, [[0.0, 0.0, 1.0]])),
    ("abs_nan", _v(lambda x: x.abs().sum(), [nan, -1.0, 0.0]), (nan, [[0.0, -1.0, 0.0]])),
    ("softmax_inf", _v(lambda x: x.softmax(0)[0], [inf, 1.0]), (nan, [[nan, nan]])),
    ("logsumexp_minus_inf", _v(lambda x: x.logsumexp(0), [-inf, 1.0]), (1.0, [[0.0, 1.0]])),
    ("logsumexp_all_minus_inf", _v(lambda x: x.logsumexp(0), [-inf, -inf]),
     (-inf, [[nan, nan]])),
    ("norm_of_zeros", _v(lambda x: x.norm(), [0.0, 0.0]), (0.0, [[0.0, 0.0]])),
    ("std_of_one", _v(lambda x: x.std(), [1.0]), (nan, [[nan]])),
    ("prod_with_a_zero", _v(lambda x: x.prod(), [0.0, 2.0, 3.0]), (0.0, [[6.0, 0.0, 0.0]])),
    ("prod_with_two_zeros", _v(lambda x: x.prod(), [0.0, 0.0, 3.0]), (0.0, [[0.0, 0.0, 0.0]])),
    ("sigmoid_saturated", _v(lambda x: x.sigmoid().sum(), [-1000.0, 1000.0]), (1.0, [[0.0, 0.0]])),
    ("tanh_inf", _v(lambda x: x.tanh().sum(), [-inf, inf]), (0.0, [[0.0, 0.0]])),
    ("scalar_sigmoid_saturated", _v(lambda x: x.sigmoid(), -1000.0), (0.0, [0.0])),
    ("mm_nan_inf", _v(lambda a, b: a.mm(b).sum(), [[nan, 1.0]], [[1.0], [inf]]),
     (nan, [[[1.0, inf]], [[nan], [1.0]]])),
]
VALUE_BUGS = [
    ("max_with_nan", _v(lambda x: x.max(), [1.0, nan, 2.0]), (nan, [[0.0, 1.0, 0.0]]),
     "max() over values with a NaN gives the NaN no gradient; PyTorch gives it the whole "
     "gradient"),
    ("maximum_with_nan", _v(lambda x, y: x.maximum(y).sum(), [1.0, nan], [nan, 0.0]),
     (nan, [[1.0, 1.0], [1.0, 1.0]]),
     "maximum(x, y) where one side is NaN splits the gradient 0.5/0.5; PyTorch gives 1 to each"),
    ("relu_nan", _v(lambda x: x.relu().sum(), [nan, -1.0, 1.0]), (nan, [[1.0, 0.0, 1.0]]),
     "relu's gradient at NaN is 0; PyTorch's is 1 (threshold_backward passes NaN through)"),
]
for _id, _f, _want in VALUES:
    case(_id, value(_want))(_f)
for _id, _f, _want, _why in VALUE_BUGS:      # found as bugs, fixed: kept as cases
    case(_id, value(_want))(_f)

# --- empty tensors --------------------------------------------------------------------------
EMPTY = [
    ("sum_of_empty", _v(lambda x: x.sum(), []), (0.0, [[]])),
    ("mean_of_empty", _v(lambda x: x.mean(), []), (nan, [[]])),
    ("mean_dim0_of_empty", lambda L: _grads(L, lambda x: x.mean(0).sum(),
                                            L.ones(0, 3, dtype=L.float64, requires_grad=True)),
     (nan, [[]])),
    ("mean_dim1_of_empty", lambda L: _grads(L, lambda x: x.mean(1).sum(),
                                            L.ones(0, 3, dtype=L.float64, requires_grad=True)),
     (0.0, [[]])),
    ("sum_dim0_of_empty", lambda L: (lambda x: (x.sum(0).tolist(), x.sum(0).sum().backward(),
                                                x.grad.tolist())[::2])(
        L.ones(0, 3, dtype=L.float64, requires_grad=True)), ([0.0, 0.0, 0.0], [])),
    ("mean_dim0_values", lambda L: L.ones(0, 3, dtype=L.float64).mean(0).tolist(),
     [nan, nan, nan]),
    ("ops_on_empty", lambda L: _grads(L, lambda x: (x.exp() * 2 + x).sum() + x.t().mm(x).sum(),
                                      L.ones(0, 3, dtype=L.float64, requires_grad=True)),
     (0.0, [[]])),
    ("mm_empty_inner", lambda L: (lambda a: (a.mm(L.ones(0, 3, dtype=L.float64)).sum().backward(),
                                             a.grad.tolist())[1])(
        L.ones(2, 0, dtype=L.float64, requires_grad=True)), [[], []]),
    ("cat_with_empty", lambda L: _grads(L, lambda x, y: L.cat([x, y]).sum(), _leaf(L, []),
                                        _leaf(L, [1.0, 2.0])), (3.0, [[], [1.0, 1.0]])),
    ("var_of_empty", _v(lambda x: x.var(), []), (nan, [[]])),
    ("logsumexp_of_empty", _v(lambda x: x.logsumexp(0), []), (-inf, [[]])),
    ("prod_of_empty", _v(lambda x: x.prod(), []), (1.0, [[]])),
    ("norm_of_empty", _v(lambda x: x.norm(), []), (0.0, [[]])),
    ("empty_slice", _v(lambda x: x[2:1].sum(), [1.0, 2.0, 3.0]), (0.0, [[0.0, 0.0, 0.0]])),
    ("tensor_of_empty_lists", lambda L: list(L.tensor([[], []]).shape), [2, 0]),
]
EMPTY_BUGS = [
    ("softmax_of_empty", _v(lambda x: x.softmax(0).sum(), []), (0.0, [[]]),
     "softmax of an empty tensor raises numpy's ValueError 'zero-size array to reduction "
     "operation maximum which has no identity'; PyTorch returns an empty tensor"),
    ("index_with_empty_list", _v(lambda x: x[[]].sum(), [1.0, 2.0, 3.0]),
     (0.0, [[0.0, 0.0, 0.0]]),
     "x[[]] raises IndexError 'tensors used as indices must be long, int, byte or bool "
     "tensors' (the empty list becomes a float array); PyTorch selects nothing"),
]
for _id, _f, _want in EMPTY:
    case(_id, value(_want))(_f)
for _id, _f, _want, _why in EMPTY_BUGS:      # found as bugs, fixed: kept as cases
    case(_id, value(_want))(_f)
case("max_of_empty", raises(RuntimeError, "max(): Expected reduction dim to be specified for "
                                          "input.numel() == 0. Specify the reduction dim with the "
                                          "'dim' argument."))(
    lambda L: L.ones(0, requires_grad=True).max())
case("amax_of_empty", raises(RuntimeError, "amax(): Expected reduction dim to be specified for "
                                           "input.numel() == 0. Specify the reduction dim with "
                                           "the 'dim' argument."))(
    lambda L: L.ones(0, requires_grad=True).amax())
case("max_dim_of_empty", raises(IndexError, "max(): Expected reduction dim 0 to have non-zero "
                                            "size."))(
    lambda L: L.ones(0, 3, requires_grad=True).max(0))



# --- tg.tensor of things that are not numbers -----------------------------------------------
OBJECT_TYPES = ("float64, float32, int64, int32, int16, int8, uint8, and bool.")
case("object_array_mixed", raises(TypeError, "can't convert np.ndarray of type numpy.object_. "
                                             "The only supported types are: " + OBJECT_TYPES),
     own=True)(   # PyTorch's list also names float16, complex64, complex128, uint16 ...
    lambda L: L.tensor(np.array([1, "a"], dtype=object)))
case("object_array_of_floats", raises(TypeError, "can't convert np.ndarray of type "
                                                 "numpy.object_. The only supported types are: "
                                      + OBJECT_TYPES), own=True)(
    lambda L: L.tensor(np.array([1.0, 2.0], dtype=object)))
case("complex", raises(TypeError, "can't convert np.ndarray of type complex128. The only "
                                  "supported types are: " + OBJECT_TYPES), own=True)(
    lambda L: L.tensor(1 + 2j))   # PyTorch has complex tensors; tapegrad does not
case("string", raises(TypeError, "new(): invalid data type 'str'"))(lambda L: L.tensor("abc"))
case("bytes", raises(TypeError, "new(): invalid data type 'bytes'"))(lambda L: L.tensor(b"ab"))
case("list_of_strings", raises(ValueError, "too many dimensions 'str'"))(
    lambda L: L.tensor(["a", "b"]))
case("string_in_list", raises(TypeError, "new(): invalid data type 'str'"))(
    lambda L: L.tensor([1.0, "a"]))
case("numpy_strings", raises(TypeError, "can't convert np.ndarray of type numpy.str_. The only "
                                        "supported types are: " + OBJECT_TYPES), own=True)(
    lambda L: L.tensor(np.array(["a"])))
case("ragged_short_row", raises(ValueError, "expected sequence of length 2 at dim 1 (got 1)"))(
    lambda L: L.tensor([[1, 2], [3]]))
case("ragged_long_row", raises(ValueError, "expected sequence of length 2 at dim 1 (got 3)"))(
    lambda L: L.tensor([[1.0, 2.0], [3.0, 4.0, 5.0]]))
case("none", raises(RuntimeError, "Could not infer dtype of NoneType"))(lambda L: L.tensor(None))
case("none_in_list", raises(RuntimeError, "Could not infer dtype of NoneType"))(lambda L: L.tensor([1.0, None]))
case("dict", raises(RuntimeError, "Could not infer dtype of dict"))(lambda L: L.tensor({1: 2}))
case("nan_to_int64", raises(RuntimeError, "value cannot be converted to type int64 without "
                                          "overflow"))(
    lambda L: L.tensor([nan], dtype=L.int64))
case("list_of_one_element_tensors", value([2]))(
    lambda L: list(L.tensor([L.ones(1), L.ones(1)]).shape))
case("list_with_a_tensor_requiring_grad", value([1.0, 2.0]))(
    lambda L: _quiet(lambda: L.tensor([L.tensor(1.0, requires_grad=True),
                                       L.tensor(2.0)]).tolist()))
case("negative_size", raises(RuntimeError, "Trying to create tensor with negative dimension -1: "
                                           "[-1]"))(
    lambda L: L.ones(-1))
case("negative_size_2d", raises(RuntimeError, "Trying to create tensor with negative dimension "
                                              "-3: [2, -3]"))(
    lambda L: L.full((2, -3), 1.0))
case("negative_size_randn", raises(RuntimeError, "Trying to create tensor with negative dimension "
                                                 "-2: [-2]"))(
    lambda L: L.randn(-2))
case("int_rand", raises(NotImplementedError, "\"check_uniform_bounds\" not implemented for "
                                             "'Int'"))(
    lambda L: L.rand(2, dtype=L.int32))
case("uint8_overflow", raises(RuntimeError, "value cannot be converted to type uint8 without "
                                            "overflow"))(
    lambda L: L.tensor([300], dtype=L.uint8))
case("int8_overflow", raises(RuntimeError, "value cannot be converted to type int8 without "
                                           "overflow"))(
    lambda L: L.tensor([[1], [-129]], dtype=L.int8))
case("inf_to_int32", raises(RuntimeError, "value cannot be converted to type int32 without "
                                          "overflow"))(
    lambda L: L.tensor(inf, dtype=L.int32))
case("negative_to_uint8_wraps", value([255, 1]))(
    lambda L: L.tensor([-1, -255], dtype=L.uint8).tolist())
case("float_to_int64_truncates", value([2, -2]))(
    lambda L: L.tensor([2.7, -2.7], dtype=L.int64).tolist())
case("int_beyond_int64", raises(ValueError, "Overflow when unpacking long long"))(
    lambda L: L.tensor([2 ** 63]))
case("int_beyond_int64_as_float", value([2.0 ** 70]))(
    lambda L: L.tensor([2 ** 70], dtype=L.float64).tolist())
case("numpy_float64_scalars_in_a_list", value("float64"))(
    lambda L: str(L.tensor([np.float64(1.5), 2.0]).dtype).split(".")[-1])
case("float64_tensor_in_a_list", value("float64"))(
    lambda L: str(L.tensor([L.tensor(1.5, dtype=L.float64), 2.0]).dtype).split(".")[-1])
case("tensor_as_a_row", value([[1, 2], [3, 4]]))(
    lambda L: L.tensor([[1, 2], L.tensor([3, 4])]).tolist())
case("tensor_row_too_long", raises(ValueError, "expected sequence of length 2 at dim 1 (got 3)"))(
    lambda L: L.tensor([[1, 2], L.tensor([3, 4, 5])]))
case("two_element_tensor_in_a_list", raises(ValueError, "only one element tensors can be "
                                                        "converted to Python scalars"))(
    lambda L: L.tensor([L.ones(2), L.ones(2)]))
case("list_where_a_number_goes", raises(TypeError, "'list' object cannot be interpreted as an "
                                                   "integer"))(
    lambda L: L.tensor([1, [2, 3]]))
case("list_where_a_float_goes", raises(TypeError, "must be real number, not list"))(
    lambda L: L.tensor([1.0, [2.0]]))
case("number_where_a_row_goes", raises(TypeError, "not a sequence"))(
    lambda L: L.tensor([[1, 2], 3]))
case("ragged_deep", raises(ValueError, "expected sequence of length 1 at dim 2 (got 2)"))(
    lambda L: L.tensor([[[1], [2]], [[3], [4, 5]]]))
case("none_before_ragged", raises(RuntimeError, "Could not infer dtype of NoneType"))(
    lambda L: L.tensor([[1, None], [3]]))
case("string_in_a_row", raises(TypeError, "new(): invalid data type 'str'"))(
    lambda L: L.tensor([[1.0, 2.0], "ab"]))
case("numpy_string_scalar", raises(TypeError, "new(): invalid data type 'numpy.str_'"))(
    lambda L: L.tensor(np.str_("a")))
case("set", raises(RuntimeError, "Could not infer dtype of set"))(lambda L: L.tensor({1}))
case("empty_rows", value([[2, 0], "float32"]))(
    lambda L: (lambda t: [list(t.shape), str(t.dtype).split(".")[-1]])(L.tensor([[], [1]])))
case("range", value([0, 1, 2]))(lambda L: L.tensor(range(3)).tolist())


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


# --- misuse of the autograd API and of shapes, indices, dims ---------------------------------
def _hooked(L, hook):
    x = _leaf(L, [1.0, 2.0])
    h = x * 1
    h.register_hook(hook)
    (h * 2).sum().backward()


def _double_it(g):
    return g.repeat(2) if hasattr(g, "repeat") else g.expand(2, 2).reshape(4)


def _set_grad(L, value):
    x = _leaf(L, [1.0, 2.0])
    x.grad = value


case("hook_on_a_tensor_without_grad", raises(RuntimeError, "cannot register a hook on a tensor "
                                                           "that doesn't require gradient"))(
    lambda L: L.ones(2).register_hook(lambda g: g))
case("hook_changes_the_size", raises(RuntimeError, "hook '<lambda>' has changed the size of "
                                                   "value"))(
    lambda L: _hooked(L, lambda g: L.ones(3, dtype=L.float64)))
case("hook_returns_a_number", raises(TypeError, "expected Variable, but hook returned 'float'"))(
    lambda L: _hooked(L, lambda g: 3.0))
case("hook_changes_the_dtype", raises(RuntimeError, "hook '<lambda>' has changed the type of "
                                                   "value (was torch.DoubleTensor got "
                                                   "torch.FloatTensor)"))(
    lambda L: _hooked(L, lambda g: L.ones(2, dtype=L.float32)))
case("hook_returns_a_list", raises(TypeError, "expected Variable, but hook returned 'list'"))(
    lambda L: _hooked(L, lambda g: [1.0, 2.0]))
case("hook_changes_the_size_named", raises(RuntimeError, "hook '_double_it' has changed the "
                                                         "size of value"))(
    lambda L: _hooked(L, _double_it))
case("hook_on_a_leaf_changes_the_size", raises(RuntimeError, "hook '<lambda>' has changed the "
                                                             "size of value"))(
    lambda L: (lambda x: (x.register_hook(lambda g: L.ones(3, dtype=L.float64)),
                          (x * 2).sum().backward()))(_leaf(L, [1.0, 2.0])))
case("grad_assigned_wrong_shape", raises(RuntimeError, "attempting to assign a gradient of size "
                                                       "'[3]' to a tensor of size '[2]'. Please "
                                                       "ensure that the gradient and the tensor "
                                                       "are the same size"))(
    lambda L: _set_grad(L, L.ones(3, dtype=L.float64)))
case("grad_assigned_wrong_dtype", raises(RuntimeError, (
        "attempting to assign a gradient with dtype 'float' to a tensor with grad_dtype "
        "'Double'. The gradient must match the tensor's grad_dtype (defaults to the tensor's "
        "dtype). You can set the tensor's grad_dtype attribute with a specific dtype, or None "
        "to allow any dtype. Set grad_dtype with caution. Diverging the dtypes of a tensor "
        "and its gradient may break downstream systems that assume they match.")))(
    lambda L: _set_grad(L, L.ones(2, dtype=L.float32)))
case("grad_assigned_a_list", raises(TypeError, "assigned grad expected to be a Tensor or None "
                                               "but got grad of type list"))(
    lambda L: _set_grad(L, [1.0, 2.0]))
case("retain_grad_without_grad", raises(RuntimeError, "can't retain_grad on Tensor that has "
                                                      "requires_grad=False"))(
    lambda L: L.ones(2).retain_grad())
case("requires_grad_false_on_a_non_leaf", raises(RuntimeError, (
        "you can only change requires_grad flags of leaf variables. If you want to use a "
        "computed variable in a subgraph that doesn't require differentiation use "
        "var_no_grad = var.detach().")))(
    lambda L: setattr(_leaf(L, [1.0]) * 2, "requires_grad", False))
case("autograd_grad_of_an_unused_input", raises(RuntimeError, (
        "The differentiated Tensor at index 1 appears to not have been used in the graph. Set "
        "allow_unused=True if this is the desired behavior.")))(
    lambda L: _grad_unused(L))
case("autograd_grad_of_an_input_without_grad", raises(RuntimeError, "One of the differentiated "
                                                                    "Tensors does not require "
                                                                    "grad"))(
    lambda L: L.autograd.grad((_leaf(L, [1.0]) * 2).sum(), [L.ones(1)]))
case("autograd_grad_of_a_non_scalar", raises(RuntimeError, "grad can be implicitly created only "
                                                           "for scalar outputs"))(
    lambda L: (lambda x: L.autograd.grad(x * 2, [x]))(_leaf(L, [1.0, 2.0])))
case("autograd_grad_twice", raises(RuntimeError, SECOND_TIME))(
    lambda L: (lambda x: (lambda y: (L.autograd.grad(y, [x]), L.autograd.grad(y, [x])))(
        (x * x).sum()))(_leaf(L, [1.0, 2.0])))
case("item_of_empty", raises(RuntimeError, "a Tensor with 0 elements cannot be converted to "
                                           "Scalar"))(lambda L: L.ones(0).item())
case("float_of_two_elements", raises(ValueError, "only one element tensors can be converted to "
                                                 "Python scalars"))(
    lambda L: float(L.ones(2)))
case("bool_of_two_elements", raises(RuntimeError, "Boolean value of Tensor with more than one "
                                                  "value is ambiguous"))(
    lambda L: bool(L.ones(2)))
case("len_of_0d", raises(TypeError, "len() of a 0-d tensor"))(lambda L: len(L.tensor(1.0)))
case("reshape_wrong_size", raises(RuntimeError, "shape '[2, 2]' is invalid for input of size "
                                                "3"))(
    lambda L: _leaf(L, [1.0, 2.0, 3.0]).reshape(2, 2))
case("view_of_a_non_contiguous_tensor", raises(RuntimeError, (
        "view size is not compatible with input tensor's size and stride (at least one "
        "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")))(
    lambda L: L.ones(2, 2, 2, requires_grad=True)[:, 1].view(4))
case("view_wrong_size", raises(RuntimeError, "shape '[-1, 2]' is invalid for input of size 3"))(
    lambda L: _leaf(L, [1.0, 2.0, 3.0]).view(-1, 2))
case("select_out_of_range", raises(IndexError, "index 3 is out of bounds for dimension 0 with "
                                               "size 3"))(
    lambda L: _leaf(L, [1.0, 2.0, 3.0])[3])
case("sum_dim_out_of_range", raises(IndexError, "Dimension out of range (expected to be in "
                                                "range of [-1, 0], but got 1)"))(
    lambda L: _leaf(L, [1.0, 2.0, 3.0]).sum(1))
case("softmax_dim_out_of_range", raises(IndexError, "Dimension out of range (expected to be in "
                                                    "range of [-1, 0], but got 2)"))(
    lambda L: _leaf(L, [1.0, 2.0, 3.0]).softmax(2))
case("permute_too_few_dims", raises(RuntimeError, (
        "permute(sparse_coo): number of dimensions in the tensor input does not match the "
        "length of the desired ordering of dimensions i.e. input.dim() = 2 is not equal to "
        "len(dims) = 1")))(
    lambda L: _leaf(L, [[1.0, 2.0]]).permute(0))
case("expand_mismatch", raises(RuntimeError, (
        "The expanded size of the tensor (3) must match the existing size (2) at non-singleton "
        "dimension 1.  Target sizes: [3, 3].  Tensor sizes: [2]")))(
    lambda L: _leaf(L, [1.0, 2.0]).expand(3, 3))
case("t_of_3d", raises(RuntimeError, "t() expects a tensor with <= 2 dimensions, but self is "
                                     "3D"))(
    lambda L: L.ones(2, 2, 2, requires_grad=True).t())
case("index_with_floats", raises(IndexError, "tensors used as indices must be long, int, byte "
                                             "or bool tensors"))(
    lambda L: _leaf(L, [1.0, 2.0])[L.tensor([0.0])])
case("index_list_out_of_range", raises(IndexError, "index 5 is out of bounds for dimension 0 "
                                                   "with size 2"))(
    lambda L: _leaf(L, [1.0, 2.0])[[0, 5]])
case("gather_out_of_range", raises(RuntimeError, "index 5 is out of bounds for dimension 1 with "
                                                 "size 2"))(
    lambda L: _leaf(L, [[1.0, 2.0]]).gather(1, L.tensor([[5]])))
case("index_select_out_of_range", raises(IndexError, "index out of range in self"))(
    lambda L: _leaf(L, [1.0, 2.0]).index_select(0, L.tensor([5])))
case("cat_of_0d", raises(RuntimeError, "zero-dimensional tensor (at position 0) cannot be "
                                       "concatenated"))(
    lambda L: L.cat([_leaf(L, 1.0), _leaf(L, 2.0)]))
case("cat_of_nothing", raises(ValueError, "torch.cat(): expected a non-empty list of Tensors"))(
    lambda L: L.cat([]))
case("where_float_condition", raises(RuntimeError, "where expected condition to be a boolean "
                                                   "tensor, but got a tensor with dtype Float"))(
    lambda L: L.where(L.ones(2), _leaf(L, [1.0, 2.0]), _leaf(L, [1.0, 2.0])))
case("clamp_without_bounds", raises(RuntimeError, "torch.clamp: At least one of 'min' or 'max' "
                                                  "must not be None"))(
    lambda L: _leaf(L, [1.0]).clamp())
case("mean_of_integers", raises(RuntimeError, (
        "mean(): could not infer output dtype. Input dtype must be either a floating point or "
        "complex dtype. Got: Long")))(
    lambda L: L.ones(2, dtype=L.int64).mean())
case("setitem_value_too_long", raises(RuntimeError, (
        "The expanded size of the tensor (2) must match the existing size (3) at non-singleton "
        "dimension 0.  Target sizes: [2].  Tensor sizes: [3]")))(
    lambda L: (lambda t: t.__setitem__(0, L.ones(3, dtype=L.float64)))(
        _leaf(L, [[1.0, 2.0]]) * 1))
case("setitem_value_with_leading_ones", value([[5.0, 5.0], [1.0, 1.0]]))(
    lambda L: (lambda t: (t.__setitem__(0, L.full((1, 1), 5.0, dtype=L.float64)), t.tolist())[1])(
        _leaf(L, [[1.0, 1.0], [1.0, 1.0]]) * 1))
case("setitem_matrix_into_a_row", raises(RuntimeError, (
        "expand(torch.DoubleTensor{[2, 2]}, size=[2]): the number of sizes provided (1) must "
        "be greater or equal to the number of dimensions in the tensor (2)")))(
    lambda L: (lambda t: t.__setitem__(0, L.ones(2, 2, dtype=L.float64)))(
        _leaf(L, [[1.0, 2.0]]) * 1))
case("setitem_column_too_long", raises(RuntimeError, (
        "The expanded size of the tensor (2) must match the existing size (3) at non-singleton "
        "dimension 0.  Target sizes: [2].  Tensor sizes: [3]")))(
    lambda L: (lambda t: t.__setitem__((slice(None), 0), L.ones(3)))(L.ones(2, 3)))
case("setitem_advanced_key_mismatch", raises(RuntimeError, (
        "shape mismatch: value tensor of shape [3, 3] cannot be broadcast to indexing result "
        "of shape [2, 3]")))(
    lambda L: (lambda t: t.__setitem__([0, 1], L.ones(3, 3)))(L.ones(2, 3)))
case("expand_two_mismatches", raises(RuntimeError, (
        "The expanded size of the tensor (4) must match the existing size (3) at non-singleton "
        "dimension 1.  Target sizes: [3, 4].  Tensor sizes: [2, 3]")))(
    lambda L: L.ones(2, 3, requires_grad=True).expand(3, 4))
case("expand_too_few_sizes", raises(RuntimeError, (
        "expand(torch.DoubleTensor{[2, 3]}, size=[3]): the number of sizes provided (1) must be "
        "greater or equal to the number of dimensions in the tensor (2)")))(
    lambda L: L.ones(2, 3, dtype=L.float64).expand(3))
case("index_after_none_names_its_dim", raises(IndexError, "index 7 is out of bounds for "
                                                          "dimension 3 with size 4"))(
    lambda L: L.ones(2, 3, 4, requires_grad=True)[None, 0, 1, 7])
case("index_after_ellipsis_names_its_dim", raises(IndexError, "index 5 is out of bounds for "
                                                              "dimension 1 with size 3"))(
    lambda L: L.ones(2, 3, requires_grad=True)[..., 5])
case("dot_dtype_before_sizes", raises(RuntimeError, "dot : expected both vectors to have same "
                                                    "dtype, but found Long and Float"))(
    lambda L: L.ones(3, dtype=L.int64).dot(L.ones(4)))
case("float_of_empty", raises(ValueError, "only one element tensors can be converted to "
                                          "Python scalars"))(
    lambda L: float(L.ones(0)))
case("bool_to_a_negative_power", raises(RuntimeError, "Integers to negative integer powers are "
                                                      "not allowed."))(
    lambda L: L.tensor([True]) ** -2)
case("int_gradient_for_a_scalar", value([6.0]))(
    lambda L: (lambda x: ((x * 2).sum().backward(L.tensor(3)), x.grad.tolist())[1])(
        _leaf(L, [1.0])))
case("integer_to_a_negative_power", raises(RuntimeError, "Integers to negative integer powers "
                                                         "are not allowed."))(
    lambda L: L.tensor([2]) ** -1)
case("in_place_float_into_int", raises(RuntimeError, "result type Float can't be cast to the "
                                                     "desired output type Long"))(
    lambda L: L.ones(2, dtype=L.int64).add_(1.5))
case("numpy_of_a_tensor_requiring_grad", raises(RuntimeError, (
        "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
        "instead.")))(
    lambda L: _leaf(L, [1.0]).numpy())

NINE_DIMS = "tapegrad: tensors have at most 8 dimensions"
case("nine_dims_mul", raises(RuntimeError, NINE_DIMS), own=True)(   # PyTorch: up to 64
    lambda L: L.ones(*[2] * 9, requires_grad=True) * 2)
case("nine_dims_slice", raises(RuntimeError, NINE_DIMS), own=True)(
    lambda L: L.ones(*[2] * 9, requires_grad=True)[:, 1:])
for _name, _f in {"sum": lambda x: x.sum(), "mean": lambda x: x.mean(),
                  "amax": lambda x: x.amax(0), "norm": lambda x: x.norm(),
                  "logsumexp": lambda x: x.logsumexp(0)}.items():
    case(f"nine_dims_{_name}", raises(RuntimeError, NINE_DIMS), own=True)(
        lambda L, f=_f: f(L.ones(*[2] * 9, requires_grad=True)))
case("eight_dims_backward", value(512.0))(
    lambda L: (lambda x: ((x * 2).permute(*range(7, -1, -1)).sum(3).sum().backward(),
                          float(x.grad.sum()))[1])(L.ones(*[2] * 8, dtype=L.float64,
                                                          requires_grad=True)))


def _grad_unused(L):
    x, y = _leaf(L, [1.0]), _leaf(L, [2.0])
    L.autograd.grad((x * 2).sum(), [x, y])


# ----- running the catalogue ----------------------------------------------------------------
def _same(got, want):
    """Equal, NaN equal to NaN, -0.0 equal to 0.0, floats to 1e-12 relative."""
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    if want is None:
        assert got is None
        return
    if isinstance(want, float):
        if math.isnan(want):
            assert isinstance(got, float) and math.isnan(got), (got, want)
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (got, want)
        return
    assert got == want, (got, want)


def _torch_words(msg):
    """The catalogue's message as tapegrad words it: ``torch.X`` type names read
    ``tapegrad.X`` (functions such as torch.autograd.* keep their name)."""
    return re.sub(r"\btorch\.(?=[A-Z])", "tapegrad.", msg)


def _params():
    return [pytest.param(c, id=c.id) for c in CASES]


def _tape():
    return thread_state().tape


@pytest.mark.parametrize("c", _params())
def test_bad_input(c):
    kind, want = c.expect
    if kind == "value":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = c.scenario(tg)
        _same(got, want)
    else:
        with pytest.raises(BaseException) as info:
            c.scenario(tg)
        assert info.type is kind, f"{info.type.__name__}: {info.value}"
        assert str(info.value) == _torch_words(want)
    assert tg.is_grad_enabled() or _restore_grad_mode()
    still_works()


def _restore_grad_mode():
    tg.set_grad_enabled(True)     # a scenario that entered no_grad by hand
    return True


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES if not c.own])
def test_bad_input_in_pytorch(c):
    """The catalogue's expectation is PyTorch's (so a fixed tapegrad matches PyTorch)."""
    torch = pytest.importorskip("torch")
    kind, want = c.expect
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = c.scenario(torch)
    except Exception as e:  # noqa: BLE001
        assert kind is type(e), f"PyTorch raised {type(e).__name__}: {e}"
        assert str(e) == want
    else:
        assert kind == "value", f"PyTorch raised nothing (gave {got!r})"
        _same(got, want)
    torch.set_grad_enabled(True)


def test_catalogue_size():
    """The figure for the issue's closing note."""
    assert len(CASES) >= 150, len(CASES)


# ----- huge sizes: MemoryError, the tape unchanged ------------------------------------------
HUGE = [
    pytest.param(lambda: tg.ones(10 ** 12), id="ones"),
    pytest.param(lambda: tg.zeros(10 ** 6, 10 ** 6), id="zeros_2d"),
    pytest.param(lambda: tg.ones(10 ** 12, requires_grad=True), id="ones_requires_grad"),
    pytest.param(lambda: tg.randn(10 ** 12), id="randn"),
    pytest.param(lambda: tg.full((10 ** 12,), 2.0), id="full"),
    pytest.param(lambda: tg.empty(10 ** 12, dtype=tg.float64), id="empty"),
]


@pytest.mark.parametrize("make", HUGE)
def test_huge_allocation_raises_memory_error_and_leaves_the_tape(make):
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    pending = (x * 3).sum()                  # a graph waiting on the tape
    tape, n = _tape(), len(_tape())
    with pytest.raises(MemoryError) as info:   # numpy's _ArrayMemoryError is one
        make()
    assert issubclass(info.type, MemoryError)
    assert str(info.value).startswith("Unable to allocate ")
    assert _tape() is tape and len(tape) == n
    pending.backward()
    assert x.grad.tolist() == [3.0, 3.0]
    still_works()


@pytest.mark.parametrize("op", [
    pytest.param(lambda a, b: a * b, id="mul"),
    pytest.param(lambda a, b: a + b, id="add"),
    pytest.param(lambda a, b: a.maximum(b), id="maximum"),
    pytest.param(lambda a, b: tg.where(a > 0, a, b), id="where"),
])
def test_huge_result_of_a_recorded_op_leaves_the_tape(op):
    a = tg.ones(10 ** 6, 1, dtype=tg.float64, requires_grad=True)
    b = tg.ones(1, 10 ** 7, dtype=tg.float64, requires_grad=True)
    a.sum(), b.sum()                         # both recorded on the tape already
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    pending = (x * x).sum()
    tape, n = _tape(), len(_tape())
    with pytest.raises(MemoryError):
        op(a, b)
    assert len(tape) == n
    pending.backward()
    assert x.grad.tolist() == [2.0, 4.0]
    still_works()


def test_huge_view_left_on_the_tape_does_not_break_later_backwards():
    x = tg.ones(1, requires_grad=True)
    big = (x * 1).expand(10 ** 6, 10 ** 6)       # a view: no memory, as in PyTorch
    del big
    y = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    (y * y).sum().backward()
    assert y.grad.tolist() == [2.0, 4.0]


# ----- an exception raised in user code halfway through recording ---------------------------
def _model(w, x, fail_at):
    h = x.mm(w)
    if fail_at == 1:
        raise ValueError("user code failed")
    h = h.tanh().sum(1)
    if fail_at == 2:
        raise ValueError("user code failed")
    return (h * h).sum()


def test_exception_halfway_through_recording_leaves_the_next_recording_clean():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 2))
    X = rng.standard_normal((4, 3))
    w = tg.tensor(W, dtype=tg.float64, requires_grad=True)
    x = tg.tensor(X, dtype=tg.float64)
    for fail_at in (1, 2, 1, 2):
        with pytest.raises(ValueError, match="user code failed"):
            _model(w, x, fail_at)
    assert w.grad is None
    loss = _model(w, x, 0)
    loss.backward()
    H = np.tanh(X @ W)
    S = H.sum(1)
    want = X.T @ ((2 * S)[:, None] * (1 - H ** 2))
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)
    assert loss.item() == pytest.approx((S ** 2).sum(), rel=1e-12)
    # again, with the abandoned records of the failures on the same tape
    w.grad = None
    with pytest.raises(ValueError):
        _model(w, x, 2)
    _model(w, x, 0).backward()
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)
    still_works()


def test_exception_inside_no_grad_restores_grad_mode():
    x = tg.ones(2, requires_grad=True)
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            x * 2
            1 / 0
    assert tg.is_grad_enabled()
    still_works()


def test_exception_while_tg_compile_records():
    w = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    calls = []

    def f(w):
        y = (w * w).sum()
        if not calls:
            calls.append(1)
            raise ValueError("first call fails")
        return y

    cf = tg.compile(f)
    with pytest.raises(ValueError):
        cf(w)
    assert thread_state().recording is None
    y = cf(w)
    y.backward()
    assert w.grad.tolist() == [2.0, 4.0]
    still_works()


def test_many_abandoned_recordings_do_not_grow_the_tape_without_bound():
    w = tg.tensor([[0.5, -0.2], [0.1, 0.3], [0.7, 0.9]], dtype=tg.float64, requires_grad=True)
    x = tg.tensor(np.ones((4, 3)), dtype=tg.float64)
    longest = 0
    for _ in range(6000):
        try:
            _model(w, x, 2)
        except ValueError:
            pass
        longest = max(longest, len(_tape()))
    assert longest <= 2 * (1 << 14) // 5 + 100, longest
    still_works()


# ----- KeyboardInterrupt during backward -----------------------------------------------------
def _interrupt(grad):
    raise KeyboardInterrupt


def _consistent_after_interrupt(leaves):
    assert all(x.grad is None for x in leaves)       # nothing half-accumulated
    assert tg.is_grad_enabled()
    still_works()


def test_keyboard_interrupt_in_a_tensor_hook():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    h = x * x
    handle = h.register_hook(_interrupt)
    out = (h * 3).sum()
    with pytest.raises(KeyboardInterrupt):
        out.backward()
    _consistent_after_interrupt([x])
    # the interrupted graph: backward again either works or says it was freed (PyTorch)
    handle.remove()
    try:
        out.backward()
    except RuntimeError as e:
        assert str(e) == SECOND_TIME
    else:
        assert x.grad.tolist() == [6.0, 12.0]


def test_keyboard_interrupt_in_a_leaf_hook():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    w = tg.tensor([3.0], dtype=tg.float64, requires_grad=True)
    x.register_hook(_interrupt)
    with pytest.raises(KeyboardInterrupt):
        (x * w).sum().backward()
    assert x.grad is None
    _consistent_after_interrupt([x])


def test_keyboard_interrupt_in_a_scalar_graph():
    a = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    h = a
    for _ in range(50):
        h = h * 1.01 + 0.1
    h.register_hook(_interrupt)
    out = h.exp()
    with pytest.raises(KeyboardInterrupt):
        out.backward()
    _consistent_after_interrupt([a])


def test_keyboard_interrupt_then_a_network_trains_as_without_it():
    def train(interrupt):
        tg.manual_seed(3)
        x = tg.randn(16, 3, dtype=tg.float64)
        w = tg.randn(3, 4, dtype=tg.float64, requires_grad=True)
        losses = []
        for i in range(5):
            h = x.mm(w).relu()
            if interrupt and i == 2:
                h.register_hook(_interrupt)
                try:
                    h.pow(2).sum().backward()
                except KeyboardInterrupt:
                    pass
                h = x.mm(w).relu()
            loss = h.pow(2).sum()
            loss.backward()
            losses.append(loss.item())
            with tg.no_grad():
                w.sub_(0.01 * w.grad)
                w.grad.zero_()
        return losses, w.detach().numpy().copy()
    a, wa = train(False)
    b, wb = train(True)
    assert a == b
    np.testing.assert_array_equal(wa, wb)


def test_keyboard_interrupt_from_a_signal_at_any_moment_of_backward():
    """A real Ctrl-C lands between two bytecodes of backward (freezing the tape, the sweep's
    return, scattering into .grad): a timer raises KeyboardInterrupt at moments spread
    over a long backward. Whatever it interrupted, a new graph differentiates correctly."""
    import signal
    import time
    if not hasattr(signal, "setitimer") or threading_main() is False:
        pytest.skip("needs setitimer in the main thread")

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    interrupted = 0
    try:
        a = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
        for _ in range(2):              # (the first backward may compile the sweep: the
            h = a                       # second is timed)
            for _ in range(20_000):
                h = h * 0.999 + 0.001
            t0 = time.perf_counter()
            h.backward()
            took = time.perf_counter() - t0      # the timers land within a backward
        for k in range(12):
            h = a
            for _ in range(20_000):
                h = h * 0.999 + 0.001
            signal.setitimer(signal.ITIMER_REAL, max(1e-5, took * (k + 1) / 13))
            try:
                h.backward()
                signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                interrupted += 1
            signal.setitimer(signal.ITIMER_REAL, 0)
    except KeyboardInterrupt:                 # landed outside backward: still a fine test
        interrupted += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    print(f"\ninterrupted {interrupted} of 12 backwards")
    assert interrupted >= 1
    assert tg.is_grad_enabled()
    still_works()
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    y = x
    for _ in range(100):
        y = y * 1.01
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.01 ** 100] * 2, rtol=1e-12)


def threading_main():
    import threading
    return threading.current_thread() is threading.main_thread()
