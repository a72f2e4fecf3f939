"""A grad_fn's class carries PyTorch's node name, as PyTorch's node classes do:
``type(y.grad_fn).__name__`` is ``SumBackward0`` (graph walkers such as torchviz label
nodes by it), and every node is still a ``tapegrad.graph.Node``."""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad.graph import Node, class_name

GRAPHS = {
    "sum-of-t-of-mul": lambda L, x: (x * 2).t().sum(),
    "mm-relu-mean": lambda L, x: x.mm(x.t()).relu().mean(),
    "index-exp": lambda L, x: x[0].exp(),
    "setitem": lambda L, x: _setitem(x),
    "cat-softmax": lambda L, x: L.cat([x, x]).softmax(1),
    "rsub-pow": lambda L, x: (2.0 - x).pow(2),
}


def _setitem(x):
    y = x * 1.0
    y[0] = 5.0
    return y


def _classes(root):
    """The class names of every node reachable from root, in a fixed walk order."""
    names, todo, seen = [], [root], set()
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(type(node).__name__)
        todo.extend(n for n, _ in getattr(node, "next_functions", ()))
    return names


@pytest.mark.parametrize("name", list(GRAPHS))
def test_node_classes_are_named_as_their_nodes(name):
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = GRAPHS[name](tg, x)
    node = y.grad_fn
    assert isinstance(node, Node)
    assert type(node).__name__ == class_name(node)
    assert type(node) is type(GRAPHS[name](tg, x).grad_fn)       # one class per name


@pytest.mark.parametrize("name", list(GRAPHS))
def test_node_class_names_are_pytorchs(name):
    torch = pytest.importorskip("torch")
    x = np.arange(6.0).reshape(2, 3)
    ours = _classes(GRAPHS[name](tg, tg.tensor(x, requires_grad=True)).grad_fn)
    theirs = _classes(GRAPHS[name](torch, torch.tensor(x, requires_grad=True)).grad_fn)
    assert ours[0] == theirs[0]
    assert ours[-1] == theirs[-1] == "AccumulateGrad"
