"""Execute the walkthrough notebooks headless and check what they show.

Every notebook in notebooks/ runs top to bottom in a fresh ``python3`` kernel (nbclient,
a timeout per cell); any error fails. Then the outputs are checked: the gradients and the
node names of the graph walk in notebook 2, a falling loss and the plot in notebook 3, an
image from every picture cell. The notebooks are executed in memory with a temporary
working directory: nothing is written into the repository. The kernel imports the
tapegrad of this checkout (its root is put first on the kernel's PYTHONPATH), and the
``python3`` kernel is the interpreter running the tests (a kernel spec in a temporary
JUPYTER_PATH), whatever kernel specs the machine has installed.
"""
import base64
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
BASICS, DEEPER, NETWORK = ("01-autograd-basics.ipynb", "02-digging-deeper.ipynb",
                           "03-network-with-autograd.ipynb")
CELL_TIMEOUT = 120          # seconds, per cell
PNG = b"\x89PNG\r\n\x1a\n"


def kernel_env(path=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"            # no __pycache__ in the checkout
    # Numba's cache goes next to the package unless told otherwise: keep it out of the repo.
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "tapegrad_numba_cache"))
    env.pop("MPLBACKEND", None)                     # let the kernel's inline backend draw
    if path is not None:
        env["PATH"] = path
    return env


def execute(name, workdir, path=None):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute(env=kernel_env(path))
    return nb


@pytest.fixture(scope="module", autouse=True)
def python3_is_this_interpreter(tmp_path_factory):
    """A ``python3`` kernel spec for sys.executable, found before the user's and system's."""
    spec = tmp_path_factory.mktemp("jupyter") / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(spec.parents[1]), old]))
    yield
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """run(name) -> the executed notebook; each notebook is executed once per module."""
    done = {}

    def get(name):
        if name not in done:
            try:
                done[name] = execute(name, tmp_path_factory.mktemp(name[:2]))
            except Exception as e:              # noqa: BLE001  remembered, re-raised below
                done[name] = e
        if isinstance(done[name], Exception):
            raise done[name]
        return done[name]
    return get


# ---- reading outputs ---------------------------------------------------------------------

def cells(nb, tag=None, source=None):
    found = [c for c in nb.cells if c.cell_type == "code"
             and (tag is None or tag in c.metadata.get("tags", ()))
             and (source is None or c.source.strip() == source)]
    assert found, f"no code cell with tag={tag!r} source={source!r}"
    return found


def text(cell_list):
    parts = []
    for c in cell_list:
        for o in c.outputs:
            if o.output_type == "stream":
                parts.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                parts.append(o.data.get("text/plain", ""))
    return "\n".join(parts)


def pngs(cell_list):
    return [base64.b64decode(o.data["image/png"]) for c in cell_list for o in c.outputs
            if o.output_type in ("execute_result", "display_data") and "image/png" in o.data]


def numbers(s):
    return [float(v) for v in re.findall(r"-?\d+\.\d+", s)]


# ---- every notebook runs -----------------------------------------------------------------

def test_the_three_notebooks_are_there():
    assert {BASICS, DEEPER, NETWORK} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_without_error(run, name):
    nb = run(name)
    for c in nb.cells:
        if c.cell_type == "code":
            assert not [o for o in c.outputs if o.output_type == "error"], c.source


