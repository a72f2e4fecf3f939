"""``tg.utils``: as ``torch.utils``, the data-loading part (``tg.utils.data``)."""
from . import data

__all__ = ["data"]
