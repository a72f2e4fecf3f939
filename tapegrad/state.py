"""Per-thread state: whether grad mode is on, and the tape this thread records on.

Kept in a ContextVar holding one plain object per thread: a ContextVar read costs about a
third of a ``threading.local`` attribute read, and every recorded operation reads it.
"""
import contextvars
import sys

from .tape import Tape


class State:
    __slots__ = ("enabled", "tape", "recording")

    def __init__(self):
        self.enabled = True     # grad mode (no_grad turns it off)
        self.tape = Tape()      # where this thread's operations are recorded
        self.recording = None   # the tg.compile Recording being made on this thread, if any


_var = contextvars.ContextVar("tapegrad_state")


def thread_state():
    """This thread's State (made on its first use; a new thread starts with grad mode on)."""
    s = _var.get(None)
    if s is None:
        s = State()
        _var.set(s)
    return s


def refuse_while_recording(what):
    """Inside a ``tg.compile`` recording, an operation that a replay would not repeat (a
    backward, an in-place change, a grad assignment, a random draw ...) raises at once:
    otherwise every later call would silently differ from running the function eagerly."""
    st = _var.get(None)
    if st is not None and st.recording is not None:
        raise RuntimeError(
            f"tg.compile: {what} inside a compiled function is not supported: a replay would "
            "not repeat it, so later calls would silently differ from eager ones. Compile the "
            "part that computes the loss and return the loss; call backward() and update the "
            "parameters outside the compiled function (or call the function without "
            "tg.compile).")


def recording_active():
    """True while this thread records a tg.compile function (then every operation on a
    tensor is recorded, so that a replay recomputes all of it, not only what needs grad)."""
    st = _var.get(None)
    return st is not None and st.recording is not None


def current_tape():
    """The thread's tape. A long one is started over when no tensor refers to it any more,
    or else replaced by a new one: the old tape then lives only as long as its tensors (an
    evaluation loop that never calls backward holds flat memory), and an operation on one
    of them links the new tape to it, so backward still reaches through."""
    st = thread_state()
    tape = st.tape
    if tape.freed is True:
        tape = st.tape = Tape()
    elif len(tape.rec) >= tape.check_at:
        if st.recording is not None:     # a tg.compile recording keeps its one tape
            tape.check_at *= 2
        elif sys.getrefcount(tape) <= 3:   # only st, this frame and the call hold it
            tape.reset()
        else:
            tape = st.tape = Tape()
    return tape
