"""Samplers, as ``torch.utils.data.sampler``: what order a ``DataLoader`` reads a map-style
dataset in. ``SequentialSampler`` (0, 1, ...), ``RandomSampler`` (a fresh permutation each
pass, or draws with replacement), ``SubsetRandomSampler``, ``WeightedRandomSampler`` (draws
in proportion to weights), and ``BatchSampler`` (lists of ``batch_size`` indices).

The draws come from the ``generator=`` given (a ``tg.Generator``) or, without one, from
tapegrad's global generator (``tg.manual_seed``): the same seed gives the same order, but
not PyTorch's order."""
import itertools
from typing import Generic, TypeVar

import numpy as np

from ...dtypes import float64
from ...factory import _rng_of, as_tensor, randperm
from ...generator import Generator

_T_co = TypeVar("_T_co", covariant=True)


class Sampler(Generic[_T_co]):
    """Base class: subclasses define ``__iter__`` (indices, or lists of indices) and, for
    ``len(loader)``, ``__len__`` (no default, as PyTorch's)."""

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A random permutation of the indices (for ``num_samples`` > len, several permutations
    one after the other), or with ``replacement=True``, ``num_samples`` independent uniform
    draws. Without a ``generator``, each pass seeds a generator of its own from the global
    one, as PyTorch's."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError("replacement should be a boolean value, but got "
                            f"replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        # the dataset's size may change between passes
        if self._num_samples is None:
            return len(self.data_source)
        return self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.generator is None:
            seed = int(_rng_of(None, "random_").integers(1 << 63))
            generator = Generator().manual_seed(seed)
        else:
            generator = self.generator
        if self.replacement:
            rng = _rng_of(generator, "randint")
            for _ in range(self.num_samples // 32):
                yield from rng.integers(0, n, 32).tolist()
            yield from rng.integers(0, n, self.num_samples % 32).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from randperm(n, generator=generator).tolist()
            yield from randperm(n, generator=generator).tolist()[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices, in a random order (a new one each pass)."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


def _multinomial(weights, num_samples, replacement, rng):
    """``torch.multinomial`` of a 1-D float64 array of weights, with its checks in its order
    and words: with replacement (and more than one sample), independent draws (inverse CDF);
    otherwise the ``num_samples`` largest of weight / Exp(1) (PyTorch's algorithm: successive
    draws, each in proportion to the weights left; zero weights come last)."""
    n = weights.shape[0]
    if not replacement and num_samples > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    by_keys = not replacement or num_samples == 1
    if by_keys:
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
            raise RuntimeError("probability tensor contains either `inf`, `nan` or "
                               "element < 0")
    else:
        for w in weights[~(np.isfinite(weights) & (weights >= 0))][:1]:
            if not w >= 0:                     # NaN too, as PyTorch's loop finds it
                raise RuntimeError("invalid multinomial distribution (encountering "
                                   "probability entry < 0)")
            raise RuntimeError("invalid multinomial distribution (encountering probability "
                               "entry = infinity or NaN)")
    if not weights.sum() > 0:
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if by_keys:
        with np.errstate(divide="ignore"):
            keys = weights / rng.exponential(size=n)
        return np.argsort(-keys, kind="stable")[:num_samples]
    cdf = np.cumsum(weights)
    u = rng.random(num_samples) * cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), n - 1)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices into ``weights``, each drawn with probability weight / sum
    (with ``replacement=False``, an index is drawn at most once)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or \
                num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError("replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        weights_tensor = as_tensor(weights, dtype=float64)
        if len(weights_tensor.shape) != 1:
            raise ValueError("weights should be a 1d sequence but given "
                             f"weights have shape {tuple(weights_tensor.shape)}")
        self.weights = weights_tensor
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        drawn = _multinomial(self.weights.detach().numpy(), self.num_samples, self.replacement,
                             _rng_of(self.generator, "multinomial"))
        yield from drawn.tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """The indices of ``sampler`` in lists of ``batch_size`` (the last one shorter, or
    dropped with ``drop_last=True``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError("batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError("drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        sampler_iter = iter(self.sampler)
        if self.drop_last:
            for batch in zip(*[sampler_iter] * self.batch_size):
                yield [*batch]
        else:
            batch = [*itertools.islice(sampler_iter, self.batch_size)]
            while batch:
                yield batch
                batch = [*itertools.islice(sampler_iter, self.batch_size)]

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
