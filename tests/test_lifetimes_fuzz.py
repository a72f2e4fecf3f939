"""Graph lifetimes, fuzzed against PyTorch: small random programs run in tapegrad and in PyTorch
side by side (float64), every observation compared.

A program is a list of steps over an environment of tensors ``E`` (``run(L, steps)`` runs it
in ``L``, ``tapegrad`` or ``torch``; the API names are the same):
  - leaves of shapes (), (3,), (2, 3) (a 0-d leaf from a Python float: the scalar fast path),
    and constants that do not require grad;
  - ops of the op table: elementwise unary and binary ops (with tensors and Python numbers),
    reductions, matrix products, views (reshape, t, transpose, expand, unsqueeze, indexing
    with ints, slices, int tensors and bool masks), cat/stack, where, clamp, index_select,
    gather, item assignment ``c[0] = ...`` on a non-leaf;
  - actions: ``backward()`` with and without ``retain_graph`` (and with ``inputs=``), a second
    backward through the same or an overlapping graph, ``autograd.grad`` (``retain_graph``,
    ``allow_unused``, ``create_graph``; its results join ``E``, those made with a graph are
    compared by value only), ``retain_grad()``,
    ``register_hook`` (a hook that logs and returns None, or one that returns a changed grad),
    ``x.grad = None``, ``x.grad.zero_()``, holding a ``.grad`` (it joins ``E``), in-place ops
    under ``no_grad()`` on leaves, in-place ops on non-leaf tensors a backward still needs
    (PyTorch's version-counter error), ``detach()``; later ops reuse any entry, also the
    outputs of a freed graph.
A step that raises is recorded as (exception type name, message) and the program goes on.

Observations (``run`` returns them): each new entry's value, ``requires_grad``, ``is_leaf``,
whether it has a ``grad_fn``; after every backward or grad, every entry's ``.grad`` (leaves
and retained tensors); the values each hook saw; at the end every entry's value again (what
a freed graph or an in-place op did to held tensors). Values and grads compare to 1e-10,
exceptions by type name and message verbatim (``torch.X`` reads ``tapegrad.X``).

The programs are drawn by a seeded generator (``draw``) that runs each step in PyTorch as it
draws it, so it knows shapes and what raises: an op that raises is redrawn (op errors are
test_bad_input.py's catalogue), an action that raises is kept with some probability (so the
second-time and version-counter errors, hook and retain_grad refusals are compared). What is
not drawn, and why, is listed in ``draw``'s docstring (each a README difference or a PyTorch
quirk). The programs of one test share the thread's tape, so graphs pending from earlier
programs are around, as in a real session.

CI runs ``CASES`` seeds (1,500: about 20 s on 2 cores); hunting, run many more, and since a
crash in jitted code kills the process, in chunks of a subprocess each:
  TAPEGRAD_FUZZ_CASES=50000 TAPEGRAD_FUZZ_START=10000 python -m pytest tests/test_lifetimes_fuzz.py
A program that differs is printed step by step (``minimize(draw(seed))`` shortens it), and a
bug it finds becomes a focused regression test in the test file that owns that area.
"""
import math
import os
import random
import re
import warnings

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("isolated")   # a fresh tape per test (tests/conftest.py)

CASES = int(os.environ.get("TAPEGRAD_FUZZ_CASES", "1500"))
START = int(os.environ.get("TAPEGRAD_FUZZ_START", "0"))
CHUNKS = 10                     # CASES spread over this many tests (a failure names its seed)
TOL = 1e-10


# ----- the pieces -----------------------------------------------------------------------------
def _idx(L, data):
    return L.tensor(data, dtype=L.int64)


UNARY = ["neg", "exp", "tanh", "sigmoid", "sin", "cos", "abs", "relu", "erf", "atan",
         "expm1", "clone", "log", "sqrt", "reciprocal", "rsqrt", "log1p"]

