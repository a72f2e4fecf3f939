"""``gradcheck``: analytical Jacobians from the tape against central finite differences."""
import numpy as np

from .grad_mode import no_grad
from .base import TensorBase as Tensor
from .face import _array, _new


class GradcheckError(RuntimeError):
    """Raised by gradcheck when the Jacobians differ (PyTorch's name)."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def _fmt(J):
    from .printing import format_tensor
    return format_tensor(J, "float64")


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Checks the gradients of ``fn(*inputs)`` against central differences in each input
    that requires grad. Returns True, or raises GradcheckError with both Jacobians."""
    from .engine import grad
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outs = _outputs(fn, inputs)
    for o_index, out in enumerate(outs):
        n_out = out.numel()
        for i in diff:
            x = inputs[i]
            # numerical: perturb each element of x in place (in float64 for accuracy)
            numerical = np.zeros((x.numel(), n_out))
            flat = x._v.reshape(-1) if isinstance(x._v, np.ndarray) else None
            for j in range(x.numel()):
                vals = []
                for step in (eps, -eps):
                    with no_grad():
                        if flat is None:
                            old = x._v
                            x._v = old + step
                        else:
                            old = flat[j]
                            flat[j] = old + step
                        y = np.asarray(_array(_outputs(fn, inputs)[o_index]), np.float64)
                        if flat is None:
                            x._v = old
                        else:
                            flat[j] = old
                    vals.append(y.reshape(-1))
                numerical[j] = (vals[0] - vals[1]) / (2 * eps)
            # analytical: one vector-Jacobian product per output element
            analytical = np.zeros((x.numel(), n_out))
            for k in range(n_out):
                seed = np.zeros(n_out)
                seed[k] = 1.0
                out = _outputs(fn, inputs)[o_index]
                g, = grad(out, x, _new(seed.reshape(out.shape).astype(out.dtype.np),
                                       out.dtype), allow_unused=True)
                if g is not None:
                    analytical[:, k] = np.asarray(_array(g), np.float64).reshape(-1)
            if not np.allclose(analytical, numerical, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(
                    f"Jacobian mismatch for output {o_index} with respect to input {i},\n"
                    f"numerical:{_fmt(numerical)}\nanalytical:{_fmt(analytical)}\n")
    return True
