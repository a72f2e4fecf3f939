"""Hypothesis profiles for tapegrad's property tests (imported by the test modules that use
Hypothesis; not a conftest plugin itself).

- ``ci`` (the default here): a fixed, derandomized set of a few hundred examples over all
  property tests, under a minute in total. The same examples every run, so CI never flakes.
- ``long``: for humans, 20x the examples, fresh random ones each run, failures replayed
  from Hypothesis's example database (``.hypothesis/``).

Choosing a profile:
  TAPEGRAD_HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties.py
  python -m pytest -p tests.conftest_hypothesis --hypothesis-profile=long tests/test_properties.py
(``--hypothesis-profile=long`` alone makes Hypothesis's plugin fail with "Profile 'long' is
not registered": it loads the profile before any test module is imported; ``-p`` imports
this module first, so the profile exists by then.)

Each test asks for a share of the profile's budget with ``budget(n)``: ``n`` examples
under ``ci``, ``LONG_FACTOR * n`` under ``long``.
"""
import os

from hypothesis import HealthCheck, Phase, settings

CI_EXAMPLES = 100            # the per-test base; tests scale it with budget()
LONG_FACTOR = 20

_common = dict(
    deadline=None,           # the first example may compile Numba kernels
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
    print_blob=True,         # a failure prints @reproduce_failure(...)
    # no 'explain' phase: on these graphs it costs a minute per failure and adds little
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None,
                          **_common)
settings.register_profile("long", max_examples=CI_EXAMPLES * LONG_FACTOR, **_common)

_asked = os.environ.get("TAPEGRAD_HYPOTHESIS_PROFILE")
if _asked:
    settings.load_profile(_asked)
elif settings.get_current_profile_name() == "default":
    settings.load_profile("ci")        # no --hypothesis-profile given


def budget(n):
    """Examples for a test that takes ``n`` of the ci profile's per-test base of
    ``CI_EXAMPLES``: scaled to the active profile's max_examples."""
    return max(1, round(n * settings.default.max_examples / CI_EXAMPLES))


def profile_name():
    return settings.get_current_profile_name()
