"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``is_grad_enabled``
(per thread), and anomaly detection (``set_detect_anomaly``, ``detect_anomaly``)."""
import functools

from .state import _local, thread_state


class _GradMode:
    """Sets grad mode inside a ``with`` block or a decorated function, per thread."""
    mode = True

    def __enter__(self):
        st = _local.state or thread_state()      # (one lookup: a training step's update
        self._prev = st._enabled                   # enters no_grad every step)
        st.enabled = self.mode

    def __exit__(self, *exc):
        (_local.state or thread_state()).enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Operations inside record nothing: ``with tg.no_grad(): w.sub_(lr * w.grad)``."""
    mode = False


class enable_grad(_GradMode):
    mode = True


class set_grad_enabled(_GradMode):
    """``tg.set_grad_enabled(False)`` switches grad mode now, or for a ``with`` block."""

    def __init__(self, mode):
        self._prev = thread_state().enabled
        self.mode = bool(mode)
        thread_state().enabled = self.mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        thread_state().enabled = self._prev
        return False

    def __call__(self, fn):
        thread_state().enabled = self._prev
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled():
    return thread_state().enabled



_anomaly = [False]


def is_anomaly_enabled():
    return _anomaly[0]


class set_detect_anomaly:
    """``tg.autograd.set_detect_anomaly(True)``: record where each op was called, and name
    the node whose backward produced a NaN, with that traceback (slow: for debugging)."""

    def __init__(self, mode, check_nan=True):
        self._prev = _anomaly[0]
        _anomaly[0] = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _anomaly[0] = self._prev
        return False


class detect_anomaly(set_detect_anomaly):
    def __init__(self, check_nan=True):
        super().__init__(True, check_nan)
