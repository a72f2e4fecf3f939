"""The package as a user gets it: sdist -> wheel -> a fresh virtual environment.

``pip install -e`` (CI, developers) and the source-tree copies of tests/test_readonly.py
never see what the wheel leaves out; a subpackage missing from ``pyproject.toml`` once made
``import tapegrad`` fail for everyone installing normally. Here:

1. the sdist is built from a copy of this checkout (PEP 517 hook of the build backend, no
   build isolation: nothing to download) and must hold the package, the tests, the
   notebooks with their README, the bench scripts, and no compiled caches;
2. the wheel is built from that sdist (as ``python -m build`` does) and must hold every
   module of the source tree's ``tapegrad/``;
3. the wheel is installed with pip into a fresh venv, and, from a directory outside the
   source tree, ``python -m tapegrad`` runs the walkthrough and a walk of the installed
   package imports every module, which must be the source tree's modules, each loaded from
   the venv.

The venv borrows NumPy and Numba from the environment running the tests as plain path
entries (a ``.pth`` file naming their directories) instead of ``--system-site-packages``:
the latter would also run that environment's ``.pth`` hooks, and an editable install of
tapegrad is such a hook, which serves any module the wheel lacks from the source tree and
would hide exactly the bug this test is for.

Numba's compiled kernels are cached by the path of the installed package, so the venv sits
at a fixed place per checkout (rebuilt every run, under a lock) and ``NUMBA_CACHE_DIR`` is
passed on: only the first run on a machine compiles (~15 s), later ones load.
"""
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NETWORK_NOTEBOOK = ROOT / "notebooks" / "03-network-with-autograd.ipynb"
# what a working tree holds that is not source: never copied, never shipped
NOT_SOURCE = (".git", ".ci-venv", ".numba_cache", ".hypothesis", ".pytest_cache", ".benchmarks",
              "build", "dist", "*.egg-info", "__pycache__", ".ipynb_checkpoints")
CACHE_FILE = re.compile(r"\.(pyc|pyo|nbi|nbc)$")
TIMEOUT = 600


def _run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kw)
    assert p.returncode == 0, (f"{' '.join(map(str, cmd))}: exit {p.returncode}\n"
                               f"{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p.stdout


def _source_modules():
    """Dotted names of every module under the source tree's tapegrad/."""
    names = set()
    for path in (ROOT / "tapegrad").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _source_files(*dirs):
    """Files under ``dirs`` of the source tree, as paths relative to ROOT (no caches)."""
    found = set()
    for d in dirs:
        for path in (ROOT / d).rglob("*"):
            rel = path.relative_to(ROOT)
            if (path.is_file() and not CACHE_FILE.search(path.name)
                    and not {"__pycache__", ".ipynb_checkpoints"} & set(rel.parts)):
                found.add(rel.as_posix())
    return found


def _check_build_backend():
    from importlib.metadata import version
    major = int(version("setuptools").split(".")[0])
    assert major >= 77, ("tests/test_wheel.py builds without isolation and needs setuptools>=77 "
                         "(the build backend of pyproject.toml): pip install -e '.[test]'")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist member names, wheel path) built from a copy of this checkout."""
    _check_build_backend()
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    # Numba caches beside the package, as a run without NUMBA_CACHE_DIR leaves them: they
    # must reach neither the sdist nor the wheel
    (src / "tapegrad" / "__pycache__").mkdir()
    for name in ("kernels._sweep-1.py311.nbi", "kernels._sweep-1.py311.1.nbc",
                 "tensor.cpython-311.pyc"):
        (src / "tapegrad" / "__pycache__" / name).write_bytes(b"cache")
    dist = tmp / "dist"
    sdist = _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                  "print(b.build_sdist(sys.argv[1]))", str(dist)], cwd=src).splitlines()[-1]
    with tarfile.open(dist / sdist) as tar:
        members = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
        # the "data" filter (refuse links and paths out of the target) where Python has it
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp / "unpacked", **safe)
    unpacked = tmp / "unpacked" / sdist[:-len(".tar.gz")]
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", str(dist), str(unpacked)], cwd=tmp)
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return members, wheels[0]


@pytest.fixture(scope="module")
def venv(built):
    """The python of a fresh venv where the wheel (only) is installed with pip."""
    _, wheel = built
    place = Path(tempfile.gettempdir()) / (
        "tapegrad-wheel-test-" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:12])
    place.mkdir(exist_ok=True)
    with open(place / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)      # one run at a time per checkout
        env_dir = place / "venv"
        shutil.rmtree(env_dir, ignore_errors=True)
        _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], env=_clean_env())
        python = env_dir / "bin" / "python"
        _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
              "--no-deps", "--no-index", str(wheel)], env=_clean_env())
        purelib = Path(_run([str(python), "-c",
                             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            env=_clean_env()).strip())
        deps = {str(Path(importlib.util.find_spec(name).origin).parents[1])
                for name in ("numpy", "numba", "llvmlite")}
        (purelib / "_tapegrad_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
        yield python, env_dir
        shutil.rmtree(env_dir, ignore_errors=True)


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(),
                                                   "tapegrad_wheel_numba_cache"))
    return env


@pytest.fixture(scope="module")
def walkthrough(venv, tmp_path_factory):
    """The output of ``python -m tapegrad`` run from the installed wheel."""
    python, _ = venv
    return _run([str(python), "-m", "tapegrad"], env=_clean_env(),
                cwd=tmp_path_factory.mktemp("elsewhere"))


def test_sdist_holds_the_package_tests_notebooks_and_bench(built):
    members, _ = built
    want = (_source_files("tapegrad", "tests", "notebooks", "bench")
            | {"README.md", "pyproject.toml", "MANIFEST.in"})
    missing = want - set(members)
    assert not missing, f"left out of the sdist: {sorted(missing)}"
    assert "tests/conftest.py" in members and "notebooks/README.md" in members
    assert {"tests/test_wheel.py", "notebooks/03-network-with-autograd.ipynb"} <= set(members)
    caches = [m for m in members if CACHE_FILE.search(m)]
    assert not caches, f"compiled caches in the sdist: {caches}"


def test_wheel_holds_every_module_of_the_source_tree(built):
    _, wheel = built
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n[:-3].replace("/", ".").removesuffix(".__init__") for n in names
               if n.startswith("tapegrad/") and n.endswith(".py")}
    missing = _source_modules() - shipped
    assert not missing, f"left out of the wheel: {sorted(missing)} (pyproject.toml)"
    assert not [n for n in names if CACHE_FILE.search(n)], names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "bench/"))], names


WALK = """
import importlib, json, pkgutil, tapegrad
found = {"tapegrad": tapegrad.__file__}
for m in pkgutil.walk_packages(tapegrad.__path__, "tapegrad."):
    found[m.name] = importlib.import_module(m.name).__file__
