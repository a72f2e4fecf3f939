"""``get_worker_info``: tapegrad's ``DataLoader`` loads in the main process, where PyTorch's
``get_worker_info()`` returns None; here it always does (a dataset that splits its work by
worker id then yields everything once, as with ``num_workers=0``)."""


def get_worker_info():
    """None: no code runs in a worker process (PyTorch's answer in the main process)."""
    return None
