"""Record once, run many: ``tg.compile(fn)`` replays a recorded tape at new inputs.

The first call for a signature (shapes, dtypes, which inputs require grad, Python
arguments) runs ``fn`` eagerly on a private tape that keeps every value and records every
operation on tensors (``state.recording_active``). That tape becomes a ``Program``
(``replay_program``): its values laid out in one arena, its tables pointing there. Later
calls allocate an arena, write the inputs into it (arguments and the tensors ``fn`` reads
from outside, read again at every call), recompute every record with one jitted forward
sweep, check the recording's guards, and hand out tensors whose ``backward()`` runs the
reverse sweep over that arena (``replay_tape``). Each call has its own arena, so a tensor
from an earlier call keeps its values and its graph.

Guards: when ``fn`` turns a tensor into a Python value while recording (``item()``,
``bool()``, ``float()``, ``int()``, ``tolist()``, ``numpy()``, a tensor used as an index,
max(dim)'s indices), the recording keeps the value; a replay that computes another value
records again instead of returning the result of a path the new values would not take
(CppAD's ``compare_change``, ADOL-C's retaping).
"""
import collections
import functools
import itertools
import warnings
from operator import attrgetter, is_

from . import numpy_loops
from .base import TensorBase as Tensor
from .face import _shape
from .replay_calls import _EAGER, _MISS
from .replay_recording import Recording
from .state import thread_state

_float = float
_probe = attrgetter("_node", "_tape", "_rg")
_TENSOR = itertools.repeat(Tensor)


def _states(args):
    """Per argument: a tensor's (node, tape, requires_grad), another object itself. With
    tensors only (a loss of 50,000 leaves), maps of builtins: no Python per argument."""
    if all(map(isinstance, args, _TENSOR)):
        return list(map(_probe, args))
    return [_probe(a) if isinstance(a, Tensor) else a for a in args]


_warned = []


def _warn_eager(reason):
    """Once a process: tg.compile cannot replay here, so it runs functions eagerly."""
    if not _warned:
        _warned.append(reason)
        warnings.warn(f"{reason}: tg.compile runs functions eagerly (same results, without "
                      "the speed of a replay)", RuntimeWarning, stacklevel=4)


