"""``tg.cuda``: tapegrad runs on the CPU only, so there is no CUDA device to find.

Scripts written for PyTorch ask ``tg.cuda.is_available()`` (False here) and then stay on
the CPU; seeding CUDA does nothing, as in PyTorch without a GPU.
"""


def is_available():
    return False


def device_count():
    return 0


def manual_seed(seed):
    """Does nothing: there is no CUDA generator (PyTorch ignores the call without a GPU)."""


def manual_seed_all(seed):
    """Does nothing, as ``manual_seed``."""
