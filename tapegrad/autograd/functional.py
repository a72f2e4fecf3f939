"""``tg.autograd.functional``: Jacobians and vector products of a whole function, as
PyTorch's ``torch.autograd.functional``.

``jacobian`` and ``vjp`` run on first-order gradients: ``jacobian`` calls
``tg.autograd.grad`` once per output element on the retained graph (PyTorch's
``vectorize=False`` loop; ``vectorize=True`` runs the same loop, tapegrad has no vmap).
``jvp``, ``hessian``, ``hvp`` and ``vhp`` use the double-backward trick, which needs
``tg.autograd.grad(..., create_graph=True)``: they are written on it and raise a
``NotImplementedError`` saying so until tapegrad records gradients on the tape.

Inputs are handed to the function as new leaves (detached copies that require grad), so a
tensor the function reads from outside is not taken for an input.
"""
from ..factory import zeros, zeros_like
from ..grad_mode import enable_grad, is_grad_enabled, set_grad_enabled
from ..indexing import stack
from ..tensor import Tensor
from ..engine import grad as _grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# ----- shared steps --------------------------------------------------------------------------
def _as_tuple(x, arg_name, fn_name):
    """(whether x was a tuple, x as a tuple of tensors), with PyTorch's TypeError."""
    is_tuple = isinstance(x, tuple)
    xs = x if is_tuple else (x,)
    for i, el in enumerate(xs):
        if not isinstance(el, Tensor):
            where = f"value at index {i}" if is_tuple else f"given {arg_name}"
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a "
                            f"tuple of Tensors but the {where} has type {type(el)}.")
    return is_tuple, xs


def _unpack(res, was_tuple):
    """Undoes _as_tuple: ``was_tuple`` a bool, or (outer, inner) for a tuple of tuples."""
    if isinstance(was_tuple, tuple):
        outer, inner = was_tuple
        if not inner:
            res = tuple(r[0] for r in res)
        return res if outer else res[0]
    return res if was_tuple else res[0]


def _leaves(xs, create_graph, need_graph):
    """New tensors for the function's inputs: a differentiable copy when the caller wants
    gradients to reach the originals (create_graph), else detached leaves."""
    return tuple(x.reshape(x.shape) if create_graph and x.requires_grad
                 else x.detach().requires_grad_(need_graph) for x in xs)


def _results(xs, create_graph):
    """What the user gets back: detached unless create_graph (nested tuples too)."""
    if create_graph:
        return xs
    return tuple(x.detach() if isinstance(x, Tensor) else _results(x, False) for x in xs)


def _validate_v(v, other, other_is_tuple):
    if len(v) != len(other):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got "
                           f"{len(v)}." if other_is_tuple else
                           "The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, other)):
        if a.shape != b.shape:
            where = f"Entry {i} in " if other_is_tuple else ""
            raise RuntimeError(f"{where}v has invalid size: should be {b.shape} but got "
                               f"{a.shape}.")


def _check_requires_grad(xs, kind, strict):
    """strict=True: every output (or gradient) must depend on the inputs."""
    if not strict:
        return
    for i, x in enumerate(xs):
        if x is None:
            raise RuntimeError(f"The output of the user-provided function is independent of "
                               f"input {i}. This is not allowed in strict mode.")
        if x.requires_grad:
            continue
        if kind == "hessian":
            raise RuntimeError(f"The hessian of the user-provided function with respect to "
                               f"input {i} is independent of the input. This is not allowed in "
                               "strict mode. You should ensure that your function is thrice "
                               "differentiable and that the hessian depends on the inputs.")
        if kind == "jacobian":
            raise RuntimeError("While computing the hessian, found that the jacobian of the "
                               f"user-provided function with respect to input {i} is "
                               "independent of the input. This is not allowed in strict mode. "
                               "You should ensure that your function is twice differentiable "
                               "and that the jacobian depends on the inputs (this would be "
                               "violated by a linear function for example).")
        if kind == "grad_inputs":
            raise RuntimeError(f"The gradient with respect to input {i} is independent of the "
                               "inputs of the user-provided function. This is not allowed in "
                               "strict mode.")
        raise RuntimeError(f"Output {i} of the user-provided function does not require "
                           "gradients. The outputs must be computed in a differentiable manner "
                           "from the input when running in strict mode.")


