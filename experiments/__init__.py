"""The runners (``python -m experiments.<name>``) and what they share."""

import signal
import sys

if sys.argv[:1] == ["-m"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    # Being found by `python -m experiments.<runner>`, before the runner imports JAX: Ctrl-C
    # ends it at once, as it does other tools. Python's KeyboardInterrupt can land in a
    # garbage-collection callback of JAX's, which swallows it, and the run went on.
    # cli.run_guarded takes Ctrl-C over while the run runs.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
