"""``tg.func``: PyTorch's function transforms ``grad``, ``grad_and_value``, ``vjp``,
``jacrev`` and ``hessian``, built on the tape and ``create_graph=True``.

A transform hands the function new tensors for the arguments it differentiates: a leaf copy
of an argument that needs no grad, and ``x.clone()`` of one that does (an argument of an
outer transform, or a tensor the user differentiates through), so that an inner transform
differentiates with respect to its own copy, never with respect to an outer variable the
function also reads (``grad(lambda x: x * grad(lambda y: x * y)(x))`` is 2x, not 3x).

Gradients are made with ``create_graph=True`` whenever something outside may differentiate
them: inside another transform, when an argument requires grad, or when the function's
result depends on a tensor that requires grad other than the copies (a parameter it reads);
otherwise they are plain tensors, as PyTorch's are. No vmap: ``jacrev`` and ``hessian``
differentiate one output element at a time.
"""
import threading

from .base import TensorBase as Tensor
from .engine import grad as _grad
from .grad_mode import enable_grad, is_grad_enabled
from .graph import AccumulateGrad
from .indexing import stack
from .factory import zeros

__all__ = ["grad", "grad_and_value", "vjp", "jacrev", "hessian"]

_nesting = threading.local()


class _Transform:
    """Counts the transforms running on this thread (the outermost is level 1)."""

    def __enter__(self):
        _nesting.level = getattr(_nesting, "level", 0) + 1
        self._mode = enable_grad()
        self._mode.__enter__()
        return _nesting.level

    def __exit__(self, *exc):
        self._mode.__exit__(*exc)
        _nesting.level -= 1
        return False


def _argnums(argnums, n):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise RuntimeError(f"Got argnum={a}, but only {n} positional inputs")
    return [a % n for a in nums]