# name -> (number of tensor operands, f(L, *tensors))
OPS = {f"u_{n}": (1, (lambda n: lambda L, a: getattr(a, n)())(n)) for n in UNARY}
OPS.update({
    "add": (2, lambda L, a, b: a + b),
    "sub": (2, lambda L, a, b: a - b),
    "mul": (2, lambda L, a, b: a * b),
    "div": (2, lambda L, a, b: a / b),
    "pow": (2, lambda L, a, b: a.abs().pow(b)),
    "maximum": (2, lambda L, a, b: L.maximum(a, b)),
    "minimum": (2, lambda L, a, b: L.minimum(a, b)),
    "add_alpha": (2, lambda L, a, b: L.add(a, b, alpha=2)),
    "sub_alpha": (2, lambda L, a, b: a.sub(b, alpha=0.5)),
    "radd": (1, lambda L, a: 2 + a),
    "rsub": (1, lambda L, a: 1.5 - a),
    "rmul": (1, lambda L, a: a * 0.5),
    "rdiv": (1, lambda L, a: 3 / a),
    "powc": (1, lambda L, a: a ** 2),
    "powc3": (1, lambda L, a: a.pow(3)),
    "rpow": (1, lambda L, a: 2 ** a),
    "sum": (1, lambda L, a: a.sum()),
    "sum0": (1, lambda L, a: a.sum(0)),
    "sum_keep": (1, lambda L, a: a.sum(-1, keepdim=True)),
    "mean": (1, lambda L, a: a.mean()),
    "mean0": (1, lambda L, a: a.mean(0)),
    "prod": (1, lambda L, a: a.prod()),
    "var": (1, lambda L, a: a.var()),
    "std0": (1, lambda L, a: a.std(0)),
    "max": (1, lambda L, a: a.max()),
    "max_dim": (1, lambda L, a: a.max(-1).values),
    "amax": (1, lambda L, a: a.amax(0)),
    "logsumexp": (1, lambda L, a: a.logsumexp(-1)),
    "softmax": (1, lambda L, a: a.softmax(-1)),
    "mm": (2, lambda L, a, b: a.mm(b)),
    "mm_t": (2, lambda L, a, b: a.mm(b.t())),
    "matmul": (2, lambda L, a, b: a @ b),
    "dot": (2, lambda L, a, b: a.dot(b)),
    "mv": (2, lambda L, a, b: a.mv(b)),
    "reshape": (1, lambda L, a: a.reshape(-1)),
    "reshape32": (1, lambda L, a: a.reshape(3, 2)),
    "t": (1, lambda L, a: a.t()),
    "transpose": (1, lambda L, a: a.transpose(0, 1)),
    "expand": (1, lambda L, a: a.expand(2, 3)),
    "unsqueeze": (1, lambda L, a: a.unsqueeze(0)),
    "index0": (1, lambda L, a: a[0]),
    "index_last": (1, lambda L, a: a[-1]),
    "slice": (1, lambda L, a: a[1:]),
    "col": (1, lambda L, a: a[:, 1]),
    "int_array": (1, lambda L, a: a[_idx(L, [0, 1, 0])]),
    "int_list": (1, lambda L, a: a[[1, 0]]),
    "mask": (1, lambda L, a: a[a > 0]),
    "cat": (2, lambda L, a, b: L.cat([a, b])),
    "cat3": (2, lambda L, a, b: L.cat([a, b, a], -1)),
    "stack": (2, lambda L, a, b: L.stack([a, b])),
    "where": (2, lambda L, a, b: L.where(a > 0, a, b)),
    "clamp": (1, lambda L, a: a.clamp(-0.5, 0.5)),
    "clamp_min": (1, lambda L, a: a.clamp(min=0.1)),
    "index_select": (1, lambda L, a: a.index_select(0, _idx(L, [1, 0, 1]))),
    "gather": (1, lambda L, a: a.gather(-1, _idx(L, [[0, 2], [1, 1]][:a.shape[0]]
                                                  if a.dim() == 2 else [2, 0]))),
    "detach": (1, lambda L, a: a.detach()),
    "copy_nonleaf": (1, lambda L, a: a * 1),
})

# a bool mask of a 0-d tensor (tapegrad: IndexError; not drawn, a difference outside graph
# lifetimes)
DIM_OPS = {"mask"}
GRAD_MODE_INPLACE = ["mul_", "add_", "div_", "sub_", "setitem0", "setitem_c"]   # not zero_:
# fill_ on a tensor that requires grad is not supported yet

