"""Per-thread state: whether grad mode is on, and the tape this thread records on.

The thread's current tape is held weakly: a tape belongs to the tensors recorded on it
(each result holds its tape), so a graph nobody refers to any more is freed with its last
tensor, as PyTorch frees a graph with its outputs; the next operation starts a new tape.

``tape.live`` is True exactly while a tape is its thread's current tape with grad mode on
and no other thread uses tapegrad: then an operation on a result of that tape records on
it without looking up any per-thread state (the scalar fast path). When the other threads
have ended (their States are gone), the thread left gets it back at its next new tape or
grad-mode switch.
"""
import threading
import weakref

from .tape import Tape


class State:
    __slots__ = ("_enabled", "_tape", "recording", "__weakref__")

    def __init__(self):
        self._enabled = True    # grad mode (no_grad turns it off)
        self._tape = None       # weak reference to the tape this thread records on
        self.recording = None   # the tg.compile Recording being made on this thread, if any

    @property
    def enabled(self):
        return self._enabled

    @enabled.setter
    def enabled(self, on):
        self._enabled = on = bool(on)
        if _rearm[0]:
            _single_again(self)
        t = self._tape() if self._tape is not None else None
        if t is not None:
            t.live = on and _single[0] is self

    @property
    def tape(self):
        """The tape new records go to (a new one when the last one is gone or full)."""
        t = self._tape() if self._tape is not None else None
        if t is None or t.freed is not None:
            t = Tape()
            self.tape = t
        return t

    @tape.setter
    def tape(self, t):
        old = self._tape() if self._tape is not None else None
        if old is not None and old is not t:
            old.live = False
        self._tape = None if t is None else weakref.ref(t)
        if _rearm[0]:
            _single_again(self)
        if t is not None:
            t.live = self._enabled and _single[0] is self


class _PerThread(threading.local):
    """This thread's State, per thread and not per context: a context copied into another
    thread (asyncio.to_thread, a web framework's thread pool) would otherwise share it, and
    both threads would record on one tape and switch each other's grad mode."""
    state = None


_local = _PerThread()
_single = [None]      # the State of the one thread using tapegrad; False while there are two
_states = set()       # weak references to the live States (a thread's dies with it)
_rearm = [False]      # the live States went down to one: the fast path may come back
_lock = threading.Lock()


def _gone(ref):
    """A State died (its thread ended). No lock here: a garbage collection may run this
    inside thread_state's locked part, on any thread."""
    _states.discard(ref)
    if len(_states) == 1:
        _rearm[0] = True


def _single_again(st):
    """The other threads' States are gone: st's thread, the one left, gets the fast path
    back. Called by st's own thread (the setters), so its tape's live flag is set there."""
    with _lock:
        _rearm[0] = False
        if _single[0] is False and len(_states) == 1 and next(iter(_states))() is st:
            _single[0] = st


def thread_state():
    """This thread's State (made on its first use; a new thread starts with grad mode on)."""
    s = _local.state
    if s is None:
        s = State()
        _local.state = s
        with _lock:
            _states.add(weakref.ref(s, _gone))
            if _single[0] is None:
                _single[0] = s
            elif _single[0] is not False:           # a second thread: no more fast path
                first = _single[0]
                _single[0] = False
                t = first._tape() if first._tape is not None else None
                if t is not None:
                    t.live = False
    return s


def refuse_while_recording(what):
    """Inside a ``tg.compile`` recording, an operation that a replay would not repeat (a
    backward, an in-place change, a grad assignment, a random draw ...) raises at once:
    otherwise every later call would silently differ from running the function eagerly."""
    st = _local.state
    if st is not None and st.recording is not None:
        raise RuntimeError(
            f"tg.compile: {what} inside a compiled function is not supported: a replay would "
            "not repeat it, so later calls would silently differ from eager ones. Compile the "
            "part that computes the loss and return the loss; call backward() and update the "
            "parameters outside the compiled function (or call the function without "
            "tg.compile).")


def recording():
    """The tg.compile Recording being made on this thread, or None."""
    st = _local.state
    return None if st is None else st.recording


def recording_active():
    """True while this thread records a tg.compile function (then every operation on a
    tensor is recorded, so that a replay recomputes all of it, not only what needs grad)."""
    st = _local.state
    return st is not None and st.recording is not None


def current_tape(a=None, b=None):
    """The thread's tape for a new record with operands a, b: a new one when the last one
    was freed, died, or holds more than ``Tape.LIMIT`` bytes of records and saved values
    and no operand is a result on it (a new graph starts there, so no link ties the new
    tape to the old: an evaluation loop without no_grad, or graphs kept but never
    backwarded, hold bounded memory; the old tape lives on while its tensors do)."""
    st = _local.state or thread_state()
    t = st.tape
    if t.nbytes + len(t.rec) > Tape.LIMIT and st.recording is None and \
            getattr(a, "_tape", None) is not t and getattr(b, "_tape", None) is not t:
        t = Tape()
        st.tape = t
    return t
