"""Helpers for the tests of ``tg.nn`` and ``tg.optim`` against PyTorch: the same module or
optimizer built in both libraries from the same start values, and their numbers and
messages compared.

- ``array(t)``: a tapegrad or torch tensor as a NumPy array (detached).
- ``twin_from(module, torch_module)``: copies a tapegrad module's state_dict into the torch
  module of the same structure (its keys must be the same); returns the torch module.
- ``torch_words(msg)``: PyTorch's message in tapegrad's words: "torch" -> "tapegrad"
  where torch names itself (``torch.nn.Parameter``, ``torch.FloatTensor``, ``torch.Size``).
- ``raised(fn)``: (exception type, message) of what ``fn()`` raises, (None, None) if nothing.
- ``same_error(scenario, torch, normalize)``: runs ``scenario(L)`` with L = tapegrad and
  L = torch and asserts the same exception type and message.
"""
import re

import numpy as np

import tapegrad as tg


def array(t):
    return np.asarray(t.detach().numpy())


def torch_words(msg):
    return re.sub(r"\btorch\b", "tapegrad", msg)


def raised(fn):
    try:
        fn()
    except Exception as e:      # noqa: BLE001  the test compares what was raised
        return type(e).__name__, str(e) if not isinstance(e, KeyError) else e.args[0]
    return None, None


def same_error(scenario, torch, normalize=lambda msg: msg):
    """``normalize`` (applied to both messages) sets aside what differs by design, such as
    the module path in a printed class."""
    got = raised(lambda: scenario(tg))
    want = raised(lambda: scenario(torch))
    assert want[0] is not None, "PyTorch raised nothing"
    got = (got[0], got[1] if got[1] is None else normalize(got[1]))
    assert got == (want[0], normalize(torch_words(want[1]))), f"{got} != {want}"


def class_name_only(msg):
    """"<class 'torch.nn.modules.activation.ReLU'>" -> "<class 'ReLU'>"."""
    return re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"<class '\1'>", msg)


def twin_from(module, torch_module):
    import torch
    sd = module.state_dict()
    assert list(sd) == list(torch_module.state_dict()), "different structure"
    torch_module.load_state_dict({k: torch.from_numpy(array(v).copy()) for k, v in sd.items()})
    return torch_module


def close(a, b, tol=1e-10):
    """Tensors (of either library) equal to ``tol`` (absolute and relative)."""
    np.testing.assert_allclose(array(a), array(b), rtol=tol, atol=tol)


def grads_close(params, torch_params, tol=1e-10):
    params, torch_params = list(params), list(torch_params)
    assert len(params) == len(torch_params)
    for p, q in zip(params, torch_params):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            close(p.grad, q.grad, tol)
