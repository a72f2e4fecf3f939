"""A tg.compile replay computes every reduction and softmax to the bit as eager mode does.

The companion of test_compile_matches_eager.py (whose helpers this reuses) for the op
table's 'reduce' and 'lane' families: sum/mean (all, over a dim), max/min/amax/amin,
max(dim)/min(dim), prod, var/std, norm/vector_norm (p = 2, 1, 3, inf), logsumexp,
softmax, log_softmax. ``test_every_reduction_row_has_a_case`` fails for a row with no
case below. A compiled function of the op is recorded at one input and replayed at
others; its values and the gradient of its input (a backward with a random incoming
gradient) must equal, bit for bit, those of the eager call at the same input: float32
and float64 (and float32 in a recording that also holds a float64 value), over a row of
7, a (5, 33) matrix over dim 0 and dim 1, a (3, 4, 130) tensor over each dim, 0-d and
one-element tensors; random values, and the same with edge values sprinkled in (+-inf,
NaN, -0, 0, large, tiny).

Eager computes these with NumPy (its exp loop, ``np.add.reduce``'s pairwise summation);
before the replay did the same it computed them with Numba's own arithmetic (libm's exp,
a running sum) and differed in the last bit.
"""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad import ops

from test_compile_matches_eager import DTYPES, _differ, _run

