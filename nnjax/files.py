"""Writing nnjax's files safely: every file (a network, a checkpoint, a summary, a figure,
the data cache) is written to a temporary name beside it and renamed over the old one, so a
process killed at any moment leaves either the old file or the new one, never half of one;
the temporary files such a process left are removed at the next write of the same file."""

import errno
import os
import pathlib
import shutil
import tempfile
import time
import zipfile

import numpy as np

# A temporary file or directory untouched for this long belongs to a dead process.
STALE_SECONDS = 600


def write_atomically(path, write) -> None:
    """Calls ``write(f)`` on a new binary file that then replaces ``path`` whole: a reader
    finds the old file or the new one, never half of one. Raises OSError, before writing
    anything, if ``path`` exists and is not a regular file (a device, a pipe, a directory):
    replacing it would destroy it, not write to it. Through a symbolic link, its target is
    replaced, never the link (``/dev/stderr`` itself, when stderr goes to a file). What
    ``write`` raises is raised, with ``path`` as it was."""
    given, path = os.fspath(path), pathlib.Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "not a regular file (a device, a pipe or a directory)", given)
    prefix = f".{path.name}."
    clean_stale(path.parent, prefix, ".tmp")
    mask = os.umask(0)
    os.umask(mask)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would make every file private
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # name the file being written, not its temporary name
        raise OSError(e.errno, e.strerror or str(e), given) from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def clean_stale(directory, prefix: str, suffix: str = "") -> None:
    """Removes the files and directories in ``directory`` named ``prefix…suffix`` that no
    process has touched for ``STALE_SECONDS`` (what a killed one left); one in use is left
    alone, and one that cannot be removed is never a reason to fail."""
    try:
        entries = list(pathlib.Path(directory).iterdir())
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
            continue
        try:
            if now - _newest_mtime(entry) < STALE_SECONDS:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            pass  # gone already, or not ours to remove


def _newest_mtime(path: pathlib.Path) -> float:
    times = [path.lstat().st_mtime]
    if path.is_dir() and not path.is_symlink():
        times += [p.lstat().st_mtime for p in path.rglob("*")]
    return max(times)


def open_npz(path):
    """``np.load(path)`` for an ``.npz`` file; ValueError if ``path`` is a file of another
    kind (a damaged or truncated one), which np.load would try as a pickle and refuse with
    advice to unpickle it."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError("it is not an .npz file (damaged, or not written by nnjax)")
    return np.load(path)