@pytest.mark.parametrize("name", ALL)
def test_committed_with_outputs_and_requirements(name):
    """The files in the repo read well on a code host: executed, no errors, requirements first."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and 'pip install -e ".[notebooks]"' in first.source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "commit the notebook executed"
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert any("tg.manual_seed(" in c.source for c in code)


# ---- notebook 1 --------------------------------------------------------------------------

def test_basics_grad_fn_and_grad(run):
    nb = run(BASICS)
    assert "MeanBackward0" in text(cells(nb, "grad_fn"))
    grads = numbers(text(cells(nb, "grads")))
    assert grads == pytest.approx([0.25] * 4, abs=1e-4)


# ---- notebook 2 --------------------------------------------------------------------------

NODE = r"\b(MeanBackward0|MulBackward0|PowBackward0|AccumulateGrad|AddBackward0)\b"


def test_deeper_walk_names_each_node(run):
    nb = run(DEEPER)
    steps = [re.findall(NODE, text([c])) for c in cells(nb, "walk")]
    assert steps == [["MeanBackward0"], ["MulBackward0"], ["PowBackward0"], ["MulBackward0"],
                     ["AccumulateGrad", "AddBackward0"], ["AccumulateGrad"]]
    summary = text(cells(nb, "walk-names"))
    for name in ("MeanBackward0", "MulBackward0", "PowBackward0", "AccumulateGrad",
                 "AddBackward0"):
        assert name in summary


def test_deeper_walk_has_a_markdown_line_per_node(run):
    nb = run(DEEPER)
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and "walk" in c.metadata.get("tags", ()):
            before = nb.cells[i - 1]
            assert before.cell_type == "markdown" and before.source.startswith("**Step")
            assert "gradient" in before.source


@pytest.mark.parametrize("source, value, count", [
    ("z.grad", 0.25, 4), ("y.grad", 4.65, 4), ("x2.grad", 18.6, 1), ("x1.grad", 14.415, 4)])
def test_deeper_gradients(run, source, value, count):
    nb = run(DEEPER)
    assert numbers(text(cells(nb, source=source))) == pytest.approx([value] * count, abs=1e-4)


def test_deeper_picture_and_dot(run):
    nb = run(DEEPER)
    images = pngs(cells(nb, "picture"))
    assert images and all(img.startswith(PNG) for img in images)
    dot = text(cells(nb, "dot"))
    assert dot.lstrip().startswith("digraph")
    for name in ("MeanBackward0", "PowBackward0", "AddBackward0", r"x1\n(2, 2)"):
        assert name in dot


def test_deeper_picture_without_graphviz(tmp_path):
    """The same notebook with no `dot` on the kernel's PATH: the matplotlib fallback draws."""
    if shutil.which("dot") is None:
        pytest.skip("no Graphviz dot here: the main run already used the matplotlib fallback")
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not os.access(os.path.join(d, "dot"), os.X_OK))
    nb = execute(DEEPER, tmp_path, path=path)
    picture = cells(nb, "picture")
    assert "matplotlib fallback" in text(picture)
    images = pngs(picture)
    assert images and all(img.startswith(PNG) for img in images)


# ---- notebook 3 --------------------------------------------------------------------------

def test_network_loss_falls(run):
    nb = run(NETWORK)
    printed = re.findall(r"Epoch:\s*(\d+)\s+Loss:\s*(\S+)", text(cells(nb, "training")))
    losses = {int(t): float(v) for t, v in printed}
    assert sorted(losses) == list(range(10, 201, 10))        # every 10 epochs, as the post
    assert all(math.isfinite(v) for v in losses.values())
    assert losses[200] < losses[10]


def test_network_plot(run):
    nb = run(NETWORK)
    images = pngs(cells(nb, "plot"))
    assert images and images[0].startswith(PNG)


def test_network_comparison_table(run):
    nb = run(NETWORK)
    table = text(cells(nb, "comparison"))
    assert "time per epoch" in table
    rows = {line.split("  ")[0].strip(): line for line in table.splitlines()
            if re.search(r"\d µs", line)}
    assert "tapegrad" in rows and "NumPy, gradients by hand" in rows
    assert "PyTorch" in rows or "PyTorch: not installed, skipped" in table
    # same start, same loop: the losses at epoch 200 agree across implementations
    final = [float(line.split()[-1]) for line in rows.values()]
    assert max(final) - min(final) < 1e-2 * abs(final[0])


