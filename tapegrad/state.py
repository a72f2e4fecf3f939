"""Per-thread state: whether grad mode is on, and the tape this thread records on."""
import sys
import threading

from .tape import Tape


class _State(threading.local):
    def __init__(self):
        self.enabled = True     # grad mode (no_grad turns it off)
        self.tape = Tape()      # where this thread's operations are recorded


state = _State()


def current_tape():
    """The thread's tape, started over when no tensor refers to it any more."""
    tape = state.tape
    if tape.freed is True:
        tape = state.tape = Tape()
    elif len(tape.rec) >= tape.check_at:
        if sys.getrefcount(tape) <= 3:   # only state, this frame and the call hold it
            tape.reset()
        else:
            tape.check_at *= 2
    return tape
