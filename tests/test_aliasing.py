"""Which results alias their input, as PyTorch's do: the same object, a view sharing its
memory, or a new tensor. A result that shares memory where PyTorch's does not lets an
in-place change of it change the input under the user's feet (``x.t().contiguous()`` and
``x.repeat(1, 1)`` once did); one that copies where PyTorch's is a view drops writes the
user expects to see.

Each call is checked against torch where it is installed, and by itself: an in-place
change of the result reaches the input exactly when the two share memory.
"""
import numpy as np
import pytest

import tapegrad as tg

CALLS = {
    "flatten-1d": lambda L, x: x[0].flatten(), "flatten": lambda L, x: x.flatten(),
    "reshape-same": lambda L, x: x.reshape(3, 4), "reshape": lambda L, x: x.reshape(4, 3),
    "view": lambda L, x: x.view(12), "view_as": lambda L, x: x.view_as(x),
    "contiguous": lambda L, x: x.contiguous(), "t-contiguous": lambda L, x: x.t().contiguous(),
    "permute-contiguous": lambda L, x: x.permute(1, 0).contiguous(),
    "t": lambda L, x: x.t(), "T": lambda L, x: x.T, "mT": lambda L, x: x.mT,
    "mH": lambda L, x: x.mH, "H": lambda L, x: x.H, "real": lambda L, x: x.real,
    "permute": lambda L, x: x.permute(1, 0), "squeeze": lambda L, x: x.squeeze(),
    "unsqueeze": lambda L, x: x.unsqueeze(0), "expand-same": lambda L, x: x.expand(3, 4),
    "expand_as": lambda L, x: x.expand_as(x), "detach": lambda L, x: x.detach(),
    "clone": lambda L, x: x.clone(), "to-same": lambda L, x: x.to(x.dtype),
    "to-copy": lambda L, x: x.to(x.dtype, copy=True), "double": lambda L, x: x.double(),
    "narrow-all": lambda L, x: x.narrow(0, 0, 3), "slice-all": lambda L, x: x[:],
    "ellipsis": lambda L, x: x[...], "none-index": lambda L, x: x[None],
    "select": lambda L, x: x[0], "index-list": lambda L, x: x[[0, 1]],
    "split-whole": lambda L, x: x.split(3)[0], "chunk-1": lambda L, x: x.chunk(1)[0],
    "unbind": lambda L, x: x.unbind()[0], "movedim-same": lambda L, x: x.movedim(0, 0),
    "swapaxes": lambda L, x: x.swapaxes(0, 1), "diagonal": lambda L, x: x.diagonal(),
    "tile-1": lambda L, x: x.tile(1), "repeat-1": lambda L, x: x.repeat(1, 1),
    "repeat-new-dim": lambda L, x: x.repeat(1, 1, 1), "broadcast_to": lambda L, x: x.broadcast_to(3, 4),
    "reshape_as": lambda L, x: x.reshape_as(x), "unflatten": lambda L, x: x.unflatten(1, (2, 2)),
    "tensor_split-1": lambda L, x: x.tensor_split(1)[0], "flip-none": lambda L, x: x.flip([]),
    "roll-0": lambda L, x: x.roll(0, 0), "as_tensor": lambda L, x: L.as_tensor(x),
    "from_numpy": lambda L, x: L.from_numpy(x.numpy()), "data": lambda L, x: x.data,
    "atleast_2d": lambda L, x: L.atleast_2d(x), "clamp-noop": lambda L, x: x.clamp(min=-1e9),
    "where-noop": lambda L, x: L.where(x > 100, x * 0, x), "triu-all": lambda L, x: x.triu(-5),
}


def _alias(L, call):
    """(the result is the input, the result shares the input's memory)."""
    x = L.tensor(np.arange(12.0).reshape(3, 4))
    y = call(L, x)
    return y is x, bool(np.shares_memory(x.numpy(), y.numpy()))


@pytest.mark.parametrize("name", list(CALLS))
def test_an_in_place_change_of_the_result_reaches_the_input_exactly_when_they_share(name):
    x = tg.tensor(np.arange(12.0).reshape(3, 4))
    y = CALLS[name](tg, x)
    shares = bool(np.shares_memory(x.numpy(), y.numpy()))
    y.add_(1000.0)
    changed = not np.array_equal(x.numpy(), np.arange(12.0).reshape(3, 4))
    assert changed == shares


@pytest.mark.parametrize("name", list(CALLS))
def test_aliasing_is_pytorchs(name):
    torch = pytest.importorskip("torch")
    assert _alias(tg, CALLS[name]) == _alias(torch, CALLS[name])


def test_contiguous_copies_only_what_is_not_c_ordered_and_the_grad_flows():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.contiguous() is x
    y = x.t().contiguous()
    assert y.is_contiguous() and y.grad_fn.name() == "CloneBackward0"
    (y * tg.tensor(np.arange(6.0).reshape(3, 2))).sum().backward()
    assert np.array_equal(x.grad.numpy(), np.arange(6.0).reshape(3, 2).T)


@pytest.mark.parametrize("attr, message", [
    ("mT", "tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor."),
    ("mH", "tensor.mH is only supported on matrices or batches of matrices. Got 1-D tensor."),
    ("H", "tensor.H is only supported on matrices (2-D tensors). Got 1-D tensor."),
    ("imag", "imag is not implemented for tensors with non-complex dtypes.")])
def test_matrix_attributes_refuse_what_pytorch_refuses(attr, message):
    with pytest.raises(RuntimeError) as e:
        getattr(tg.ones(3), attr)
    assert str(e.value) == message
