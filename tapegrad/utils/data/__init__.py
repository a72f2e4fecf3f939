"""``tg.utils.data``: datasets, samplers and the ``DataLoader``, as ``torch.utils.data``.

The same classes, arguments, defaults, batching (``default_collate`` stacks tapegrad tensors,
makes float64 tensors of Python floats and int64 tensors of ints) and error messages; the
loading runs in the main process (``num_workers`` is accepted, no process is started), and
the shuffled orders come from tapegrad's generators (``tg.manual_seed``, ``tg.Generator``):
reproducible, but not PyTorch's numbers."""
from .dataloader import DataLoader, _DatasetKind, default_collate, default_convert, get_worker_info
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
                      TensorDataset, random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset",
           "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "StackDataset",
           "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
           "_DatasetKind", "default_collate", "default_convert", "get_worker_info",
           "random_split"]
