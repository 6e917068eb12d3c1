"""How the runners write their output files (figures, --metrics_out's lines, summaries): an
earlier file is replaced only by a whole new one, a device or pipe is written in place, and
a path that is the run's own stdout or stderr (``/dev/stdout`` redirected to a file) is
written through that stream, so the run's printed lines and the file's share it."""

import io
import json
import os
import sys

from experiments.checks import check_writable, own_stream


def write_file(path, data: bytes) -> None:
    """Writes ``data`` to ``path``. A regular file (or a new one) is replaced whole, through
    a temporary file, so that a failed write (a full disk) leaves an earlier file as it was;
    a device or pipe (``/dev/null``, ``/dev/full``) is written in place, never replaced, and
    the run's own stdout or stderr through that stream (``own_stream``). A failure is an
    OSError naming ``path``, which ``run_guarded`` names by its flag."""
    from nnjax import files

    stream = own_stream(path)
    try:
        if stream is not None:
            stream.flush()
            stream.buffer.write(data)
            stream.buffer.flush()
        elif os.path.exists(path) and not os.path.isfile(path):
            with open(path, "wb") as f:
                f.write(data)
        else:  # through a symbolic link, its target is replaced, never the link
            files.write_atomically(path, lambda f: f.write(data))
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), os.fspath(path)) from e


def save_figure(fig, path) -> None:
    """Writes the matplotlib Figure ``fig`` to ``path`` as a PNG, by ``write_file``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    write_file(path, buffer.getvalue())


class JsonLines:
    """An output flag's file of JSON lines (``--metrics_out``, ``--jsonl``, ``--out``), each
    row written through to disk at once (killed before its next row, a run still leaves the
    rows before), starting with ``rows`` (the epochs a resumed run already has). The file is
    replaced only at the first row, so a run that fails before any (a network that diverges
    in its first epoch) leaves an earlier file as it was. With no ``path`` (the flag not
    given, or a process that writes no files) rows go nowhere. A context manager that closes
    the file. Raises UsageError naming --``flag`` if it cannot be written; a failed write (a
    full disk) raises OSError naming the file, which ``run_guarded`` names by its flag."""

    def __init__(self, path, rows=(), flag: str = "metrics_out"):
        self.path, self.file = path or None, None
        if self.path:
            check_writable(flag, self.path)
        for row in rows:
            self.write(row)

    def write(self, row: dict) -> None:
        if self.path is None:
            return
        try:
            if self.file is None:
                self.file = own_stream(self.path) or open(self.path, "w")
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        except OSError as e:
            raise OSError(e.errno, e.strerror or str(e), self.path) from e

    def close(self) -> None:
        try:
            if self.file is not None and self.file not in (sys.stdout, sys.stderr):
                self.file.close()
        except OSError:
            pass  # the write that failed has said so

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_summary(path, summary: dict) -> None:
    """Writes a run's final record, one JSON object, to ``path`` by ``write_file`` (a reader
    finds the whole record or none)."""
    write_file(path, (json.dumps(summary, indent=1) + "\n").encode())
