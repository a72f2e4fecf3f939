"""PyTorch's beginner tutorials for ``nn`` and ``optim``, paraphrased, run with tapegrad in
place of torch: each example is written once against a library ``L`` (``import tapegrad as
torch`` is ``L = tapegrad``) and run in both, from the same data and initial parameters
(PyTorch's draws differ from tapegrad's, so the torch run takes tapegrad's start); the
losses and printed results agree. Loops are shortened.

Sources:
- https://pytorch.org/tutorials/beginner/pytorch_with_examples.html, sections "PyTorch: nn",
  "PyTorch: optim", "PyTorch: Custom nn Modules", "PyTorch: Control Flow + Weight Sharing";
- https://pytorch.org/tutorials/beginner/basics/buildmodel_tutorial.html;
- https://pytorch.org/tutorials/beginner/basics/optimization_tutorial.html.

Changes from the tutorials: ``torch.linspace`` is replaced by NumPy's (not tapegrad's to
provide here), ``argmax(1)`` by ``max(1)[1]``, and no device selection.
"""
import math
import random

import numpy as np
import pytest

import tapegrad as tg

from nn_twins import array

pytestmark = pytest.mark.usefixtures("isolated")

X_POLY = np.linspace(-math.pi, math.pi, 2000)


def same_start(L, model, start):
    """The tapegrad run keeps its initial parameters; the torch run loads them."""
    if start is None:
        return {k: array(v).copy() for k, v in model.state_dict().items()}
    model.load_state_dict({k: L.tensor(v) for k, v in start.items()})
    return start


def polynomial_with_nn(L, start=None, use_optim=False):
    """"PyTorch: nn" (and, with use_optim, "PyTorch: optim"): a third-order polynomial
    fitted to sin(x) by a Linear layer over (x, x^2, x^3)."""
    x = L.tensor(X_POLY, dtype=L.float32)
    y = L.sin(x)
    p = L.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = L.nn.Sequential(L.nn.Linear(3, 1), L.nn.Flatten(0, 1))
    start = same_start(L, model, start)
    loss_fn = L.nn.MSELoss(reduction="sum")
    learning_rate = 1e-3 if use_optim else 1e-6
    optimizer = L.optim.RMSprop(model.parameters(), lr=learning_rate) if use_optim else None
    losses = []
    for t in range(300):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        if t % 100 == 99:
            losses.append(loss.item())
        if use_optim:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            model.zero_grad()
            loss.backward()
            with L.no_grad():
                for param in model.parameters():
                    param -= learning_rate * param.grad
    linear_layer = model[0]
    result = (f"Result: y = {linear_layer.bias.item():.4f} + "
              f"{linear_layer.weight[:, 0].item():.4f} x + "
              f"{linear_layer.weight[:, 1].item():.4f} x^2 + "
              f"{linear_layer.weight[:, 2].item():.4f} x^3")
    return losses, result, start