# views (and detach) of a 0-d tensor: tapegrad's 0-d tensors made from Python numbers hold
# a float, which no view shares (README); in-place changes of either are not drawn
VIEWS = {"reshape", "reshape32", "t", "transpose", "expand", "unsqueeze", "detach"}
INDEXING = {"index0", "index_last", "slice", "col"}

# in-place ops: name -> f(L, a, b) (b an operand, may be unused)
INPLACE = {
    "mul_": lambda L, a, b: a.mul_(2),
    "add_": lambda L, a, b: a.add_(b),
    "div_": lambda L, a, b: a.div_(b),
    "sub_": lambda L, a, b: a.sub_(0.25),
    "setitem0": lambda L, a, b: a.__setitem__(0, b),
    "setitem_c": lambda L, a, b: a.__setitem__(0, 1.25),
    "zero_": lambda L, a, b: a.zero_(),
}


# ----- running a program ----------------------------------------------------------------------
def _words(e, L):
    msg = str(e)
    if L is tg:
        return type(e).__name__, msg
    return type(e).__name__, re.sub(r"\btorch\.(?=[A-Z])", "tapegrad.", msg)


def _val(t):
    if t is None:
        return None
    if not hasattr(t, "detach"):
        return ("py", t)
    return np.array(t.detach().tolist(), dtype=np.float64)


def _describe(t):
    if t is None or not hasattr(t, "requires_grad"):
        return ("other", _val(t))
    return ("tensor", _val(t), t.requires_grad, t.is_leaf, t.grad_fn is None)


class Run:
    def __init__(self, L):
        self.L = L
        self.E = []
        self.obs = []
        self.hook_log = []
        self.made = []

    def grads(self):
        out = []
        for i, t in enumerate(self.E):
            if t is None or not hasattr(t, "grad"):
                continue
            if t.is_leaf or t.retains_grad:
                out.append((i, _val(t.grad)))
        return ("grads", out)

    def step(self, s):
        L, E = self.L, self.E
        kind = s[0]
        if kind == "leaf":
            _, data, rg = s
            t = L.tensor(data, dtype=L.float64, requires_grad=rg)
            E.append(t)
            return ("new", _describe(t))
        if kind == "op":
            _, name, args = s
            _, f = OPS[name]
            E.append(None)
            t = f(L, *[E[i] for i in args])
            E[-1] = t
            return ("new", _describe(t))
        if kind == "inplace":
            _, name, i, j = s
            INPLACE[name](L, E[i], E[j] if j is not None else None)
            return ("inplace", _val(E[i]), E[i].requires_grad, E[i].grad_fn is None)
        if kind == "nograd_inplace":
            _, name, i, j = s
            with L.no_grad():
                INPLACE[name](L, E[i], E[j] if j is not None else None)
            return ("inplace", _val(E[i]))
        if kind == "backward":
            _, i, retain, inputs = s
            kw = {}
            if retain is not None:
                kw["retain_graph"] = retain
            if inputs is not None:
                kw["inputs"] = [E[k] for k in inputs]
            E[i].backward(**kw)
            return self.grads()
        if kind == "backward_grad":        # a non-scalar output with a gradient
            _, i, retain = s
            E[i].backward(L.ones_like(E[i]) * 0.5, retain_graph=retain)
            return self.grads()
        if kind == "grad":
            _, i, inputs, retain, allow_unused, create = s
            res = L.autograd.grad(E[i], [E[k] for k in inputs], retain_graph=retain,
                                  allow_unused=allow_unused, create_graph=create)
            if create:      # compared by value only, and not used further (draw's docstring)
                E.extend([None] * len(res))
                return ("grad", [_val(r) for r in res], self.grads())
            E.extend(res)
            return ("grad", [_describe(r) for r in res], self.grads())
        if kind == "nop":
            return ("ok",)
        if kind == "retain_grad":
            E[s[1]].retain_grad()
            return ("ok",)
        if kind == "hook":
            _, i, how = s
            log = self.hook_log
            if how == "log":
                E[i].register_hook(lambda g, i=i: log.append((i, _val(g))))
            else:
                E[i].register_hook(lambda g: g * 3)
            return ("ok",)
        if kind == "grad_none":
            E[s[1]].grad = None
            return ("ok",)
        if kind == "grad_zero":
            E[s[1]].grad.zero_()
            return self.grads()
        if kind == "hold_grad":
            g = E[s[1]].grad
            E.append(g)
            return ("new", _describe(g))
        raise AssertionError(s)

    def run(self, steps):
        for s in steps:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    o = self.step(s)
            except Exception as e:  # noqa: BLE001 (compared with the other library's)
                o = ("raised",) + _words(e, self.L)
            self.obs.append(o)
            self.made.append(len(self.E))
        self.obs.append(("hooks", self.hook_log))
        self.obs.append(("end", [_describe(t) for t in self.E]))
        return self.obs