print(json.dumps(found))
"""


def test_installed_wheel_imports_every_module_from_the_venv(venv, tmp_path):
    python, env_dir = venv
    found = json.loads(_run([str(python), "-c", WALK], env=_clean_env(),
                            cwd=tmp_path).splitlines()[-1])
    assert set(found) == _source_modules(), (
        f"only in the source tree: {sorted(_source_modules() - set(found))}; "
        f"only installed: {sorted(set(found) - _source_modules())}")
    elsewhere = {n: f for n, f in found.items() if not Path(f).is_relative_to(env_dir)}
    assert not elsewhere, f"modules not loaded from the installed wheel: {elsewhere}"


def test_installed_walkthrough_runs(walkthrough):
    assert "== Autograd basics" in walkthrough
    assert "x2.grad = tensor([18.6000])" in walkthrough
    epochs = [int(t) for t in re.findall(r"^Epoch:\s*(\d+)", walkthrough, re.M)]
    assert epochs == list(range(10, 201, 10))       # 1-based, as the seed's for (t in 1:200)
    assert re.search(r"µs per epoch", walkthrough)


def _epoch_losses(text):
    return {int(t): float(v) for t, v in re.findall(r"Epoch:\s*(\d+)\s+Loss:\s*(\S+)", text)}


def test_walkthrough_prints_the_epochs_and_losses_of_notebook_3(walkthrough):
    """Same seed, same loop: "Epoch: 10" names the same iteration, so the same loss, in
    ``python -m tapegrad`` and in the committed outputs of notebook 3."""
    nb = json.loads(NETWORK_NOTEBOOK.read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"]
                      if "training" in c.get("metadata", {}).get("tags", ())
                      for o in c.get("outputs", ()))
    notebook, ours = _epoch_losses(printed), _epoch_losses(walkthrough)
    assert sorted(notebook) == sorted(ours) == list(range(10, 201, 10))
    for t in notebook:
        assert ours[t] == pytest.approx(notebook[t], rel=1e-4), (t, ours[t], notebook[t])


def _install_advice():
    """(where, text) of every document a user reads install commands in."""
    yield "README.md", (ROOT / "README.md").read_text()
    yield "notebooks/README.md", (ROOT / "notebooks" / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            text = "".join(cell["source"]) + "".join(
                "".join(o.get("text", "")) for o in cell.get("outputs", ()))
            yield path.name, text


def test_install_advice_pins_torch():
    """A bare ``pip install torch`` pulls a multi-GB CUDA build: every command that installs
    torch pins the CPU build the ``test`` extra names (torch==2.13.0)."""
    bare = [(where, cmd) for where, text in _install_advice()
            for cmd in re.findall(r"pip install[^\n`]*", text)
            if re.search(r"\btorch\b(?!==)", cmd)]
    assert not bare, f"unpinned torch installs: {bare}"
    requirements = re.sub(r"#.*", "", (ROOT / "pyproject.toml").read_text())   # no comments
    pins = re.findall(r'"(torch\b[^"]*)"', requirements)
    assert pins and set(pins) == {"torch==2.13.0"}, pins