def polynomial_module(L, start=None):
    """"PyTorch: Custom nn Modules": four 0-d Parameters, SGD."""
    class Polynomial3(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = L.nn.Parameter(L.randn(()))
            self.b = L.nn.Parameter(L.randn(()))
            self.c = L.nn.Parameter(L.randn(()))
            self.d = L.nn.Parameter(L.randn(()))

        def forward(self, x):
            return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3

        def string(self):
            return (f"y = {self.a.item():.4f} + {self.b.item():.4f} x + "
                    f"{self.c.item():.4f} x^2 + {self.d.item():.4f} x^3")

    x = L.tensor(X_POLY, dtype=L.float32)
    y = L.sin(x)
    model = Polynomial3()
    start = same_start(L, model, start)
    criterion = L.nn.MSELoss(reduction="sum")
    optimizer = L.optim.SGD(model.parameters(), lr=1e-6)
    losses = []
    for t in range(300):
        loss = criterion(model(x), y)
        if t % 100 == 99:
            losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses, f"Result: {model.string()}", start


def dynamic_net(L, start=None):
    """"PyTorch: Control Flow + Weight Sharing": a random number of terms, all sharing the
    parameter e; SGD with momentum. Both libraries draw the same numbers of terms."""
    draws = random.Random(0)

    class DynamicNet(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = L.nn.Parameter(L.randn(()))
            self.b = L.nn.Parameter(L.randn(()))
            self.c = L.nn.Parameter(L.randn(()))
            self.d = L.nn.Parameter(L.randn(()))
            self.e = L.nn.Parameter(L.randn(()))

        def forward(self, x):
            y = self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3
            for exp in range(4, draws.randint(4, 6)):
                y = y + self.e * x ** exp
            return y

    x = L.tensor(X_POLY, dtype=L.float32)
    y = L.sin(x)
    model = DynamicNet()
    start = same_start(L, model, start)
    criterion = L.nn.MSELoss(reduction="sum")
    optimizer = L.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
    losses = []
    for t in range(300):
        loss = criterion(model(x), y)
        if t % 100 == 99:
            losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses, None, start


@pytest.mark.parametrize("example", [polynomial_with_nn,
                                     lambda L, start=None: polynomial_with_nn(L, start, True),
                                     polynomial_module, dynamic_net],
                         ids=["nn", "optim", "custom-module", "control-flow"])
def test_pytorch_with_examples(example):
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    losses, result, start = example(tg)
    want, want_result, _ = example(torch, start)
    np.testing.assert_allclose(losses, want, rtol=1e-4)
    assert losses[-1] < losses[0]
    assert result == want_result


def neural_network(L):
    """"Build the Neural Network": Flatten, then a Linear/ReLU stack."""
    class NeuralNetwork(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = L.nn.Flatten()
            self.linear_relu_stack = L.nn.Sequential(
                L.nn.Linear(28 * 28, 512), L.nn.ReLU(),
                L.nn.Linear(512, 512), L.nn.ReLU(),
                L.nn.Linear(512, 10))

        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits

    return NeuralNetwork()


def test_build_the_neural_network():
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    printed = []
    start = None
    for L in (tg, torch):
        model = neural_network(L)
        start = same_start(L, model, start)
        X = L.tensor(images)
        logits = model(X)
        pred_probab = L.nn.Softmax(dim=1)(logits)
        y_pred = pred_probab.max(1)[1]
        lines = [f"Model structure: {model}\n", f"Predicted class: {y_pred.tolist()}"]
        for name, param in model.named_parameters():
            lines.append(f"Layer: {name} | Size: {tuple(param.size())} | "
                         f"Values : {param[:2]} \n")
        printed.append(lines)
        np.testing.assert_allclose(array(pred_probab).sum(1), 1.0, rtol=1e-6)
    assert printed[0] == printed[1]


def test_optimizing_model_parameters():
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    rng = np.random.default_rng(1)
    batches = [(rng.random((64, 28, 28), dtype=np.float32), rng.integers(0, 10, 64))
               for _ in range(4)]
    results, start = [], None
    for L in (tg, torch):
        model = neural_network(L)
        start = same_start(L, model, start)
        loss_fn = L.nn.CrossEntropyLoss()
        optimizer = L.optim.SGD(model.parameters(), lr=1e-1)
        model.train()
        train_losses = []
        for X, y in batches[:3]:                    # train_loop
            pred = model(L.tensor(X))
            loss = loss_fn(pred, L.tensor(y))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            train_losses.append(loss.item())
        model.eval()                                # test_loop
        test_loss, correct = 0.0, 0.0
        with L.no_grad():
            X, y = L.tensor(batches[3][0]), L.tensor(batches[3][1])
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.max(1)[1] == y).type(L.float).sum().item()
        results.append((train_losses, test_loss, correct))
    (mine, mine_test, mine_correct), (theirs, theirs_test, theirs_correct) = results
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    assert mine_test == pytest.approx(theirs_test, rel=1e-5)
    assert mine_correct == theirs_correct