def _autograd_grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """tg.autograd.grad over the outputs that require grad (None for unused inputs)."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return _grad([o for o, _ in pairs], list(inputs), [g for _, g in pairs],
                 retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)


_INDEPENDENT = {
    "back": "The output of the user-provided function is independent of input {i}. This is "
            "not allowed in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients. This is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. "
                   "This is not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry "
                         "{i} in the grad_jacobian. This is not allowed in strict mode as it "
                         "prevents from using the double backward trick to replace forward "
                         "mode AD.",
}


def _fill_in_zeros(grads, refs, strict, create_graph, stage):
    """Zeros where an input was not used (strict=True: an error instead)."""
    out = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(_INDEPENDENT[stage].format(i=i))
            g = zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(f"The {what} of the user-provided function is independent of "
                               f"input {i}. This is not allowed in strict mode when "
                               "create_graph=True.")
        out.append(g)
    return tuple(out)


class _DoubleBackward:
    """Turns the engine's "create_graph=True is not supported" into an error naming the
    function of this module that needs it."""

    def __init__(self, fn_name):
        self.fn_name = fn_name

    def __enter__(self):
        return self

    def __exit__(self, typ, err, tb):
        if typ is NotImplementedError and "create_graph" in str(err):
            raise NotImplementedError(
                f"tapegrad.autograd.functional.{self.fn_name} needs higher-order gradients: "
                "tg.autograd.grad(..., create_graph=True), which tapegrad does not support "
                "yet") from err
        return False


# ----- the public functions ------------------------------------------------------------------
def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product at ``inputs``."""
    with _DoubleBackward("vjp"), enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _leaves(inputs, create_graph, need_graph=True)
        outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided "
                                           "function", "vjp")
        _check_requires_grad(outputs, "outputs", strict)
        if v is not None:
            _, v = _as_tuple(v, "v", "vjp")
            v = _leaves(v, create_graph, need_graph=False)
            _validate_v(v, outputs, outputs_tuple)
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
    with _DoubleBackward("vjp"), set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _autograd_grad(outputs, inputs, v, create_graph=create_graph)
        result = _fill_in_zeros(grads, inputs, strict, create_graph, "back")
    return (_unpack(_results(outputs, create_graph), outputs_tuple),
            _unpack(_results(result, create_graph), inputs_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v), by the double-backward trick: J v is the gradient, with respect
    to u, of the vector-Jacobian product u^T J (linear in u) dotted with v."""
    with _DoubleBackward("jvp"), enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _leaves(inputs, create_graph, need_graph=True)
        if v is not None:
            _, v = _as_tuple(v, "v", "jvp")
            v = _leaves(v, create_graph, need_graph=False)
            _validate_v(v, inputs, inputs_tuple)
        elif len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the "
                               "user-provided function is a single Tensor with a single "
                               "element.")
        outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided "
                                           "function", "jvp")
        _check_requires_grad(outputs, "outputs", strict)
        # u: any values (the backward is linear in u), zeros need no care for inf or nan
        u = tuple(zeros_like(o, requires_grad=True) for o in outputs)
        grad_inputs = _autograd_grad(outputs, inputs, u, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with _DoubleBackward("jvp"), set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _autograd_grad(grad_inputs, u, v, create_graph=create_graph)
        result = _fill_in_zeros(grads, outputs, strict, create_graph, "back_trick")
    return (_unpack(_results(outputs, create_graph), outputs_tuple),
            _unpack(_results(result, create_graph), outputs_tuple))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """d func(inputs)[i] / d inputs[j], of shape output[i].shape + inputs[j].shape (a tuple
    of tuples for several outputs and inputs), one reverse sweep per output element."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or '
                             '"reverse-mode". Hint: If your function has more outputs than '
                             'inputs, "forward-mode" tends to be more performant. Otherwise, '
                             'prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        raise NotImplementedError("tapegrad: jacobian with strategy=\"forward-mode\" needs "
                                  "forward-mode AD, which tapegrad does not have; use "
                                  "strategy=\"reverse-mode\"")
    with _DoubleBackward("jacobian"), enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _leaves(inputs, create_graph, need_graph=True)
        outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided "
                                           "function", "jacobian")
        _check_requires_grad(outputs, "outputs", strict)
        if vectorize and strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and "
                               "`vectorized=True` are not supported together. Please either "
                               "set `strict=False` or `vectorize=False`.")
        jac = tuple(_jacobian_of_output(i, out, inputs, create_graph, strict)
                    for i, out in enumerate(outputs))
        return _unpack(_results(jac, create_graph), (outputs_tuple, inputs_tuple))


