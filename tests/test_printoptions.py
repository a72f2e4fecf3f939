"""tg.set_printoptions: every option changes repr(tensor) as torch.set_printoptions changes
PyTorch's (the same text, dtypes named tapegrad.X)."""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad import printing

torch = pytest.importorskip("torch")

DEFAULTS = dict(precision=4, threshold=1000, edgeitems=3, linewidth=80, sci_mode=None)


@pytest.fixture(autouse=True)
def _restore_options():
    yield
    tg.set_printoptions(**DEFAULTS)
    torch.set_printoptions(**DEFAULTS)


rng = np.random.default_rng(0)
ARRAYS = {
    "small": np.array([[1.5, -2.25, 3.125], [0.1, 0.02, -7.0]]),
    "whole": np.array([1.0, -2.0, 300.0, 0.0]),
    "wide_range": np.array([1e-5, 1.0, 12345.678, -0.5]),
    "huge": np.array([1e9, 2.5e9]),
    "nonfinite": np.array([np.nan, np.inf, -np.inf, 0.0, 1.25]),
    "zeros": np.zeros(3),
    "long": rng.standard_normal(40),
    "matrix": rng.standard_normal((12, 9)),
    "cube": rng.standard_normal((5, 4, 6)),
    "big": rng.standard_normal((40, 40)),
    "ints": np.arange(-20, 40).reshape(6, 10),
    "bools": np.array([True, False, True, True]),
    "scalar": np.array(3.14159265),
    "empty": np.zeros((0, 3)),
}
OPTIONS = [
    dict(precision=2), dict(precision=8), dict(precision=0),
    dict(sci_mode=True), dict(sci_mode=False), dict(sci_mode=True, precision=2),
    dict(threshold=10), dict(threshold=10, edgeitems=1), dict(threshold=10, edgeitems=0),
    dict(threshold=0, edgeitems=2), dict(edgeitems=5, threshold=20),
    dict(linewidth=40), dict(linewidth=120), dict(linewidth=10),
    dict(profile="short"), dict(profile="full"), dict(profile="default"),
    dict(profile="short", precision=5), dict(profile="full", threshold=30),
]


def _pair(a, dtype, requires_grad=False):
    t = torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=requires_grad)
    m = tg.tensor(a, dtype=getattr(tg, dtype), requires_grad=requires_grad)
    return m, t


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_repr_under_options_matches_pytorch(name, opts):
    a = ARRAYS[name]
    dtypes = ["int64", "int32"] if a.dtype.kind == "i" else ["bool"] if a.dtype.kind == "b" \
        else ["float32", "float64"]
    tg.set_printoptions(**opts)
    torch.set_printoptions(**opts)
    for dtype in dtypes:
        rg = dtype.startswith("float") and name != "empty"
        m, t = _pair(a, dtype, rg)
        assert repr(m) == repr(t).replace("torch.", "tapegrad."), (dtype, rg)
        assert str(m) == str(t).replace("torch.", "tapegrad.")


def test_sci_mode_is_reset_by_every_call_as_pytorchs():
    m, t = _pair(np.array([1.5, 2.5]), "float32")
    for L in (tg, torch):
        L.set_printoptions(sci_mode=True)
        L.set_printoptions(precision=3)         # (sci_mode=None again)
    assert repr(m) == repr(t) == "tensor([1.500, 2.500])"
    tg.set_printoptions(sci_mode=True)
    assert repr(m) == "tensor([1.500e+00, 2.500e+00])"          # (precision stays)


def test_options_persist_and_unknown_profiles_change_nothing():
    tg.set_printoptions(precision=1, linewidth=50)
    tg.set_printoptions(profile="nonsense", sci_mode=None)
    assert printing.get_printoptions() == dict(precision=1, threshold=1000, edgeitems=3,
                                               linewidth=50, sci_mode=None)
    assert repr(tg.tensor([0.25, 1.0 / 3])) == "tensor([0.2, 0.3])"
    tg.set_printoptions(profile="default")
    assert repr(tg.tensor([0.25, 1.0 / 3])) == "tensor([0.2500, 0.3333])"


def test_get_printoptions_and_context_manager_as_torchs():
    from torch import _tensor_str as ts
    tg.set_printoptions(profile="short", sci_mode=False)
    torch.set_printoptions(profile="short", sci_mode=False)
    assert printing.get_printoptions() == ts.get_printoptions()
    with printing.printoptions(precision=6):
        assert repr(tg.tensor([1.0 / 3])) == "tensor([0.333333])"
    assert repr(tg.tensor([1.0 / 3])) == "tensor([0.33])"
    assert printing.get_printoptions()["sci_mode"] is False


def test_module_and_parameter_printing_follow_the_options():
    tg.manual_seed(0)
    lin = tg.nn.Linear(2, 1)
    tg.set_printoptions(precision=2)
    text = repr(lin.weight)
    assert text.startswith("Parameter containing:\ntensor([[")
    values = text.split("[[")[1].split("]]")[0].split(", ")
    assert all(len(v.strip().lstrip("-").split(".")[1]) == 2 for v in values)
