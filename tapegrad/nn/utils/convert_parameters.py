"""All parameters as one flat vector and back."""
from ...grad_mode import no_grad
from ...indexing import cat
from ...tensor import Tensor


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated, in order (recorded: it differentiates)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copies consecutive slices of ``vec`` into the parameters, in order."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(tuple(p.shape)))
            offset += n