def _jacobian_of_output(i, out, inputs, create_graph, strict):
    """The rows d out[j] / d inputs, stacked into one tensor per input."""
    rows = tuple([] for _ in inputs)
    flat = out.reshape(-1)
    for j in range(out.numel()):
        grads = _autograd_grad((flat[j],), inputs, retain_graph=True,
                               create_graph=create_graph)
        for k, (g, x) in enumerate(zip(grads, inputs)):
            if g is None:
                if strict:
                    raise RuntimeError(f"Output {i} of the user-provided function is "
                                       f"independent of input {k}. This is not allowed in "
                                       "strict mode.")
                g = zeros_like(x)
            elif strict and create_graph and not g.requires_grad:
                raise RuntimeError("The jacobian of the user-provided function is independent "
                                   f"of input {i}. This is not allowed in strict mode when "
                                   "create_graph=True.")
            rows[k].append(g)
    return tuple(stack(r, 0).reshape(tuple(out.shape) + tuple(x.shape)) if r
                 else zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype)
                 for r, x in zip(rows, inputs))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Jacobian of the Jacobian of a scalar function: d^2 func / d inputs^2."""
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or '
                             '"reverse-mode".')

    def single_output(*xs):
        out = func(*xs)
        out_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(outs, "outputs", strict)
        if out_tuple or not isinstance(out, Tensor):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should "
                               "contain a single element")
        return out.squeeze()

    def jacobian_of_func(*xs):
        jac = jacobian(single_output, xs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    with _DoubleBackward("hessian"):
        res = jacobian(jacobian_of_func, inputs, create_graph=create_graph, strict=strict,
                       vectorize=vectorize, strategy=outer_jacobian_strategy)
    return _unpack(res, (inputs_tuple, inputs_tuple))


def _scalar_function(name, func, inputs, v, create_graph, strict):
    """The common start of vhp and hvp: inputs as leaves, v checked, the scalar output and
    its gradient (with its graph kept, for a second differentiation)."""
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", name)
    inputs = _leaves(inputs, create_graph, need_graph=True)
    if v is not None:
        _, v = _as_tuple(v, "v", name)
        v = _leaves(v, create_graph, need_graph=False)
        _validate_v(v, inputs, inputs_tuple)
    elif len(inputs) != 1 or inputs[0].numel() != 1:
        raise RuntimeError("The vector v can only be None if the input to the user-provided "
                           "function is a single Tensor with a single element.")
    outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function",
                                       name)
    _check_requires_grad(outputs, "outputs", strict)
    if outputs_tuple:
        raise RuntimeError(f"The function given to {name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {name} should "
                           "contain a single element")
    jac = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict)
    return inputs_tuple, inputs, v, outputs, jac


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H): the gradient of (grad func) . v."""
    with _DoubleBackward("vhp"), enable_grad():
        inputs_tuple, inputs, v, outputs, jac = _scalar_function("vhp", func, inputs, v,
                                                                 create_graph, strict)
    with _DoubleBackward("vhp"), set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _autograd_grad(jac, inputs, v, create_graph=create_graph)
        result = _fill_in_zeros(grads, inputs, strict, create_graph, "double_back")
    return (_unpack(_results(outputs, create_graph), False),
            _unpack(_results(result, create_graph), inputs_tuple))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v), by the double-backward trick on u^T H (H is symmetric for a
    twice continuously differentiable func, so PyTorch computes it this way too)."""
    with _DoubleBackward("hvp"), enable_grad():
        inputs_tuple, inputs, v, outputs, jac = _scalar_function("hvp", func, inputs, v,
                                                                 create_graph, strict)
        u = tuple(zeros_like(x, requires_grad=True) for x in inputs)
        double_back = _autograd_grad(jac, inputs, u, create_graph=True)
        _check_requires_grad(jac, "hessian", strict)
    with _DoubleBackward("hvp"), set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _autograd_grad(double_back, u, v, create_graph=create_graph)
        result = _fill_in_zeros(grads, inputs, strict, create_graph, "double_back_trick")
    return (_unpack(_results(outputs, create_graph), False),
            _unpack(_results(result, create_graph), inputs_tuple))
