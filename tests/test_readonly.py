"""Installs that cannot cache, and the sweep under Numba's bounds checking (subprocesses).

1. A read-only install: the package copied to a directory made read-only, no
   NUMBA_CACHE_DIR (or one that cannot be made), HOME (and XDG_CACHE_HOME) unwritable:
   importing it and running a backward works; a warning at most. No cache means the
   kernels compile in the subprocess: about 25 s each. When the tests run as root, ``chmod`` alone does not
   stop writes: the subprocess runs without the capabilities that let root ignore file
   modes (``setpriv``), and the test checks that the directory really refuses a write.
2. ``NUMBA_BOUNDSCHECK=1``: every family of the op table (and the scalar fast path, the
   forward replay of ``tg.compile``, empty tensors, the bad-input catalogue's value cases and
   150 random graphs of the property tests) differentiated by a sweep compiled with bounds
   checks, so an out-of-bounds read or write in the jitted code raises IndexError instead of
   passing silently. Numba caches per bounds-check setting: a cache directory of its own
   (in the temp dir, kept between runs: about 45 s to compile the first time, seconds after).
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

import tapegrad

PACKAGE = os.path.dirname(os.path.abspath(tapegrad.__file__))
TESTS = os.path.dirname(os.path.abspath(__file__))
BOUNDSCHECK_CACHE = os.path.join(tempfile.gettempdir(), "tg_numba_cache_boundscheck")


def _drop_root_powers():
    """A command prefix under which root obeys file modes (empty for other users)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: chmod cannot make a directory read-only")
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def _run(code, env, timeout, prefix=()):
    proc = subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def _make_read_only(path):
    for root, dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            os.chmod(p, os.stat(p).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    for root, dirs, files in os.walk(path, topdown=False):
        for name in dirs:
            p = os.path.join(root, name)
            os.chmod(p, os.stat(p).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(path):
    for root, dirs, files in os.walk(path):
        os.chmod(root, os.stat(root).st_mode | stat.S_IWUSR)
        for name in files + dirs:
            p = os.path.join(root, name)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)


READ_ONLY_RUN = """
    import json, os, sys, warnings
    site = sys.argv[1] if len(sys.argv) > 1 else os.environ["TG_SITE"]
    sys.path.insert(0, site)
    probe = os.path.join(site, "tapegrad", "probe.txt")
    try:
        open(probe, "w").close()
        writable = True
    except OSError:
        writable = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import tapegrad as tg
        x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=tg.float64, requires_grad=True)
        loss = (x.mm(x).tanh().sum(0) * 2).sum()
        loss.backward()
        s = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
        (s * s * s).backward()
    grads = x.grad.tolist()
    written = [os.path.join(r, f) for r, _, fs in os.walk(site) for f in fs
               if f.endswith((".nbi", ".nbc"))]
    print(json.dumps({"file": tg.__file__, "writable": writable, "grad": grads,
                      "sgrad": s.grad.item(), "cache_files": written,
                      "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}))
"""


@pytest.mark.parametrize("cache_dir", ["unset", "unusable"])
def test_read_only_install_without_a_cache_directory_works(cache_dir):
    """cache_dir 'unset': no NUMBA_CACHE_DIR; 'unusable': it names a path under a regular
    file, where no directory can be made."""
    prefix = _drop_root_powers()
    tmp = tempfile.mkdtemp(prefix="tg_readonly_")
    try:
        site = os.path.join(tmp, "site")
        home = os.path.join(tmp, "home")
        os.makedirs(site)
        os.makedirs(home)
        shutil.copytree(PACKAGE, os.path.join(site, "tapegrad"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
        _make_read_only(site)
        _make_read_only(home)
        env = {k: v for k, v in os.environ.items()
               if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH",
                            "TAPEGRAD_NO_CACHE", "NUMBA_BOUNDSCHECK")}
        env.update(HOME=home, TG_SITE=site)
        if cache_dir == "unusable":
            blocker = os.path.join(tmp, "not-a-directory")
            open(blocker, "w").close()
            env["NUMBA_CACHE_DIR"] = os.path.join(blocker, "cache")
        out, stderr = _run(READ_ONLY_RUN, env, timeout=240, prefix=prefix)
    finally:
        _make_writable(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    assert out["file"].startswith(site), out["file"]          # the read-only copy ran
    assert not out["writable"], "the directory was writable: the test proves nothing"
    import numpy as np
    from fractions import Fraction
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    T = np.tanh(X @ X)
    # 1 - T^2 rounded once, as the sweep computes it (one FMA, as PyTorch's tanh_backward):
    # T is within 2e-6 of 1 here, where 1 - T**2 rounded twice is off by up to ~1e-10
    G = 2 * np.vectorize(lambda t: float(1 - Fraction(t) ** 2))(T)
    np.testing.assert_allclose(out["grad"], G @ X.T + X.T @ G, rtol=1e-12)
    assert out["sgrad"] == pytest.approx(3 * 1.5 ** 2, rel=1e-12)
    assert out["cache_files"] == []
    assert len(out["warnings"]) <= 1, out["warnings"]         # a warning at most
    assert "Traceback" not in stderr


BOUNDSCHECK_RUN = """
    import json, math, os, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    from numba import njit

    @njit(boundscheck=None)
    def _probe(a):
        return a[5]
    try:
        _probe(np.zeros(1))
        active = False
    except IndexError:
        active = True

    import tapegrad as tg
    sys.path.insert(0, os.environ["TG_TESTS"])
    done = []

    def leaf(data):
        return tg.tensor(data, dtype=tg.float64, requires_grad=True)

    def back(name, out, *leaves):
        out.backward()
        for x in leaves:
            g = x.grad
            assert g is not None and tuple(g.shape) == tuple(x.shape), name
        done.append(name)

    A = [[0.9, -0.1, 0.3], [0.2, -1.1, 0.5]]
    B = [[0.5, 1.0], [-0.3, 0.2], [0.7, -0.4]]
    # binary, broadcasting, with numbers on either side
    for name, f in {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
                    "mul": lambda a, b: a * b, "div": lambda a, b: a / (b * b + 1),
                    "pow": lambda a, b: (a * a + 1) ** b, "maximum": lambda a, b: a.maximum(b),
                    "minimum": lambda a, b: a.minimum(b),
                    "where": lambda a, b: tg.where(a > 0, a, b),
                    "hypot": lambda a, b: a.hypot(b), "logaddexp": lambda a, b: a.logaddexp(b),
                    "fmod": lambda a, b: a.fmod(b * b + 1),
                    "remainder": lambda a, b: a % (b * b + 1)}.items():
        for sb in ([0.5, -0.2, 0.1], [[0.5], [-0.2]], 0.7, [[[1.0]], [[2.0]]]):
            a, b = leaf(A), leaf(sb)
            back(name, (f(a, b) * 1.5).sum(), a, b)
        a = leaf(A)
        back(name + "_number", (f(a, 0.5) + f(2.0, a) if name not in ("maximum", "minimum",
             "where", "pow", "div", "hypot", "logaddexp", "fmod", "remainder")
             else f(a, leaf(0.5))).sum(), a)
    # unary, array and scalar: the ops of tests/op_catalogue.py (a pole or a domain edge:
    # taken of a * a + 0.5, of a / (a * a + 0.5) in (-1, 1), or of a * a + 1.5), then
    # square and a cast
    from op_catalogue import UNARY
    for name in list(UNARY) + ["square", "double"]:
        for data in (A, 0.7):
            a = leaf(data)
            dom = UNARY.get(name)
            x = a * a + 0.5 if dom in ("pos", "nz") else a / (a * a + 0.5) if \
                dom == "unit" else a * a + 1.5 if dom == "gt1" else a
            back(name, getattr(x, name)().sum(), a)
    for data in (A, 0.7):
        a = leaf(data)
        back("clamp", (a.clamp(-0.2, 0.4) + a.clamp(min=0.1) + a ** 3 + 2.0 ** a).sum(), a)
        back("fmodc", (a.fmod(0.7) + a % -0.3).sum(), a)
    # reductions and lanes, every dim, keepdim both ways
    for name in ("sum mean amax amin prod var std logsumexp softmax log_softmax norm max min "
                 "maxdim mindim").split():
        for dim in (None, 0, 1, -1):
            for keep in (False, True):
                a = leaf(A)
                if name in ("softmax", "log_softmax"):
                    if dim is None or keep:
                        continue
                    y = getattr(a, name)(dim)
                elif name in ("maxdim", "mindim"):
                    if dim is None:
                        continue
                    y = getattr(a, name[:3])(dim, keepdim=keep)[0]
                elif name in ("max", "min"):
                    if dim is not None or keep:
                        continue
                    y = getattr(a, name)()
                elif name == "norm":
                    y = a.norm(dim=dim, keepdim=keep)
                elif name == "logsumexp":
                    if dim is None:
                        continue
                    y = a.logsumexp(dim, keepdim=keep)
                elif dim is None:
                    if keep:
                        continue
                    y = getattr(a, name)()
                else:
                    y = getattr(a, name)(dim, keepdim=keep)
                back(name, (y * y).sum(), a)
    a = leaf(np.arange(24.0).reshape(2, 3, 4) / 10)
    back("sum_dims", (a.sum((0, 2)) + a.mean((1, 2), keepdim=True).sum()).sum(), a)
    # matrix products
    a, b = leaf(A), leaf(B)
    back("mm", a.mm(b).sum(), a, b)
    a, b = leaf(np.ones((2, 2, 3))), leaf(np.ones((2, 3, 4)))
    back("bmm", a.bmm(b).sum(), a, b)
    a, b = leaf([1.0, 2.0, 3.0]), leaf([0.5, -1.0, 2.0])
    back("dot", a.dot(b), a, b)
    a, b = leaf(A), leaf([0.5, -1.0, 2.0])
    back("mv", a.mv(b).sum(), a, b)
    a, b = leaf(np.ones((2, 2, 3))), leaf(B)
    back("matmul_broadcast", (a @ b).sum() + (leaf([1.0, 2.0, 3.0]) @ b).sum(), a, b)
    # views
    a = leaf(np.arange(24.0).reshape(2, 3, 4) / 7)
    y = ((a[1] * 2).sum() + a[:, 1:3:1].sum(1).sum() + a[..., 2].unsqueeze(-1).sum()
         + a.permute(0, 2, 1)[:, :3].sum() + a.transpose(0, 2).reshape(4, 6).t()[0:3:2, ::3].sum()
         + a.view(6, 4)[::2].sum() + a[None].squeeze(0).squeeze().flatten().sum()
         + a[:, None, 1].squeeze(1).sum() + a.T.sum())
    back("views", y, a)
    a = leaf([[0.5], [1.5]])
    back("expand", (a.expand(2, 3) * leaf([1.0, 2.0, 3.0])).sum() + a.expand(4, 2, 5).sum(), a)
    # gathers, cat, stack, item assignment
    a = leaf(A)
    back("index", (a[[0, 1, 1, 0]] * 2).sum() + a[a > 0].sum() + a[:, [2, 2, 0]].sum(), a)
    a = leaf(A)
    back("index_select", a.index_select(1, tg.tensor([2, 0, 2])).sum(), a)
    a = leaf(A)
    back("gather", a.gather(1, tg.tensor([[0, 0], [2, 1]])).sum(), a)
    a, b = leaf(A), leaf(B)
    back("cat_stack", (tg.cat([a, b.t()], 0).sum() + tg.stack([a, a * 2], 1).sum()
                       + tg.cat([a, a], 1).sum()), a, b)
    a, b = leaf(A), leaf([9.0, 8.0])
    y = a * 1.0
    y[:, 1] = b
    y[0] = 3.0
    back("setitem", (y * y).sum(), a, b)
    # empty tensors
    e = leaf(np.ones((0, 3)))
    back("empty", e.sum() + e.exp().sum() + e.t().mm(e).sum() + e.sum(0).sum()
         + e.mean(1).sum() + tg.cat([e, e * 2]).sum() + e[:, 1:].sum() + (e @ e.t()).sum(), e)
    e = leaf(np.ones(0))
    back("empty_lanes", e.var() * 0 + e.prod() + e.norm() + e.logsumexp(0) * 0, e)
    # scalars (the fast path), long chains
    s, t = leaf(0.3), leaf(-0.7)
    h = s
    for i in range(2000):
        h = (h * t + s).tanh() * 0.9 + h / (t * t + 1)
    back("scalar_chain", h, s, t)
    # hooks and retained grads
    a = leaf(A)
    h = a.exp()
    h.retain_grad()
    h.register_hook(lambda g: g * 2)
    back("hooks", (h * h).sum(), a)
    # replay (tg.compile): the forward sweep, then the reverse sweep over its buffers
    f = tg.compile(lambda w, b: ((w.mm(b) - 1).pow(2).sum() + w.amax(1).sum()
                                  + w[:, 0].sum() + tg.cat([w, w]).softmax(0).sum()))
    for k in range(3):
        w, b = leaf(np.array(A) * (k + 1)), leaf(B)
        back("compile", f(w, b), w, b)
    # the bad-input catalogue's value cases (NaN, inf, empty)
    import test_bad_input as C
    for c in C.CASES:
        if c.expect[0] == "value":
            try:
                c.scenario(tg)
            except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as e:
                if "index" in str(e).lower() and "out of bounds" in str(e).lower():
                    raise
            done.append("catalogue:" + c.id)
    # random graphs of the property tests: each differentiated, no comparison here
    from hypothesis import HealthCheck, given, settings
    import test_properties as P
    count = [0]

    @settings(max_examples=150, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(P.graph_and_values())
    def random_graphs(case):
        graph, values = case
        leaves = P.make_leaves(tg, graph, values)
        loss, _ = P.run(tg, graph, leaves)
        loss.backward()
        count[0] += 1
    random_graphs()
    print(json.dumps({"active": active, "done": len(done), "graphs": count[0],
                      "names": sorted(set(done))}))
"""


def test_every_op_family_under_numba_boundscheck():
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=BOUNDSCHECK_CACHE,
               TG_TESTS=TESTS, PYTHONPATH=os.pathsep.join(
                   [os.path.dirname(PACKAGE), os.environ.get("PYTHONPATH", "")]))
    env.pop("TAPEGRAD_NO_CACHE", None)
    out, stderr = _run(BOUNDSCHECK_RUN, env, timeout=300)
    assert out["active"], "NUMBA_BOUNDSCHECK=1 did not turn bounds checking on"
    assert out["graphs"] == 150
    names = set(out["names"])
    for family in ("add", "where", "exp", "clamp", "sum", "amax", "logsumexp", "maxdim", "mm",
                   "bmm", "dot", "mv", "views", "expand", "index", "gather", "cat_stack",
                   "setitem", "empty", "scalar_chain", "hooks", "compile"):
        assert family in names, family
    from op_catalogue import UNARY
    assert not set(UNARY) - names, sorted(set(UNARY) - names)
    assert out["done"] > 150