# ----- tg.compile ------------------------------------------------------------------------
class Compiled:
    """``tg.compile(fn)``: call it as fn; see the module docstring."""

    def __init__(self, fn, cache_size=8):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.cache_size = cache_size
        self.recordings = collections.OrderedDict()
        self.counts = collections.Counter()
        self._fast = None       # the recording whose calls may take Recording.fast
        self.fast_replays = 0
        self._last = None       # (args, kwargs, key) of the last call: identity shortcut

    def __call__(self, *args, **kwargs):
        rec = self._fast
        if rec is not None and not kwargs:
            out = rec.fast(args)
            if out is not None:
                self.fast_replays += 1
                return out
        st = thread_state()
        if not st.enabled or st.recording is not None:
            self.counts["eager"] += 1
            return self.fn(*args, **kwargs)     # nothing to replay: run it as it is
        last = self._last
        # the same tensors as the last call, in the same state: the step kernel checks it
        # (Calls.replay_checked: no Python per argument)
        if last is not None and last[4] is not None and not kwargs and \
                len(args) == len(last[0]):
            rec = last[3]
            if rec.confirmed and not rec.eager_only and rec.valid():
                out = rec.replay_checked(args, last[4])
                if out is not _MISS:
                    return self._replayed(out, args, kwargs, last[1], last[2], rec, last)
        # the same tensors as the last call, in the same state: the same recording
        state = _states(args)
        if last is not None and not kwargs and len(args) == len(last[0]) \
                and all(map(is_, args, last[0])) and state == last[1]:
            key, rec = last[2], last[3]
        else:
            key = _signature(args, kwargs)
            if key is None:
                self.counts["eager"] += 1
                return self.fn(*args, **kwargs)
            rec = self.recordings.get(key)
            if rec is not None:
                self.recordings.move_to_end(key)
        if rec is not None and rec.confirmed and rec.valid():
            if rec.eager_only:          # a branch on a value after a change: never replayed
                self.counts["eager"] += 1
                return self.fn(*args, **kwargs)
            return self._replayed(rec.replay(args), args, kwargs, state, key, rec, None)
        return self._record(args, kwargs, state, key, rec)

    def _replayed(self, out, args, kwargs, state, key, rec, last):
        """After a replay (``last``: the _last it was checked against, None when it was
        checked in Python): its outputs, or fn run eagerly, or a recording made anew."""
        if out is _EAGER:               # leaf hooks: the engine must run them
            self.counts["eager"] += 1
            return self.fn(*args, **kwargs)
        if out is None:                 # a guard failed
            self.counts["guard_failures"] += 1
            return self._record(args, kwargs, state, _signature(args, kwargs), rec)
        self.counts["replays"] += 1
        b = rec.binding
        if last is None:
            self._last = (args, state, key, rec, rec.check_table(args, state)) \
                if not kwargs else None
        if rec.shared and not kwargs and b is not None and \
                ((last is not None and last[4][1][0] is b) or
                 all(map(is_, b.ins, [args[i] for i in rec.arg_in] + rec.cap_in))):
            b.fast = (args, rec.fast_table(b, args))
            self._fast = rec
        else:
            self._fast = None
        return out

    def _record(self, args, kwargs, state, key, rec):
        """A new recording of fn at these arguments (rec: the one for this key, if any)."""
        if numpy_loops.UNAVAILABLE is not None:     # a replay could not be eager's to the bit
            _warn_eager(numpy_loops.UNAVAILABLE)
            self.counts["eager"] += 1
            return self.fn(*args, **kwargs)
        self._fast = None
        new = Recording()
        result = new.record(self.fn, args, kwargs)
        if new.step and not new.escaped and rec is not None and rec.step and \
                not rec.escaped and rec.fingerprint() == new.fingerprint():
            new.confirmed = True        # two calls recorded the same program
        rec = new
        self.counts["recordings"] += 1
        self.recordings[key] = rec
        self.recordings.move_to_end(key)
        while len(self.recordings) > self.cache_size:
            self.recordings.popitem(last=False)
        self._last = (args, state, key, rec, rec.check_table(args, state)
                      if rec.binding is not None else None) if not kwargs else None
        return result

    def stats(self):
        """Recordings made, replays, guard failures, and per kept recording its records,
        guards and bytes (records, metadata and the values of one call)."""
        kept = []
        for rec in self.recordings.values():
            P = rec.program
            kept.append({"records": P.nrec, "guards": len(rec.guards),
                         "inputs": len(rec.arg_in), "captured": len(rec.cap_in),
                         "bytes": P.rec.nbytes + P.static.nbytes + P.dyn.nbytes
                         + P.dtype.itemsize * P.arena_size})
        return {"recordings": self.counts["recordings"],
                "replays": self.counts["replays"] + self.fast_replays,
                "guard_failures": self.counts["guard_failures"],
                "eager_calls": self.counts["eager"], "kept": kept}

    def listing(self, index=-1):
        """The tape of a kept recording (the latest by default), one record a line."""
        return list(self.recordings.values())[index].listing()


def _signature(args, kwargs):
    """What a recording is specific to; None when an argument cannot be keyed."""
    parts = []
    try:
        for a in list(args) + sorted(kwargs.items()):
            if isinstance(a, Tensor):
                parts.append(("T", _shape(a), a._dtype.name, a._rg, a._tape is None,
                              type(a._v) is _float))
            else:
                hash(a)
                parts.append(("V", type(a).__name__, a))
    except TypeError:
        return None
    return tuple(parts)


def compile(fn=None, *, cache_size=8):  # noqa: A001 (the name users expect, like torch)
    """Record ``fn`` once per signature and replay it at new inputs (see tapegrad.replay)."""
    if fn is None:
        return lambda f: Compiled(f, cache_size)
    return Compiled(fn, cache_size)
