import importlib
import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if (ROOT / "tapegrad" / "__init__.py").exists():
    drawing = importlib.import_module("tapegrad.drawing")
else:  # the package is not there yet: load the module by path
    _spec = importlib.util.spec_from_file_location(
        "tapegrad_drawing", ROOT / "tapegrad" / "drawing.py")
    drawing = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(drawing)

PNG = b"\x89PNG"


def parse(dot):
    """-> ({id: (label, attrs)}, [(u, v)]) from to_dot's output."""
    assert dot.startswith("digraph {") and dot.rstrip().endswith("}")
    nodes = {m[1]: (m[2].replace("\\n", "\n"), m[3])
             for m in re.finditer(r'^\t(n\d+) \[label="(.*)", (.*)\]$', dot, re.M)}
    edges = re.findall(r"^\t(n\d+) -> (n\d+)$", dot, re.M)
    return nodes, edges


def labels(nodes, color):
    return sorted(lab for lab, attrs in nodes.values() if f"fillcolor={color}" in attrs)


# ---- fake nodes: no torch needed; mimic tapegrad's fresh node views ----

class FakeTensor:
    def __init__(self, shape, grad_fn=None):
        self.shape, self._fn = shape, grad_fn

    @property
    def grad_fn(self):
        return None if self._fn is None else self._fn()


class FakeLeafNode:
    def __init__(self, t):
        self.variable = t

    def name(self):
        return "AccumulateGrad"

    next_functions = ()


class FakeNode:
    """A fresh object on every access, identified by ``_key``."""

    def __init__(self, key, name, inputs):
        self._key, self._name, self._inputs = key, name, inputs

    def name(self):
        return self._name

    @property
    def next_functions(self):
        return tuple((f() if f else None, 0) for f in self._inputs)


def fake_graph():
    a, b = FakeTensor((2, 3)), FakeTensor(())
    leaf_a = lambda: FakeLeafNode(a)  # fresh view each time
    leaf_b = lambda: FakeLeafNode(b)
    mul = lambda: FakeNode(1, "MulBackward0", [leaf_a, leaf_b])
    add = lambda: FakeNode(2, "AddBackward0", [mul, leaf_a, None])
    return FakeTensor((2, 3), add), a, b


def test_fake_nodes_dedupe_and_labels():
    out, a, b = fake_graph()
    dot = drawing.to_dot(out, names={"a": a})
    assert dot == drawing.to_dot(out, names={"a": a})  # deterministic
    nodes, edges = parse(dot)
    assert len(nodes) == 5  # output, add, mul, 2 leaves
    assert labels(nodes, "lightgrey") == ["AddBackward0", "MulBackward0"]
    assert labels(nodes, "lightblue") == ["()", "a\n(2, 3)"]
    assert labels(nodes, "darkgreen") == ["(2, 3)"]
    assert "shape=oval" in nodes["n0"][1]
    # add->out, mul->add, a->add, a->mul, b->mul
    assert len(edges) == 5 and len(set(edges)) == 5


def test_fake_nodes_draw_fallback(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(drawing.shutil, "which", lambda *a, **k: None)
    out, a, _ = fake_graph()
    pic = drawing.draw(out, names={"a": a}, path=tmp_path / "g.png")
    assert pic.startswith(PNG) and (tmp_path / "g.png").read_bytes() == pic
    assert pic._repr_png_() == bytes(pic)


# ---- real PyTorch graphs ----

def walkthrough(torch):
    x1 = torch.ones(2, 2, requires_grad=True)
    x2 = torch.tensor([1.1], requires_grad=True)
    y = x1 * (x2 + 2)
    z = y.pow(2) * 3
    return z.mean(), x1, x2


def test_torch_walkthrough():
    torch = pytest.importorskip("torch")
    out, x1, x2 = walkthrough(torch)
    nodes, edges = parse(drawing.to_dot(out))
    assert labels(nodes, "lightgrey") == [
        "AddBackward0", "MeanBackward0", "MulBackward0", "MulBackward0", "PowBackward0"]
    assert labels(nodes, "lightblue") == ["(1,)", "(2, 2)"]
    assert labels(nodes, "darkgreen") == ["()"]
    assert len(nodes) == 8
    # mean->out, mul->mean, pow->mul, mul->pow, x1->mul, add->mul, x2->add
    assert len(edges) == 7

    named, _ = parse(drawing.to_dot(out, names={"x1": x1, "x2": x2}))
    assert labels(named, "lightblue") == ["x1\n(2, 2)", "x2\n(1,)"]


def test_torch_leaf_feeding_two_nodes():
    torch = pytest.importorskip("torch")
    x = torch.ones(3, requires_grad=True)
    out = (x * 2 + x.exp()).sum()
    nodes, edges = parse(drawing.to_dot(out))
    assert labels(nodes, "lightblue") == ["(3,)"]  # one leaf, two out-edges
    leaf = next(k for k, (_, attrs) in nodes.items() if "lightblue" in attrs)
    assert sum(u == leaf for u, _ in edges) == 2


def test_torch_deep_chain_is_iterative():
    torch = pytest.importorskip("torch")
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1
    nodes, edges = parse(drawing.to_dot(y))
    assert len(nodes) == 5002 and len(edges) == 5001


def test_torch_draw_fallback(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(drawing.shutil, "which", lambda *a, **k: None)
    out, x1, x2 = walkthrough(torch)
    pic = drawing.draw(out, names={"x1": x1, "x2": x2}, path=tmp_path / "g.png")
    assert pic.startswith(PNG) and (tmp_path / "g.png").read_bytes() == pic


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")
def test_torch_draw_with_dot(tmp_path):
    torch = pytest.importorskip("torch")
    out, x1, _ = walkthrough(torch)
    pic = drawing.draw(out, names={"x1": x1}, path=tmp_path / "g.png")
    assert pic.startswith(PNG) and (tmp_path / "g.png").read_bytes() == pic
    svg = drawing.draw(out, format="svg")
    assert b"<svg" in svg and "MulBackward0" in svg._repr_svg_()
