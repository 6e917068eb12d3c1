"""What the runners share: the error for a bad flag, and checks made before any work."""

import os


class UsageError(Exception):
    """A bad flag value; its message names the flag."""


def check_writable(flag: str, path: str) -> None:
    """Raises UsageError unless ``path`` can be written, without creating or changing it."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"--{flag}={path} is a directory")
    if not os.path.isdir(directory):
        raise UsageError(f"--{flag}={path}: directory {directory} does not exist")
    if not os.access(path if os.path.exists(path) else directory, os.W_OK):
        raise UsageError(f"--{flag}={path} is not writable")


def parse_hidden(text: str) -> list[int]:
    """``"30,30"`` → ``[30, 30]``; raises UsageError naming --hidden if it is not that."""
    sizes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            sizes.append(int(part))
        except ValueError:
            raise UsageError(f"--hidden must be comma-separated integers, got {text!r}") from None
    if any(n <= 0 for n in sizes):
        raise UsageError(f"--hidden sizes must be positive, got {text!r}")
    return sizes
