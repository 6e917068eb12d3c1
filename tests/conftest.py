"""Settings for the test processes, read before any test imports JAX."""
import os

# `-n auto` starts one test process per core, and each starts runners of its own. On a GPU,
# JAX's default of taking 75% of the memory up front would let only the first one start.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
