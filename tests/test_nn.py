"""``tg.nn.Module`` and ``tg.nn.Parameter`` against PyTorch: registration, traversal,
state_dict, modes, conversions, printing and errors. Each scenario is written once against
a library ``L`` (tapegrad or torch: the names are the same) and run in both."""
import copy
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn

from nn_twins import array, close, raised, same_error, torch_words, twin_from

pytestmark = pytest.mark.usefixtures("isolated")


def net(L):
    """A small model with every kind of member: parameters, a persistent and a
    non-persistent buffer, a plain tensor attribute, submodules nested two deep, a shared
    submodule and a parameter set to None."""
    class Block(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = L.nn.Linear(3, 4)
            self.scale = L.nn.Parameter(L.ones(4))
            self.register_buffer("count", L.zeros(1, dtype=L.int64))
            self.register_buffer("cache", L.zeros(2), persistent=False)
            self.register_parameter("unused", None)
            self.plain = L.ones(2)            # a plain attribute, not a buffer

        def forward(self, x):
            return self.fc(x).tanh() * self.scale

    class Net(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = L.nn.Sequential(L.nn.ReLU(), L.nn.Linear(4, 2))
            self.shared = self.head            # the same module twice

        def forward(self, x):
            return self.head(self.block(x))

    return Net()


# ----- Parameter ------------------------------------------------------------------------
def test_parameter_prints_as_pytorch():
    torch = pytest.importorskip("torch")
    for data in ([1.0, 2.5], [[1.0], [-2.0]], 3.0):
        p, q = nn.Parameter(tg.tensor(data)), torch.nn.Parameter(torch.tensor(data))
        assert repr(p) == repr(q) and str(p) == str(q)
        assert repr(p).startswith("Parameter containing:\ntensor(")
    p = nn.Parameter(tg.tensor([1.0, 2.0]), requires_grad=False)
    q = torch.nn.Parameter(torch.tensor([1.0, 2.0]), requires_grad=False)
    assert repr(p) == repr(q)


def test_parameter_shares_memory_and_version_with_its_data():
    data = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64)
    p = nn.Parameter(data)
    assert isinstance(p, tg.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and not data.requires_grad
    with tg.no_grad():
        data.mul_(2)
    np.testing.assert_array_equal(array(p), [2.0, 4.0, 6.0])
    with tg.no_grad():
        p.add_(1)
    np.testing.assert_array_equal(array(data), [3.0, 5.0, 7.0])
    assert p._version == data._version == 2


def test_parameter_of_a_computed_tensor_is_a_leaf_and_results_are_tensors():
    torch = pytest.importorskip("torch")
    for L in (tg, torch):
        x = L.ones(2, requires_grad=True)
        p = L.nn.Parameter(x * 2)
        assert p.is_leaf and p.grad_fn is None and p.requires_grad
        assert type(p * 2) is L.Tensor and type(p.detach()) is L.Tensor
        assert tuple(L.nn.Parameter().shape) == (0,)
        (p * p).sum().backward()
        np.testing.assert_array_equal(array(p.grad), [4.0, 4.0])
        assert x.grad is None


def test_parameter_deepcopy_and_pickle_copy_the_values():
    p = nn.Parameter(tg.tensor([1.0, 2.0]), requires_grad=False)
    for q in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert type(q) is nn.Parameter and not q.requires_grad
        np.testing.assert_array_equal(array(q), [1.0, 2.0])
        with tg.no_grad():
            q.add_(1)
        np.testing.assert_array_equal(array(p), [1.0, 2.0])


# ----- registration and traversal ----------------------------------------------------------
def test_members_are_registered_and_named_as_pytorch():
    torch = pytest.importorskip("torch")
    m, t = net(tg), net(torch)
    for method in ("named_parameters", "named_buffers", "named_children", "named_modules"):
        assert [n for n, _ in getattr(m, method)()] == [n for n, _ in getattr(t, method)()]
    assert [n for n, _ in m.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in t.named_parameters(remove_duplicate=False)]
    assert [n for n, _ in m.block.named_parameters(prefix="b", recurse=False)] == \
        [n for n, _ in t.block.named_parameters(prefix="b", recurse=False)]
    assert list(m.state_dict()) == list(t.state_dict())
    assert len(list(m.parameters())) == len(list(t.parameters())) == 5
    assert len(list(m.modules())) == len(list(t.modules()))
    assert len(list(m.children())) == len(list(t.children())) == 2
    assert [type(c).__name__ for c in m.children()] == ["Block", "Sequential"]
    assert "plain" not in dict(m.block.named_buffers()) and m.block.plain is not None
    assert m.block.unused is None and m.get_submodule("head.1") is m.head[1]
    assert m.get_parameter("block.fc.weight") is m.block.fc.weight


def test_assignment_moves_a_name_between_registries():
    m = nn.Module()
    m.x = nn.Linear(2, 2)
    assert "x" in m._modules
    m.x = nn.Parameter(tg.ones(1))
    assert "x" in m._parameters and "x" not in m._modules
    m.x = None
    assert m.x is None and "x" in m._parameters
    del m.x
    assert "x" not in m._parameters and not hasattr(m, "x")
    m.register_buffer("b", tg.ones(2))
    m.b = tg.zeros(3)                       # a tensor assigned to a buffer stays a buffer
    assert tuple(m._buffers["b"].shape) == (3,)
    del m.b
    assert "b" not in m._buffers


def _register_plain_tensor(L):
    L.nn.Module().register_parameter("w", L.ones(2))


def _assign_plain_tensor_to_parameter(L):
    m = L.nn.Linear(2, 2)
    m.weight = L.ones(2, 2)


def _assign_tensor_to_child(L):
    m = L.nn.Sequential(L.nn.ReLU())
    setattr(m, "0", L.ones(1))


def _assign_number_to_buffer(L):
    m = L.nn.Module()
    m.register_buffer("b", L.ones(1))
    m.b = 3


def _register_non_leaf(L):
    L.nn.Module().register_parameter("w", L.nn.Parameter(L.ones(2)) * 2)


def _register_non_leaf_parameter(L):
    p = L.nn.Parameter(L.ones(2))
    q = p * 1
    q.__class__ = L.nn.Parameter
    L.nn.Module().register_parameter("w", q)


class _Early:
    """A module that assigns before calling Module.__init__."""

    def __init__(self, L, what):
        self.L, self.what = L, what

    def __call__(self):
        L, what = self.L, self.what

        class Early(L.nn.Module):
            def __init__(self):
                if what == "parameter":
                    self.w = L.nn.Parameter(L.ones(1))
                elif what == "module":
                    self.m = L.nn.ReLU()
                elif what == "register_parameter":
                    self.register_parameter("w", None)
                else:
                    self.register_buffer("b", None)
                super().__init__()
        Early()


@pytest.mark.parametrize("scenario", [
    _register_plain_tensor,
    _assign_plain_tensor_to_parameter,
    _assign_tensor_to_child,
    _assign_number_to_buffer,
    _register_non_leaf,
    _register_non_leaf_parameter,
    lambda L: L.nn.Module().register_parameter("a.b", None),
    lambda L: L.nn.Module().register_parameter("", None),
    lambda L: L.nn.Module().register_parameter(3, None),
    lambda L: L.nn.Linear(2, 2).register_parameter("training", None),
    lambda L: L.nn.Module().register_buffer("a.b", None),
    lambda L: L.nn.Module().register_buffer("b", 3.0),
    lambda L: L.nn.Linear(2, 2).register_buffer("weight", L.ones(1)),
    lambda L: L.nn.Module().add_module("m", L.ones(1)),
    lambda L: L.nn.Module().add_module("a.b", L.nn.ReLU()),
    lambda L: L.nn.Module().add_module("", L.nn.ReLU()),
    lambda L: L.nn.Module().add_module(1, L.nn.ReLU()),
    lambda L: L.nn.Linear(2, 2).add_module("weight", L.nn.ReLU()),
    lambda L: L.nn.Linear(2, 2).missing,
    lambda L: L.nn.Module()(L.ones(1)),
    lambda L: L.nn.Module(3),
    lambda L: L.nn.Module(x=3),
    lambda L: L.nn.Linear(2, 2).train("yes"),
    lambda L: L.nn.Linear(2, 2).to(L.int64),
    lambda L: L.nn.Sequential(L.nn.ReLU()).get_submodule("0.x"),
    lambda L: L.nn.Sequential(L.nn.Linear(1, 1)).get_parameter("0.in_features"),
    lambda L: _Early(L, "parameter")(),
    lambda L: _Early(L, "module")(),
    lambda L: _Early(L, "register_parameter")(),
    lambda L: _Early(L, "buffer")(),
], ids=lambda f: getattr(f, "__name__", "lambda"))
def test_registration_errors_match_pytorch(scenario):
    torch = pytest.importorskip("torch")
    same_error(scenario, torch)


def test_the_issue_message_for_a_plain_tensor_as_parameter():
    kind, msg = raised(lambda: _register_plain_tensor(tg))
    assert kind == "TypeError" and msg == ("cannot assign 'tapegrad.FloatTensor' object to "
                                           "parameter 'w' (tapegrad.nn.Parameter or None "
                                           "required)")


# ----- state_dict ----------------------------------------------------------------------------
def test_state_dict_shares_memory_and_round_trips():
    torch = pytest.importorskip("torch")
    tg.manual_seed(1)
    a, b = net(tg).double(), net(tg).double()
    sd = a.state_dict()
    assert isinstance(sd, OrderedDict) and sd._metadata[""] == {"version": 1}
    assert list(sd._metadata) == list(net(torch).state_dict()._metadata)
    assert all(not v.requires_grad for v in sd.values())
    assert all(v.requires_grad for v in a.state_dict(keep_vars=True).values()
               if v.is_floating_point() and v.ndim == 2)
    with tg.no_grad():
        sd["block.fc.bias"].add_(1)             # the values are views of the module's
    close(a.block.fc.bias, sd["block.fc.bias"], 0)
    result = b.load_state_dict(sd)
    assert repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(array(p), array(q), err_msg=n)
    x = tg.randn(5, 3, dtype=tg.float64)
    close(a(x), b(x), 0)
    # and into PyTorch: the same outputs from the same state
    t = twin_from(a, net(torch).double())
    close(a(x), t(torch.from_numpy(array(x))))


def _load(L, strict, drop=(), add=(), reshape=None):
    m = net(L)
    sd = m.state_dict()
    for k in drop:
        del sd[k]
    for k in add:
        sd[k] = L.zeros(1)
    if reshape:
        sd[reshape] = L.zeros(7)
    return m.load_state_dict(sd, strict=strict)


@pytest.mark.parametrize("drop, add, reshape", [
    (("block.fc.bias",), (), None),
    ((), ("block.extra", "other.weight"), None),
    (("head.1.weight", "block.count"), ("head.2.bias",), None),
    ((), (), "block.scale"),
    (("block.fc.bias",), ("x",), "head.1.bias"),
])
def test_load_state_dict_keys_as_pytorch(drop, add, reshape):
    torch = pytest.importorskip("torch")
    same_error(lambda L: _load(L, True, drop, add, reshape), torch)
    if reshape is None:                   # strict=False: reported, not raised
        got, want = _load(tg, False, drop, add), _load(torch, False, drop, add)
        assert got.missing_keys == want.missing_keys
        assert got.unexpected_keys == want.unexpected_keys
        assert repr(got) == repr(want)


def test_load_state_dict_message_names_the_keys():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    sd["extra"] = tg.zeros(1)
    del sd["bias"]
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    assert str(e.value) == ('Error(s) in loading state_dict for Linear:\n\tMissing key(s) in '
                            'state_dict: "bias". \n\tUnexpected key(s) in state_dict: "extra". ')
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        m.load_state_dict([1, 2])


# ----- modes, gradients, conversions -------------------------------------------------------
def test_train_eval_and_apply_visit_as_pytorch():
    torch = pytest.importorskip("torch")
    m, t = net(tg), net(torch)
    assert m.eval() is m and not any(x.training for x in m.modules())
    assert m.train() is m and all(x.training for x in m.modules())
    m.head.eval()
    assert m.training and not m.head[0].training and m.block.training
    seen, seen_t = [], []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    t.apply(lambda mod: seen_t.append(type(mod).__name__))
    assert seen == seen_t


def test_zero_grad_and_requires_grad_():
    m = nn.Linear(3, 2)
    m(tg.ones(1, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not array(p.grad).any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.requires_grad_(False) is m and not any(p.requires_grad for p in m.parameters())
    assert m(tg.ones(1, 3)).grad_fn is None


def test_double_float_to_keep_the_parameter_objects():
    torch = pytest.importorskip("torch")
    m = net(tg)
    params = list(m.parameters())
    m(tg.ones(2, 3)).sum().backward()
    assert m.double() is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype is tg.float64 and isinstance(p, nn.Parameter) and p.requires_grad
               for p in m.parameters())
    assert all(p.grad.dtype is tg.float64 for p in m.parameters())
    assert m.block.count.dtype is tg.int64            # integer buffers keep their dtype
    assert m.block.cache.dtype is tg.float64
    assert m.to(tg.float32) is m and m.block.fc.weight.dtype is tg.float32
    assert m.to(tg.zeros(1, dtype=tg.float64)).block.scale.dtype is tg.float64
    assert m.float().head[1].bias.dtype is tg.float32
    assert m.to("cpu") is m and m.to("cpu", tg.float64).block.scale.dtype is tg.float64
    # gradients still flow to the same objects, in the new dtype, as in PyTorch
    m.zero_grad()
    m(tg.ones(2, 3, dtype=tg.float64)).sum().backward()
    t = twin_from(m, net(torch).double())
    t(torch.ones(2, 3, dtype=torch.float64)).sum().backward()
    for p, q in zip(m.parameters(), t.parameters()):
        close(p.grad, q.grad)


def test_deepcopy_of_a_module_is_independent():
    m = net(tg).double()
    c = copy.deepcopy(m)
    x = tg.randn(2, 3, dtype=tg.float64)
    close(m(x), c(x), 0)
    with tg.no_grad():
        c.block.fc.weight.add_(1)
    assert not np.allclose(array(m(x)), array(c(x)))
    assert c.shared is c.head and type(c.block.scale) is nn.Parameter


# ----- printing ---------------------------------------------------------------------------
def _printed(L):
    class WithExtra(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = L.nn.Linear(2, 2, bias=False)

        def extra_repr(self):
            return "alpha=1,\nbeta=2"

    class OneLine(L.nn.Module):
        def extra_repr(self):
            return "k=3"

    return [
        net(L),
        L.nn.Sequential(),
        L.nn.Sequential(OrderedDict([("first", L.nn.Linear(3, 4)), ("act", L.nn.GELU()),
                                     ("drop", L.nn.Dropout(0.25)), ("flat", L.nn.Flatten()),
                                     ("emb", L.nn.Embedding(10, 3, padding_idx=-2))])),
        L.nn.ModuleList([L.nn.Linear(2, 2) for _ in range(3)] + [L.nn.ReLU(), L.nn.ReLU(),
                                                                 L.nn.Tanh()]),
        L.nn.ModuleList(),
        L.nn.ModuleDict({"a": L.nn.Sigmoid(), "b": L.nn.Sequential(L.nn.LeakyReLU(0.2))}),
        L.nn.Sequential(L.nn.ModuleList([L.nn.Identity(7, k=1)] * 2)),
        WithExtra(), OneLine(),
        L.nn.Bilinear(2, 3, 4, bias=False),
        L.nn.Embedding(5, 2, max_norm=1.0, norm_type=1.0),
        L.nn.Softmax(dim=1), L.nn.LogSoftmax(), L.nn.Softplus(2.0, 10.0),
        L.nn.ReLU(inplace=True), L.nn.LeakyReLU(inplace=True), L.nn.GELU("tanh"),
        L.nn.Flatten(0, 2), L.nn.Dropout(inplace=True),
        L.nn.MSELoss(reduction="sum"), L.nn.CrossEntropyLoss(label_smoothing=0.1),
        L.nn.BCEWithLogitsLoss(), L.nn.HuberLoss(delta=2.0),
    ]


def test_modules_print_as_pytorch():
    torch = pytest.importorskip("torch")
    mine, theirs = _printed(tg), _printed(torch)
    for m, t in zip(mine, theirs):
        assert repr(m) == repr(t)
        assert str(m) == str(t)


def test_the_walkthrough_network_prints_its_layers():
    model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1))
    assert repr(model) == ("Sequential(\n"
                           "  (0): Linear(in_features=3, out_features=32, bias=True)\n"
                           "  (1): ReLU()\n"
                           "  (2): Linear(in_features=32, out_features=1, bias=True)\n)")


def test_dir_lists_members():
    m = net(tg)
    names = dir(m.block)
    assert {"fc", "scale", "count", "cache", "forward"} <= set(names)
    assert not any(n[0].isdigit() for n in dir(m.head))


def test_implicit_softmax_dim_warns_as_pytorch():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings(record=True) as mine:
        warnings.simplefilter("always")
        nn.Softmax()(tg.ones(2, 3))
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        torch.nn.Softmax()(torch.ones(2, 3))
    assert [str(w.message) for w in mine] == [str(w.message) for w in theirs]
    assert torch_words(str(theirs[0].message)) == str(mine[0].message)
