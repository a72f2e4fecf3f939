"""``tg.Generator``: a random number generator of its own, as ``torch.Generator``, for the
``generator=`` arguments (``tg.randperm``, ``tg.utils.data``'s samplers, ``random_split``,
``DataLoader``).

It holds a NumPy ``default_rng`` (PCG64) seeded with its seed: the same seed gives the same
draws here every time, but not PyTorch's numbers (PyTorch's generator is a Mersenne Twister).
Without a ``generator=``, draws come from tapegrad's global generator (``tg.manual_seed``)."""
import os

import numpy as np

from .device import CPU, check

DEFAULT_SEED = 67280421310721        # PyTorch's: a new torch.Generator's initial_seed()
_U64 = 1 << 64


def _seed_value(seed):
    """``seed`` as PyTorch takes it: an int in [-2**63, 2**64), a negative one taken modulo
    2**64 (``manual_seed(-1).initial_seed()`` is 2**64 - 1)."""
    if isinstance(seed, np.integer):
        seed = int(seed)
    if not isinstance(seed, int):      # bool is an int, as PyTorch takes it
        raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
    if not -(1 << 63) <= seed < _U64:
        raise ValueError("Overflow when unpacking long long")
    return seed % _U64


class Generator:
    """A random number generator: ``tg.Generator().manual_seed(42)``."""

    def __init__(self, device="cpu"):
        check(device)
        self._initial_seed = DEFAULT_SEED
        self._np = np.random.default_rng(DEFAULT_SEED)

    @property
    def device(self):
        return CPU

    def manual_seed(self, seed):
        """Restarts the generator from ``seed``; returns the generator (as PyTorch's)."""
        self._initial_seed = _seed_value(seed)
        self._np = np.random.default_rng(self._initial_seed)
        return self

    def seed(self):
        """Seeds the generator with a fresh non-deterministic seed, and returns it."""
        seed = int.from_bytes(os.urandom(8), "little") >> 1     # < 2**63, as PyTorch's
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        """The seed the generator was last started from."""
        return self._initial_seed