def run(L, steps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Run(L).run(steps)


# ----- drawing a program ----------------------------------------------------------------------
SHAPES = [(), (3,), (2, 3)]


def _data(rng, shape):
    def one():
        return round(rng.uniform(-2, 2), 2) or 0.5
    if shape == ():
        return one()
    if len(shape) == 1:
        return [one() for _ in range(shape[0])]
    return [[one() for _ in range(shape[1])] for _ in range(shape[0])]


def draw(seed, n_steps=None):
    """A program drawn from ``seed``: each step is run in PyTorch as it is drawn.

    Not drawn, as documented differences (README "Differences from PyTorch"): in-place
    changes of tensors that may share memory with a gradient (grad()'s results, a held
    .grad, and what is computed from them: PyTorch's can alias each other), and of a 0-d
    tensor with a view or a detached copy of it, or of those (a Python-float scalar shares
    no memory), and of clamp's result (tapegrad's clamp backward reads its result, PyTorch's
    its input); a view of a leaf changed under no_grad as an input of grad() or backward()
    (PyTorch regenerates the view's grad_fn: a node no graph holds, and names it AsStrided
    in its errors) -- so in-place changes under no_grad of a leaf that has views are not
    drawn; a view of a tensor changed in place (under no_grad or not) is not hooked or
    retained (PyTorch 2.13 segfaults, now and then: v = x.t() of a leaf x; x.add_(1) under
    no_grad; v.register_hook(...)); var/std of one or two values; gradients made with
    create_graph=True are compared by value, and not used further (whether they require
    grad differs where the formula has no differentiable operation: abs, relu, ...); an
    in-place op whose operand is a view of the same memory (PyTorch's partial-overlap
    error comes first); an in-place change of a 0-d leaf after a create_graph=True
    grad(); errors of ops themselves (test_bad_input.py's catalogue has them); anything
    after a backward that raised (a freed graph, a value changed in place): PyTorch has run
    part of the graph by then (its hooks, .grad, freed saved values), tapegrad checks
    before it runs anything."""
    rng = random.Random(seed)
    n_steps = n_steps or rng.randint(4, 16)
    r = Run(torch)
    steps = []

    shared = set()      # entries not changed in place (see the docstring)
    view_of = {}        # entry -> the entry it views
    epoch, uses = [0], {}   # backwards so far; 0-d leaf -> the epochs it was used in
    stale = set()       # views of a tensor changed in place: not hooked, retained or inputs
    stop = []

    def effects():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return repr((r.grads(), r.hook_log))

    def try_step(s, keep_error=0.0):
        n = len(r.E)
        before = effects()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r.step(s)
        except Exception:  # noqa: BLE001
            del r.E[n:]
            if rng.random() >= keep_error:
                return False
            r.E.extend([None] * (n + (1 if s[0] == "op" else 0) - len(r.E)))
            # a kept raising op leaves None in E; grad's results are not added
            # PyTorch ran part of the graph, then raised (its effects show, or a backward
            # raised: it may have freed the saved values of the nodes it ran): the
            # program ends before this step
            if effects() != before or s[0] in ("backward", "backward_grad", "grad"):
                stop.append(s)
                return True
        if s[0] in ("grad", "hold_grad") or (s[0] == "op" and shared.intersection(s[2])):
            shared.update(range(n, len(r.E)))
        if s[0] == "op" and s[1] in VIEWS and r.E[s[2][0]] is not None and \
                r.E[s[2][0]].dim() == 0:
            shared.update([s[2][0]] + list(range(n, len(r.E))))
        if s[0] == "op" and s[1] in VIEWS | INDEXING:
            view_of[n] = s[2][0]
        if s[0] == "op" and s[1] in ("clamp", "clamp_min"):
            shared.add(n)
        if s[0] in ("nograd_inplace", "inplace"):
            stale.update(k for k in view_of if root(k) == root(s[2]))
        if s[0] in ("backward", "backward_grad", "grad"):
            epoch[0] += 1
        if s[0] == "grad" and s[5]:          # create_graph records uses of the leaves
            shared.update(uses)
        if s[0] == "op":
            for k in s[2]:
                t = r.E[k]
                if t is not None and t.is_leaf and t.dim() == 0:
                    uses.setdefault(k, set()).add(epoch[0])
        steps.append(s)
        return True

    def root(k):
        while k in view_of:
            k = view_of[k]
        return k

    def related(i, j):
        """i and j views of one another or of one base (PyTorch's partial-overlap error)."""
        return i != j and root(i) == root(j)

    def tensors(pred=lambda t: True):
        return [i for i, t in enumerate(r.E) if t is not None and hasattr(t, "requires_grad")
                and pred(t)]

    for _ in range(rng.randint(1, 3)):
        shape = rng.choice(SHAPES)
        try_step(("leaf", _data(rng, shape), rng.random() < 0.85))

    for _ in range(n_steps):
        if stop:
            break
        for _attempt in range(20):
            live = tensors()
            k = rng.random()
            if k < 0.08:
                shape = rng.choice(SHAPES)
                ok = try_step(("leaf", _data(rng, shape), rng.random() < 0.8))
            elif k < 0.55:
                name = rng.choice(list(OPS))
                n, _ = OPS[name]
                args = [rng.choice(live) for _ in range(n)]
                if name in DIM_OPS and r.E[args[0]].dim() == 0:
                    continue
                if name in ("var", "std0") and r.E[args[0]].numel() <= 2:
                    continue      # var of one value: nan, its gradient nan or inf (op-level)
                if name.startswith(("cat", "stack")) and \
                        any(r.E[a].numel() == 0 for a in args):
                    continue      # PyTorch's cat skips an empty 1-d tensor (legacy): not drawn
                ok = try_step(("op", name, args))     # (errors of ops: test_bad_input.py)
            elif k < 0.62:
                scal = tensors(lambda t: t.dim() == 0 and t.requires_grad)
                if not scal:
                    i = rng.choice(live)
                    ok = try_step(("op", "sum", [i]))
                    continue
                inputs = None
                fresh = [i for i in live if i not in stale]
                if rng.random() < 0.2 and fresh:
                    inputs = rng.sample(fresh, min(len(fresh), rng.randint(1, 2)))
                ok = try_step(("backward", rng.choice(scal), rng.choice([None, True, False]),
                               inputs), keep_error=0.5)
            elif k < 0.65:
                ok = try_step(("backward_grad", rng.choice(live), rng.random() < 0.5),
                              keep_error=0.3)
            elif k < 0.72:
                scal = tensors(lambda t: t.dim() == 0)
                if not scal:
                    continue
                fresh = [i for i in live if i not in stale]
                if not fresh:
                    continue
                inputs = rng.sample(fresh, min(len(fresh), rng.randint(1, 2)))
                ok = try_step(("grad", rng.choice(scal), inputs, rng.choice([None, True]),
                               rng.random() < 0.5, rng.random() < 0.3), keep_error=0.4)
            elif k < 0.76:
                fresh = [i for i in live if i not in stale]   # (PyTorch 2.13 crashes
                if not fresh:                                  # hooking a stale view)
                    continue
                ok = try_step(("retain_grad", rng.choice(fresh)), keep_error=0.2)
            elif k < 0.81:
                fresh = [i for i in live if i not in stale]
                if not fresh:
                    continue
                ok = try_step(("hook", rng.choice(fresh), rng.choice(["log", "scale"])),
                              keep_error=0.2)
            elif k < 0.84:
                ok = try_step(("grad_none", rng.choice(live)))
            elif k < 0.87:
                ok = try_step(("grad_zero", rng.choice(live)), keep_error=0.05)
            elif k < 0.90:
                ok = try_step(("hold_grad", rng.choice(live)))
            elif k < 0.94:
                leaves = [i for i in tensors(lambda t: t.is_leaf) if i not in shared
                          and not any(root(k) == i for k in view_of)]   # (see docstring)
                if not leaves:
                    continue
                i, j = rng.choice(leaves), rng.choice(live)
                if related(i, j):
                    continue
                ok = try_step(("nograd_inplace", rng.choice(list(INPLACE)), i, j),
                              keep_error=0.1)
            else:
                own = [i for i in live if i not in shared]
                if not own:
                    continue
                i, j = rng.choice(own), rng.choice(live)
                if related(i, j):
                    continue
                ok = try_step(("inplace", rng.choice(GRAD_MODE_INPLACE), i, j),
                              keep_error=0.4)
            if ok:
                break
    # end with a backward of everything that is still differentiable, half the time
    if rng.random() < 0.5 and not stop:
        scal = tensors(lambda t: t.dim() == 0 and t.requires_grad)
        if scal:
            try_step(("backward", rng.choice(scal), None, None), keep_error=1.0)
    return steps


# ----- comparing ------------------------------------------------------------------------------
class Differs(AssertionError):
    """(where, tapegrad's, PyTorch's): the first observation that differs."""


def _same(a, b, where):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and np.allclose(a, b, rtol=TOL, atol=TOL, equal_nan=True)):
            raise Differs(where, a, b)
        return
    if isinstance(a, (list, tuple)):
        if not (isinstance(b, (list, tuple)) and len(a) == len(b)):
            raise Differs(where, a, b)
        for k, (x, y) in enumerate(zip(a, b)):
            _same(x, y, where + (k,))
        return
    if isinstance(a, float) and isinstance(b, float):
        if not (math.isclose(a, b, rel_tol=TOL, abs_tol=TOL) or (a != a and b != b)):
            raise Differs(where, a, b)
        return
    if a != b:
        raise Differs(where, a, b)


