"""A tg.compile replay computes every elementwise op to the bit as eager mode does.

For every binary and unary row of the op table (``test_every_elementwise_row_has_a_case``
fails for a row with no case below), a compiled function of the op is recorded at one
input and replayed at another; its values and the gradients of its inputs (a backward
with a random incoming gradient) must equal, bit for bit, those of the eager call at the
same input: float32 and float64; arrays (a few hundred random values and the edge values
0, -0, tiny, subnormal, large, inf, -inf, NaN), a broadcast for the binary ops, 0-d
tensors, and a float32 op in a recording that also holds a float64 value (whose replay
runs in float64 and rounds float32 results). Two NaNs count as equal whatever their
payloads (NumPy and libm make NaNs of either sign).

The transcendental ops (exp, log, tanh, sigmoid, sin, cos, log1p, expm1, atan, pow with
a general exponent, rpow) differed in the last bit before the replay called NumPy's own
loops (``tapegrad/numpy_loops.py``); ``test_numpy_loops_are_the_ufuncs`` checks those
loops against the ufuncs, contiguous, strided, in place and with a stride-0 operand.
"""
import ctypes

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import ops

pytestmark = [pytest.mark.usefixtures("isolated"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]  # eager's overflows

N = 300
EDGES = [0.0, -0.0, 1e-30, -1e-30, 1e-42, 5e-324, 0.5, 1.0, -1.0, 20.0, -20.0, 88.0,
         -100.0, 700.0, -745.0, 1e30, -1e30, 1e300, np.inf, -np.inf, np.nan]

# (op table row, label, the function of the tensor arguments, its number of arguments,
#  the domain of the random values: "any", "pos" (x > 0))
CASES = [
    ("add", "a + b", lambda a, b: a + b, 2, "any"),
    ("sub", "a - b", lambda a, b: a - b, 2, "any"),
    ("mul", "a * b", lambda a, b: a * b, 2, "any"),
    ("div", "a / b", lambda a, b: a / b, 2, "any"),
    ("pow", "a ** b", lambda a, b: a ** b, 2, "pos"),
    ("pow", "a ** (-b)", lambda a, b: a ** (-b), 2, "any"),
    ("maximum", "maximum", lambda a, b: tg.maximum(a, b), 2, "any"),
    ("minimum", "minimum", lambda a, b: tg.minimum(a, b), 2, "any"),
    ("where", "where", lambda a, b: tg.where(a > b, a, b), 2, "any"),
    ("neg", "-x", lambda x: -x, 1, "any"),
    ("exp", "exp", lambda x: x.exp(), 1, "any"),
    ("log", "log", lambda x: x.log(), 1, "pos"),
    ("log", "log of any", lambda x: x.log(), 1, "any"),
    ("tanh", "tanh", lambda x: x.tanh(), 1, "any"),
    ("sigmoid", "sigmoid", lambda x: x.sigmoid(), 1, "any"),
    ("sqrt", "sqrt", lambda x: x.sqrt(), 1, "pos"),
    ("abs", "abs", lambda x: x.abs(), 1, "any"),
    ("relu", "relu", lambda x: x.relu(), 1, "any"),
    ("clamp", "clamp", lambda x: x.clamp(-0.5, 0.7), 1, "any"),
    ("clamp", "clamp min", lambda x: x.clamp(min=0.1), 1, "any"),
    ("powc", "x ** 1.7", lambda x: x ** 1.7, 1, "pos"),
    ("powc", "x ** 0.1", lambda x: x.pow(0.1), 1, "pos"),
    ("powc", "x ** -2.3", lambda x: x ** -2.3, 1, "any"),
    ("powc", "x ** 2", lambda x: x ** 2, 1, "any"),
    ("powc", "x ** 3", lambda x: x ** 3.0, 1, "any"),
    ("powc", "x ** 0.5", lambda x: x ** 0.5, 1, "pos"),
    ("rpow", "2.5 ** x", lambda x: 2.5 ** x, 1, "any"),
    ("rpow", "0.3 ** x", lambda x: 0.3 ** x, 1, "any"),
    ("recip", "reciprocal", lambda x: x.reciprocal(), 1, "any"),
    ("sin", "sin", lambda x: x.sin(), 1, "any"),
    ("cos", "cos", lambda x: x.cos(), 1, "any"),
    ("log1p", "log1p", lambda x: x.log1p(), 1, "pos"),
    ("expm1", "expm1", lambda x: x.expm1(), 1, "any"),
    ("rsqrt", "rsqrt", lambda x: x.rsqrt(), 1, "pos"),
    ("cast", "to the other dtype", lambda x: x.double() if x.dtype == tg.float32 else
     x.float(), 1, "any"),
    ("clone", "clone", lambda x: x.clone(), 1, "any"),
    ("erf", "erf", lambda x: x.erf(), 1, "any"),
    ("atan", "atan", lambda x: x.atan(), 1, "any"),
    ("atan2", "atan2", lambda a, b: tg.atan2(a, b), 2, "any"),
    ("sign", "sign", lambda x: x.sign(), 1, "any"),
    ("floor", "floor", lambda x: x.floor(), 1, "any"),
    ("ceil", "ceil", lambda x: x.ceil(), 1, "any"),
    ("trunc", "trunc", lambda x: x.trunc(), 1, "any"),
    ("round", "round", lambda x: x.round(), 1, "any"),
    ("rounddec", "round(decimals=2)", lambda x: x.round(decimals=2), 1, "any"),
    ("rounddec", "round(decimals=-1)", lambda x: x.round(decimals=-1), 1, "any"),
    ("rounddec", "round(decimals=40)", lambda x: x.round(decimals=40), 1, "any"),
    ("frac", "frac", lambda x: x.frac(), 1, "any"),
    ("tan", "tan", lambda x: x.tan(), 1, "any"),
    ("sinh", "sinh", lambda x: x.sinh(), 1, "any"),
    ("cosh", "cosh", lambda x: x.cosh(), 1, "any"),
    ("asin", "asin", lambda x: x.asin(), 1, "any"),
    ("acos", "arccos", lambda x: x.arccos(), 1, "any"),
    ("asinh", "asinh", lambda x: x.asinh(), 1, "any"),
    ("acosh", "acosh", lambda x: x.acosh(), 1, "pos"),
    ("atanh", "atanh", lambda x: x.atanh(), 1, "any"),
    ("log2", "log2", lambda x: x.log2(), 1, "pos"),
    ("log10", "log10 of any", lambda x: x.log10(), 1, "any"),
    ("exp2", "exp2", lambda x: x.exp2(), 1, "any"),
    ("hypot", "hypot", lambda a, b: tg.hypot(a, b), 2, "any"),
    ("logaddexp", "logaddexp", lambda a, b: a.logaddexp(b), 2, "any"),
    ("fmod", "fmod", lambda a, b: tg.fmod(a, b), 2, "any"),
    ("remainder", "a % b", lambda a, b: a % b, 2, "any"),
    ("fmodc", "fmod(x, 0.7)", lambda x: x.fmod(0.7), 1, "any"),
    ("fmodc", "fmod(x, -3)", lambda x: tg.fmod(x, -3), 1, "any"),
    ("remainderc", "x % 0.7", lambda x: x % 0.7, 1, "any"),
    ("remainderc", "remainder(x, -2.5)", lambda x: x.remainder(-2.5), 1, "any"),
]
DTYPES = {"float32": (tg.float32, np.float32), "float64": (tg.float64, np.float64)}


def test_every_elementwise_row_has_a_case():
    rows = {r.const.lower() for r in ops._ROWS if r.family in ("binary", "unary")}
    assert rows == {c[0] for c in CASES}, rows ^ {c[0] for c in CASES}


def _values(rng, n, domain, dt, edges=True):
    v = rng.standard_normal(n) * rng.choice([0.1, 1.0, 3.0, 30.0], n)
    if edges and n >= 2 * len(EDGES):
        v[:len(EDGES)] = EDGES
        v[len(EDGES):2 * len(EDGES)] = np.negative(EDGES)
    if domain == "pos":
        v = np.abs(v)
    return v.astype(dt)


def _differ(a, b):
    """How many values differ in their bits (two NaNs are equal)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    u = f"u{a.dtype.itemsize}"
    same = (a.view(u) == b.view(u)) | (np.isnan(a) & np.isnan(b))
    return int(np.sum(~same))


def _run(fn, args, gs):
    """Values and input gradients of fn at args (a backward with incoming gradients gs)."""
    xs = [tg.tensor(a, dtype=d, requires_grad=True) for a, d in args]
    outs = fn(*xs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    tg.autograd.backward([o for o in outs if o.requires_grad],
                         [tg.tensor(g(o), dtype=o.dtype) for o, g in zip(outs, gs)
                          if o.requires_grad])
    return ([o.detach().numpy().copy() for o in outs],
            [np.zeros(np.shape(a)) if x.grad is None else x.grad.numpy().copy()
             for x, (a, _) in zip(xs, args)])


def _compare(fn, record_args, replay_sets, seed):
    """Mismatches (values, grads) of fn's replays at each of replay_sets against eager."""
    rng = np.random.default_rng(seed)
    cache = {}

    def grad_of(i):
        def g(o):
            if (i, o.shape) not in cache:
                cache[i, o.shape] = rng.standard_normal(o.shape).astype(o.dtype.np)
            return cache[i, o.shape]
        return g
    gs = [grad_of(i) for i in range(4)]
    compiled = tg.compile(fn)
    _run(compiled, record_args, gs)
    _run(compiled, record_args, gs)
    bad = [0, 0]
    for args in replay_sets:
        cache.clear()
        vc, gc = _run(compiled, args, gs)
        ve, ge = _run(fn, args, gs)
        bad[0] += sum(_differ(a, b) for a, b in zip(ve, vc))
        bad[1] += sum(_differ(a, b) for a, b in zip(ge, gc))
    assert compiled.stats()["replays"] >= 1 + len(replay_sets), compiled.stats()
    return tuple(bad)


def _mismatches(case, dtype, layout, seed=0):
    name, label, f, arity, domain = case
    tdt, ndt = DTYPES[dtype]
    rng = np.random.default_rng(seed)
    if layout == "0-d":
        vals = [_values(rng, 60, domain, ndt) for _ in range(arity)]
        rec = [(ndt(0.75), tdt)] * arity
        return _compare(f, rec, [[(v[i], tdt) for v in vals] for i in range(60)], seed)
    if layout == "broadcast":               # (N/10, 10) with (10,): the second one spread
        if arity == 1:
            return 0, 0
        shapes = [(N // 10, 10), (10,)]
        rec = [(_values(rng, int(np.prod(s)), domain, ndt, False).reshape(s), tdt)
               for s in shapes]
        new = [(_values(rng, int(np.prod(s)), domain, ndt).reshape(s), tdt) for s in shapes]
        return _compare(f, rec, [new], seed)
    rec = [(_values(rng, N, domain, ndt, False), tdt) for _ in range(arity)]
    new = [(_values(rng, N, domain, ndt), tdt) for _ in range(arity)]
    if layout == "mixed":                   # a float64 value in the recording: a float64
        def g(*xs):                         # replay that rounds the float32 results
            return f(*xs[:-1]), xs[-1] * 2.0
        z = (np.linspace(-1.0, 1.0, 5), tg.float64)
        return _compare(g, rec + [z], [new + [z]], seed)
    return _compare(f, rec, [new], seed)


LAYOUTS = {"float32": ("array", "broadcast", "0-d", "mixed"),
           "float64": ("array", "broadcast", "0-d")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_replays_equal_eager_to_the_bit(dtype):
    bad = {}
    for case in CASES:
        for layout in LAYOUTS[dtype]:
            dv, dg = _mismatches(case, dtype, layout)
            if dv or dg:
                bad[f"{case[1]} ({layout})"] = f"{dv} values, {dg} grads"
    assert not bad, f"{dtype}: replayed values/grads that differ from eager: {bad}"


def _loop_call(ufunc, dt, ins, out):
    """Calls the loop numpy_loops finds for ufunc through ctypes (steps from the arrays;
    a one-value operand gets step 0)."""
    from tapegrad.numpy_loops import loop_of
    fn, data = loop_of(ufunc, dt)
    n = out.shape[0]
    arrs = list(ins) + [out]
    P = ctypes.POINTER
    proto = ctypes.CFUNCTYPE(None, P(ctypes.c_void_p), P(ctypes.c_ssize_t),
                             P(ctypes.c_ssize_t), ctypes.c_void_p)
    proto(fn)((ctypes.c_void_p * len(arrs))(*[a.ctypes.data for a in arrs]),
              (ctypes.c_ssize_t * 1)(n),
              (ctypes.c_ssize_t * len(arrs))(*[a.strides[0] if a.shape[0] == n else 0
                                               for a in arrs]), data)
    return out


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_numpy_loops_are_the_ufuncs(dt):
    from tapegrad.numpy_loops import UFUNCS
    assert {"exp", "log", "tanh", "sin", "cos", "log1p", "expm1", "arctan",
            "power"} <= set(UFUNCS)
    rng = np.random.default_rng(3)
    bad = {}
    for name in UFUNCS:
        uf = getattr(np, name)
        if uf.signature is not None:    # matmul, a gufunc: test_compile_matches_eager_products
            continue
        for n in (1, 7, 8, 17, 1000):
            x = _values(rng, n, "pos" if name in ("log", "log1p", "power") else "any", dt,
                        n > 2 * len(EDGES))
            if uf.nin == 1:
                ref = uf(x)
                got = [_loop_call(uf, dt, [x], np.empty_like(x)),
                       _loop_call(uf, dt, [x.copy()], x.copy()),          # another place
                       uf(np.repeat(x, 3)[::3])]                          # strided eager
                inplace = x.copy()
                _loop_call(uf, dt, [inplace], inplace)
                got.append(inplace)
            else:
                y = _values(rng, n, "any", dt, False)
                ref = uf(x, y)
                c = np.array([dt(1.7)], dt)
                got = [_loop_call(uf, dt, [x, y], np.empty_like(x))]
                refc = uf(x, 1.7)                                         # a stride-0 number
                bad[(name, n, "x ** c")] = _differ(refc, _loop_call(uf, dt, [x, c],
                                                                    np.empty_like(x)))
                bad[(name, n, "spread c")] = _differ(refc, uf(x, np.full(n, c[0])))
            for i, z in enumerate(got):
                bad[(name, n, i)] = _differ(ref, z)
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, bad


@pytest.mark.parametrize("view", [lambda x: x.t(), lambda x: x.reshape(-1),
                                  lambda x: x[:, :1], lambda x: x[:1].expand(3, 2),
                                  lambda x: -x.t(), lambda x: x.t().prod(0)],
                         ids=["t", "reshape", "slice", "expand", "neg_t", "t_prod"])
def test_replayed_views_keep_the_sign_of_zero(view):
    compiled = tg.compile(view)
    for k in range(1, 4):                      # a recording, then replays
        a = np.array([[-0.0, 2.0], [3.0, -0.0], [-1.0, 0.0]]) * k
        ye = view(tg.tensor(a, requires_grad=True)).detach().numpy()
        yc = compiled(tg.tensor(a, requires_grad=True)).detach().numpy()
        assert _differ(ye, yc) == 0, (ye.tolist(), yc.tolist())
    assert compiled.stats()["replays"] >= 1