def _wrap(x):
    """The transform's own copy of an argument (see the module's docstring)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    return x.clone() if x.requires_grad else x.detach().requires_grad_()


def _differentiable(level, grad_enabled, args, outs, copies):
    """Must the gradients keep a graph (something outside may differentiate them)?"""
    if not grad_enabled:
        return False
    if level > 1 or any(isinstance(a, Tensor) and a.requires_grad for a in args):
        return True
    return _reads_other_leaves(outs, copies)


def _reads_other_leaves(outs, copies):
    """Does a result depend on a tensor that requires grad, other than the copies?"""
    mine = {id(c) for c in copies}
    stack_ = []
    for t in outs:
        if isinstance(t, Tensor) and t.requires_grad:
            if t.grad_fn is None and id(t) not in mine:
                return True
            if t.grad_fn is not None:
                stack_.append(t.grad_fn)
    seen = set()
    while stack_:
        fn = stack_.pop()
        if fn in seen:
            continue
        seen.add(fn)
        if isinstance(fn, AccumulateGrad):
            if fn.variable is not None and id(fn.variable) not in mine:
                return True
            continue
        stack_.extend(n for n, _ in fn.next_functions if n is not None)
    return False


def _call(func, args, kwargs, argnums):
    """Runs func on copies of the differentiated arguments: (copies, result)."""
    nums = _argnums(argnums, len(args))
    args = list(args)
    copies = []
    for i in nums:
        args[i] = _wrap(args[i])
        copies.append(args[i])
    return copies, func(*args, **kwargs)


def _split_aux(res, has_aux, name):
    if not has_aux:
        return res, None
    if not (isinstance(res, tuple) and len(res) == 2):
        raise RuntimeError(f"{name}: output of function f should be a tuple: (output, aux) if "
                           "has_aux is True")
    return res


def _detach(x, keep):
    """x (tensors in tuples, lists and dicts too) detached, unless ``keep``."""
    if keep:
        return x
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, (tuple, list)):
        items = [_detach(v, False) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
    if isinstance(x, dict):
        return {k: _detach(v, False) for k, v in x.items()}
    return x


# ----- the transforms -------------------------------------------------------------------------
def grad_and_value(func, argnums=0, has_aux=False):
    """A function returning (the gradient of func's scalar result with respect to the
    arguments ``argnums``, the result) (with ``has_aux``: (gradient, (result, aux)))."""
    def wrapper(*args, **kwargs):
        enabled = is_grad_enabled()
        with _Transform() as level:
            copies, res = _call(func, args, kwargs, argnums)
            out, aux = _split_aux(res, has_aux, "grad_and_value(f)(*args)")
            if not isinstance(out, Tensor):
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"Tensor, got {type(out)}")
            if out.ndim != 0:
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"scalar Tensor, got tensor with {out.ndim} dims. Maybe you "
                                   "wanted to use the vjp or jacrev APIs instead?")
            keep = _differentiable(level, enabled, args, [out], copies)
            if out.requires_grad:
                gs = _grad(out, copies, create_graph=keep, allow_unused=True,
                           materialize_grads=True)
            else:
                gs = tuple(zeros(tuple(c.shape), dtype=c.dtype) for c in copies)
        g = gs[0] if isinstance(argnums, int) else tuple(gs)
        value = _detach(out, keep)
        return (g, (value, _detach(aux, keep))) if has_aux else (g, value)
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """A function returning the gradient of func's scalar result with respect to the
    arguments ``argnums`` (a tensor, or a tuple for a tuple of argnums); with
    ``has_aux``: (gradient, aux)."""
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(func, *primals, has_aux=False):
    """(func(*primals), vjp_fn[, aux]): ``vjp_fn(cotangents)`` is the tuple of the
    vector-Jacobian products with respect to each primal."""
    enabled = is_grad_enabled()
    with _Transform() as level:
        copies, res = _call(func, primals, {}, tuple(range(len(primals))))
        out, aux = _split_aux(res, has_aux, "vjp(f, *primals)")
        single = isinstance(out, Tensor)
        outs = (out,) if single else tuple(out)
        keep = _differentiable(level, enabled, primals, outs, copies)

    def vjp_fn(cotangents):
        cts = (cotangents,) if single else tuple(cotangents)
        with _Transform() as inner:
            again = keep or inner > 1 or any(c.requires_grad for c in cts)
            pairs = [(o, c) for o, c in zip(outs, cts) if o.requires_grad]
            if not pairs:
                return tuple(zeros(tuple(c.shape), dtype=c.dtype) for c in copies)
            return _grad([o for o, _ in pairs], copies, [c for _, c in pairs],
                         retain_graph=True, create_graph=again, allow_unused=True,
                         materialize_grads=True)
    result = _detach(out, keep)
    return (result, vjp_fn, _detach(aux, keep)) if has_aux else (result, vjp_fn)


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None):
    """A function returning the Jacobian of func's result(s) with respect to the arguments
    ``argnums``: of shape output.shape + argument.shape, one reverse sweep per output
    element (``chunk_size`` is accepted and ignored)."""
    def wrapper(*args, **kwargs):
        enabled = is_grad_enabled()
        with _Transform() as level:
            copies, res = _call(func, args, kwargs, argnums)
            out, aux = _split_aux(res, has_aux, "jacrev(f, ...)(*args)")
            single = isinstance(out, Tensor)
            outs = (out,) if single else tuple(out)
            keep = _differentiable(level, enabled, args, outs, copies)
            jac = tuple(_jacobian_of(o, copies, keep) for o in outs)
        if isinstance(argnums, int):
            jac = tuple(j[0] for j in jac)
        jac = jac[0] if single else jac
        return (jac, _detach(aux, keep)) if has_aux else jac
    return wrapper


def _jacobian_of(out, copies, keep):
    """d out / d copies: one tensor per copy, of shape out.shape + copy.shape."""
    rows = [[] for _ in copies]
    flat = out.reshape(-1) if out.requires_grad else None
    for j in range(out.numel()):
        if flat is None:
            gs = [zeros(tuple(c.shape), dtype=c.dtype) for c in copies]
        else:
            gs = _grad(flat[j], copies, retain_graph=True, create_graph=keep,
                       allow_unused=True, materialize_grads=True)
        for r, g in zip(rows, gs):
            r.append(g)
    return tuple(stack(r, 0).reshape(tuple(out.shape) + tuple(c.shape)) if r else
                 zeros(tuple(out.shape) + tuple(c.shape), dtype=c.dtype)
                 for r, c in zip(rows, copies))


def hessian(func, argnums=0):
    """The Jacobian of the Jacobian of a scalar function (PyTorch's jacfwd(jacrev(func)),
    here reverse over reverse)."""
    return jacrev(jacrev(func, argnums), argnums)
