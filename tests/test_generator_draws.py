"""``generator=`` (a tg.Generator) in every random draw that takes one: rand, randn,
randint, randperm, Tensor.uniform_/normal_ and nn.init's fills draw from it, not from the
global generator (a generator given and ignored would make a seeded script's numbers
depend on what else drew before)."""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn import init

DRAWS = {
    "rand": lambda g: tg.rand(2, 3, generator=g),
    "randn": lambda g: tg.randn(4, generator=g),
    "randint": lambda g: tg.randint(0, 100, (5,), generator=g),
    "randperm": lambda g: tg.randperm(7, generator=g),
    "uniform_": lambda g: tg.empty(3, 2).uniform_(-2, 2, generator=g),
    "normal_": lambda g: tg.empty(6).normal_(1.0, 3.0, generator=g),
    "init.uniform_": lambda g: init.uniform_(tg.empty(3), generator=g),
    "init.normal_": lambda g: init.normal_(tg.empty(3), generator=g),
    "xavier_uniform_": lambda g: init.xavier_uniform_(tg.empty(4, 3), generator=g),
    "xavier_normal_": lambda g: init.xavier_normal_(tg.empty(4, 3), generator=g),
    "kaiming_uniform_": lambda g: init.kaiming_uniform_(tg.empty(4, 3), generator=g),
    "kaiming_normal_": lambda g: init.kaiming_normal_(tg.empty(4, 3), generator=g),
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_a_generator_gives_the_same_draws_whatever_the_global_state(name):
    draw = DRAWS[name]
    tg.manual_seed(1)
    a = draw(tg.Generator().manual_seed(7)).tolist()
    tg.manual_seed(2)
    tg.rand(10)                                  # the global generator moved on
    b = draw(tg.Generator().manual_seed(7)).tolist()
    assert a == b
    c = draw(tg.Generator().manual_seed(8)).tolist()
    assert c != a
    tg.manual_seed(1)
    assert draw(None).tolist() != a              # not the global generator's numbers


def test_the_global_generator_is_left_alone_by_a_draw_from_another():
    tg.manual_seed(3)
    first = tg.rand(4).tolist()
    tg.manual_seed(3)
    tg.randn(5, generator=tg.Generator().manual_seed(0))
    assert tg.rand(4).tolist() == first


@pytest.mark.parametrize("call", [lambda: tg.randn(2, generator=3),
                                  lambda: tg.empty(2).uniform_(generator=np.random.default_rng())])
def test_anything_else_is_a_type_error(call):
    with pytest.raises(TypeError, match="expected a Generator"):
        call()


def test_manual_seed_returns_the_global_generator_and_takes_pytorchs_seeds():
    g = tg.manual_seed(-1)                      # negative: modulo 2**64, as PyTorch
    assert g is tg.default_generator
    assert tg.initial_seed() == 2 ** 64 - 1
    first = tg.rand(3).tolist()
    tg.manual_seed(2 ** 64 - 1)
    assert tg.rand(3).tolist() == first
    torch = pytest.importorskip("torch")
    for s in (0, 5, -7, 2 ** 63):
        assert tg.manual_seed(s).initial_seed() == torch.manual_seed(s).initial_seed()
    assert tg.manual_seed(7.9).initial_seed() == torch.manual_seed(7.9).initial_seed() == 7
    with pytest.raises(Exception) as ours:
        tg.manual_seed(2 ** 64)
    with pytest.raises(Exception) as theirs:
        torch.manual_seed(2 ** 64)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_seed_picks_a_fresh_seed_that_initial_seed_reports():
    s = tg.seed()
    assert s == tg.initial_seed() and 0 <= s < 2 ** 63
    first = tg.rand(2).tolist()
    tg.manual_seed(s)
    assert tg.rand(2).tolist() == first
    assert tg.seed() != s                       # (a 1 in 2**63 chance of a false failure)


def test_a_fresh_process_starts_from_a_non_deterministic_seed_as_pytorch():
    import subprocess
    import sys
    code = "import tapegrad as tg; print(tg.initial_seed(), tg.rand(1).item())"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}
    assert len(outs) == 2
