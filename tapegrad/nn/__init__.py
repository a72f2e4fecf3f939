"""``tg.nn``: the functional basics (``tg.nn.functional``)."""
from . import functional  # noqa: F401