# ---- notebooks 4 and 5: modules and optimizers -------------------------------------------

WITH_NN, WITH_OPTIM = "04-network-with-nn.ipynb", "05-network-with-optim.ipynb"


def test_the_module_and_optimizer_notebooks_are_there():
    assert {WITH_NN, WITH_OPTIM} <= set(ALL)


def epoch_losses(cell_list):
    """{epoch: loss} from the "Epoch: t   Loss: v" lines of the cells."""
    printed = re.findall(r"Epoch:\s*(\d+)\s+Loss:\s*(\S+)", text(cell_list))
    losses = {int(t): float(v) for t, v in printed}
    assert sorted(losses) == list(range(10, 201, 10))        # every 10 epochs, 1-based
    assert all(math.isfinite(v) for v in losses.values())
    return losses


def comparison_rows(nb):
    """The rows of the PyTorch comparison table, or None when PyTorch is not installed."""
    table = text(cells(nb, "comparison"))
    if "PyTorch: not installed, skipped" in table:
        return None
    assert "PyTorch" in table
    return [line.split() for line in table.splitlines()[1:] if line.strip()]


def test_nn_notebook_builds_the_network_from_modules(run):
    nb = run(WITH_NN)
    assert text(cells(nb, "model")).strip() == (
        "Sequential(\n  (0): Linear(in_features=3, out_features=32, bias=True)\n"
        "  (1): ReLU()\n  (2): Linear(in_features=32, out_features=1, bias=True)\n)")
    params = text(cells(nb, "parameters"))
    for line in ("0.weight   (32, 3)", "0.bias     (32,)", "2.weight   (1, 32)",
                 "2.bias     (1,)"):
        assert line in params
    sources = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "nn.MSELoss(reduction=\"sum\")" in sources and "model.zero_grad()" in sources


def test_nn_notebook_loss_falls_and_agrees_with_pytorch(run):
    nb = run(WITH_NN)
    losses = epoch_losses(cells(nb, "training"))
    assert losses[200] < losses[100] < losses[10]
    rows = comparison_rows(nb)
    if rows is not None:                      # epoch, tapegrad, PyTorch, relative difference
        assert [int(r[0]) for r in rows] == list(range(10, 201, 10))
        for epoch, mine, theirs, _ in rows:
            assert float(mine) == pytest.approx(losses[int(epoch)], rel=1e-6)
            assert float(mine) == pytest.approx(float(theirs), rel=1e-4)


def test_optim_notebook_sgd_repeats_the_hand_written_update(run):
    nb = run(WITH_OPTIM)
    by_hand = epoch_losses(cells(nb, "by-hand"))
    sgd = epoch_losses(cells(nb, "sgd"))
    assert sgd == by_hand
    assert "SGD repeats the hand-written update exactly: True" in text(cells(nb, "sgd"))
    assert by_hand[200] < by_hand[10]
    # the network and data are notebook 4's: the same losses
    assert by_hand == epoch_losses(cells(run(WITH_NN), "training"))


def test_optim_notebook_adam_goes_lower_and_the_plot_has_three_curves(run):
    nb = run(WITH_OPTIM)
    sgd, adam = epoch_losses(cells(nb, "sgd")), epoch_losses(cells(nb, "adam"))
    assert adam[200] < sgd[200] and adam[200] < adam[10]
    plot = cells(nb, "plot")
    images = pngs(plot)
    assert images and images[0].startswith(PNG)
    assert plot[0].source.count("ax.plot(") == 3
    rows = comparison_rows(nb)
    if rows is not None:                      # optimizer, epoch, tapegrad, PyTorch
        assert {r[0] for r in rows} == {"SGD", "Adam"}
        for name, epoch, mine, theirs in rows:
            assert float(mine) == pytest.approx((sgd if name == "SGD" else adam)[int(epoch)],
                                                rel=1e-6)
            assert float(mine) == pytest.approx(float(theirs), rel=1e-4)
