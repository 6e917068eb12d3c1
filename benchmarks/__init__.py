"""The benchmarks (``python -m benchmarks.<name>``)."""

import experiments  # noqa: F401  (Ctrl-C while a benchmark starts ends it, as a runner)
