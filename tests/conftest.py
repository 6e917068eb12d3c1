"""Settings for the test processes, read before any test imports JAX."""

import os

# `-n auto` starts one test process per core, and each starts runners of its own. On a GPU,
# JAX's default of taking 75% of its memory up front would leave the others short of it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
