"""Property tests at every edge: random chat bodies and validly signed random webhooks, posted over HTTP.

`make test` runs FUZZ_EXAMPLES inputs per edge: 1,000 by default, 5 to 30 s an edge on two cores (the Slack ones
dearest: each answered event is a turn, a profile lookup and a post), and `.ci/run` runs `make test` on both
databases, so CI tries 2,000. `make fuzz` runs 20,000 (MADOGUCHI_FUZZ_EXAMPLES=20000). Hypothesis keeps no
example database, so every run is fresh, and its deadline is off: a slow answer is the benchmarks' business, a
5xx or an unfinished event is ours.
"""

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("MADOGUCHI_FUZZ_EXAMPLES", "1000"))

settings.register_profile(
    "madoguchi-fuzz", max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture,
                           HealthCheck.filter_too_much])
FUZZ = settings.get_profile("madoguchi-fuzz")  # use as @FUZZ on each property test