def _show(steps):
    r = Run(torch)
    r.run(steps)
    lines, n = [], 0
    for k, (s, m) in enumerate(zip(steps, r.made)):
        made = f"E[{n}]" if m == n + 1 else f"E[{n}:{m}]" if m > n else ""
        lines.append(f"  {k}: {made:>8} {s!r}")
        n = m
    return "\n".join(lines)


def minimize(steps):
    """A shorter program that still differs (for reports): each step in turn is dropped, or
    replaced by constants when it made entries, while some difference remains."""
    def first(st):
        try:
            _same(run(tg, st), run(torch, st), ())
        except Differs as e:
            return e.args[0]
        return None
    where = first(steps)

    def differs(st):
        return first(st) == where
    k = len(steps) - 1
    while k >= 0:
        r = Run(torch)
        r.run(steps)
        made = r.made[k] - (r.made[k - 1] if k else 0)
        trial = steps[:k] + ([("leaf", 0.5, False)] * made or [("nop",)]) + steps[k + 1:]
        if trial != steps and differs(trial):
            steps = trial
        k -= 1
    return steps


def check(seed):
    steps = draw(seed)
    want = run(torch, steps)
    got = run(tg, steps)
    try:
        _same(got, want, ())
    except Differs as e:
        where, mine, theirs = e.args
        raise AssertionError(f"seed {seed} differs from PyTorch at observation {where}:\n"
                             f"  tapegrad: {mine!r}\n  PyTorch:  {theirs!r}\n"
                             f"program:\n{_show(steps)}") from None


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_lifetimes_fuzz(chunk):
    per = -(-CASES // CHUNKS)
    for seed in range(START + chunk * per, START + min(CASES, (chunk + 1) * per)):
        check(seed)
