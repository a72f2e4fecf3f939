"""What the ``DataLoader`` uses, as ``torch.utils.data._utils``: ``collate`` (batching),
``fetch`` (reading samples from a dataset), ``worker`` (``get_worker_info``)."""
from . import collate, fetch, worker

__all__ = ["collate", "fetch", "worker"]