pytestmark = [pytest.mark.usefixtures("isolated"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

LANE_EDGES = [np.inf, -np.inf, np.nan, -0.0, 0.0, 1e30, -1e30, 1e300, -1e300, 1e-42,
              5e-324, 88.0, -100.0, 700.0, -745.0]

# (op table row, label, f(x, dim)): dim is the layout's (None for a 0-d tensor)
CASES = [
    ("sum", "sum()", lambda x, d: x.sum()),
    ("sumdim", "sum(d)", lambda x, d: x.sum(d)),
    ("sumdim", "sum(d, keepdim)", lambda x, d: x.sum(d, keepdim=True)),
    ("mean", "mean()", lambda x, d: x.mean()),
    ("meandim", "mean(d)", lambda x, d: x.mean(d)),
    ("max", "max()", lambda x, d: x.max()),
    ("min", "min()", lambda x, d: x.min()),
    ("amax", "amax(d)", lambda x, d: x.amax(d)),
    ("amin", "amin(d)", lambda x, d: x.amin(d)),
    ("maxdim", "max(d)", lambda x, d: x.max(d)[0]),
    ("mindim", "min(d)", lambda x, d: x.min(d)[0]),
    ("prod", "prod()", lambda x, d: x.prod()),
    ("proddim", "prod(d)", lambda x, d: x.prod(d)),
    ("var", "var(d)", lambda x, d: x.var(d)),
    ("var", "var()", lambda x, d: x.var()),
    ("var", "var(d, correction=0)", lambda x, d: x.var(d, correction=0)),
    ("std", "std(d)", lambda x, d: x.std(d)),
    ("std", "std()", lambda x, d: x.std()),
    ("norm", "norm()", lambda x, d: x.norm()),
    ("norm", "norm(2, d)", lambda x, d: x.norm(2, d)),
    ("norm", "norm(1, d)", lambda x, d: x.norm(1, d)),
    ("norm", "norm(3, d)", lambda x, d: x.norm(3, d)),
    ("norm", "vector_norm(inf, d)", lambda x, d: tg.linalg.vector_norm(x, float("inf"), d)),
    ("logsumexp", "logsumexp(d)", lambda x, d: x.logsumexp(d)),
    ("softmax", "softmax(d)", lambda x, d: x.softmax(d)),
    ("log_softmax", "log_softmax(d)", lambda x, d: x.log_softmax(d)),
]

# (label, shape, dim)
LAYOUTS = [("row of 7", (7,), 0), ("(5, 33) dim 0", (5, 33), 0), ("(5, 33) dim 1", (5, 33), 1),
           ("(3, 4, 130) dim 2", (3, 4, 130), 2), ("(3, 4, 130) dim 1", (3, 4, 130), 1),
           ("(3, 4, 130) dim 0", (3, 4, 130), 0), ("one element", (1,), 0),
           ("0-d", (), 0)]


def test_every_reduction_row_has_a_case():
    rows = {r.name for r in ops._ROWS if r.family in ("reduce", "lane")} | {"maxdim", "mindim"}
    assert rows == {c[0] for c in CASES}, rows ^ {c[0] for c in CASES}


def _lane_values(rng, shape, dt, edges):
    v = rng.standard_normal(shape) * rng.choice([0.1, 1.0, 3.0, 30.0], shape)
    if edges:
        flat = v.reshape(-1)
        pick = rng.random(flat.size) < 0.08
        flat[pick] = rng.choice(LANE_EDGES, int(pick.sum()))
    return np.asarray(v.astype(dt))


def mismatches(case, dtype, layout, edges, mixed=False, seed=0, sets=3):
    """(values, grads) that differ between the replays and eager, over ``sets`` inputs."""
    _, _, f, = case[:3]
    _, shape, d = layout
    tdt, ndt = DTYPES[dtype]
    rng = np.random.default_rng(seed)
    cache = {}

    def g(o):
        if o.shape not in cache:
            cache[o.shape] = rng.standard_normal(tuple(o.shape)).astype(o.dtype.np)
        return cache[o.shape]
    z = (np.linspace(-1.0, 1.0, 5), tg.float64)
    if mixed:                   # a float64 value in the recording: a float64 arena
        def fn(x, w):
            return f(x, d), w * 2.0
    else:
        def fn(x):
            return f(x, d)
    compiled = tg.compile(fn)
    rec = [(_lane_values(rng, shape, ndt, False), tdt)] + ([z] if mixed else [])
    _run(compiled, rec, [g, g])
    _run(compiled, rec, [g, g])
    bad = [0, 0]
    for _ in range(sets):
        cache.clear()
        args = [(_lane_values(rng, shape, ndt, edges), tdt)] + ([z] if mixed else [])
        vc, gc = _run(compiled, args, [g, g])
        ve, ge = _run(fn, args, [g, g])
        bad[0] += sum(_differ(a, b) for a, b in zip(ve, vc))
        bad[1] += sum(_differ(a, b) for a, b in zip(ge, gc))
    if case[0] not in ("maxdim", "mindim"):     # (their guard records again on a new arg-max)
        assert compiled.stats()["replays"] >= 1 + sets, compiled.stats()
    return tuple(bad)


def sweep(dtype, mixed=False):
    bad = {}
    for case in CASES:
        for layout in LAYOUTS:
            for edges in (False, True):
                dv, dg = mismatches(case, dtype, layout, edges, mixed)
                if dv or dg:
                    bad[f"{case[1]} {layout[0]}{' edges' if edges else ''}"] = (dv, dg)
    return bad


@pytest.mark.parametrize("dtype,mixed", [("float32", False), ("float64", False),
                                         ("float32", True)],
                         ids=["float32", "float64", "float32 in a float64 arena"])
def test_reductions_replay_equal_eager_to_the_bit(dtype, mixed):
    bad = sweep(dtype, mixed)
    assert not bad, f"{dtype}: (values, grads) that differ from eager: {bad}"


# a transposed view (its memory order is not its C order) and an expanded one (stride 0)
VIEWS = [("x.t() dim 0", (33, 5), 0, lambda x: x.t()), ("x.t() dim 1", (33, 5), 1, lambda x: x.t()),
         ("x.t().expand dim 1", (33, 5), 1, lambda x: x.t().expand(2, 5, 33)),
         ("x.t().expand dim 2", (33, 5), 2, lambda x: x.t().expand(2, 5, 33))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reductions_of_views_replay_equal_eager_to_the_bit(dtype):
    """Eager reduces a view in C order, as the replay (which holds it C-ordered) does."""
    bad = {}
    for case in CASES:
        for label, shape, d, view in VIEWS:
            f = case[2]
            vcase = (case[0], case[1], lambda x, dd, f=f, view=view: f(view(x), dd))
            dv, dg = mismatches(vcase, dtype, (label, shape, d), True, sets=1)
            if dv or dg:
                bad[f"{case[1]} {label}"] = (dv, dg)
    assert not bad, f"{dtype}: (values, grads) that differ from eager: {bad}"
