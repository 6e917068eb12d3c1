"""Damaged checkpoints and failed writes: one line naming the file and how to start over,
the target (not a temporary name) in a write error, and no temporary files left behind."""

import errno
import json
import os
import pathlib
import stat
import time

import numpy as np
import pytest

from nnjax import checkpoint, files, saving
from nnjax.history import EpochResult, History
from tests.helpers import assert_failed_with_one_error, assert_one_line, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]
PARAMS = {
    "weights": [np.arange(12, dtype=np.float32).reshape(3, 4)],
    "biases": [np.ones(3, np.float32)],
}


def flip_bytes(path: pathlib.Path) -> None:
    """Inverts 64 bytes in the middle of the file, as bit rot or a bad copy would."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def write_run(directory):
    """A one-network run's checkpoint in ``directory`` (``checkpoint.Run``); its path."""
    run = History(PARAMS, epochs=[EpochResult(0, 5, 10, 0.1, 3.0)])
    checkpoint.Run(directory, {"eta": 3.0}).save([run], "cpu")
    return directory / "checkpoint.npz"


def read_run(path):
    checkpoint.Run(path.parent, {"eta": 3.0}).resume([History(PARAMS)], "cpu")


def writer(write):
    """``write(path)`` as a writer into a directory, returning the path it wrote."""

    def into(directory):
        write(directory / "run.npz")
        return directory / "run.npz"

    return into


WRITERS = {
    "checkpoint": (write_run, read_run),
    "layers": (
        writer(lambda p: saving.save_layers(p, [[{"w": PARAMS["weights"][0]}]], {"layers": "x"})),
        saving.load_layers,
    ),
    "tree": (
        writer(lambda p: checkpoint.write_tree(p, PARAMS, {"epochs": []})),
        lambda p: checkpoint.read_tree(p, PARAMS),
    ),
    "meta": (
        writer(lambda p: checkpoint.write_tree(p, PARAMS, {"epochs": []})),
        checkpoint.read_meta,
    ),
}


# read_meta reads the metadata alone: bytes flipped in an array it does not read go unseen.
DAMAGES = [
    (kind, damage)
    for kind in sorted(WRITERS)
    for damage in (flip_bytes, truncate)
    if (kind, damage) != ("meta", flip_bytes)
]


@pytest.mark.parametrize("kind, damage", DAMAGES, ids=[f"{k}-{d.__name__}" for k, d in DAMAGES])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, kind, damage):
    write, read = WRITERS[kind]
    path = write(tmp_path)
    read(path)  # intact, it reads
    damage(path)
    with pytest.raises(checkpoint.CheckpointError) as e:
        read(path)
    msg = assert_one_line(e)
    advice = "experiments.conv --save" if kind == "layers" else "delete it to start over"
    assert str(path) in msg and advice in msg


def test_a_file_that_is_not_networks_is_named_without_advice_to_delete_it(tmp_path):
    """experiments.vote reads networks files a user names: a checkpoint or a directory
    named there by mistake is said to be no networks, not to be deleted."""
    path = write_run(tmp_path)
    for wrong in (path, tmp_path):
        with pytest.raises(checkpoint.CheckpointError) as e:
            saving.load_layers(wrong)
        msg = assert_one_line(e)
        assert str(wrong) in msg and "saved by experiments.conv --save?" in msg
        assert "delete" not in msg
    assert "it holds no networks" in str(
        pytest.raises(checkpoint.CheckpointError, saving.load_layers, path).value
    )


def test_a_damaged_checkpoint_stops_the_runner_with_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    path = run / "checkpoint.npz"
    checkpoint.write_tree(path, [(PARAMS, None, PARAMS)], {"settings": {}, "epochs": [[]]})
    truncate(path)
    result = run_module("experiments.mnist", f"--checkpoint_dir={run}", "--epochs=1", timeout=120)
    assert_failed_with_one_error(result, str(path))
    assert "delete it to start over" in result.stderr


def test_a_failed_write_names_the_target_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "net.npz"
    target.write_bytes(b"the earlier network")

    def disk_full(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as e:
        files.write_atomically(target, disk_full)
    assert e.value.filename == str(target) and e.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == ["net.npz"]
    assert target.read_bytes() == b"the earlier network"


def test_a_pipe_or_a_directory_is_never_replaced_by_a_write(tmp_path):
    """Called directly from Python (no runner's checks), a write to a FIFO or a directory
    (what a device node is to the check: not a regular file) is refused before anything is
    written, and the FIFO or directory stays as it was."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    for target in (fifo, tmp_path / "dir"):
        with pytest.raises(OSError, match="not a regular file") as e:
            files.write_atomically(target, lambda f: f.write(b"x"))
        assert e.value.filename == str(target)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and (tmp_path / "dir").is_dir()
    assert sorted(os.listdir(tmp_path)) == ["dir", "pipe"]  # no temporary file left


def test_a_write_through_a_link_replaces_its_target_never_the_link(tmp_path):
    """As /dev/stderr is a link to the file stderr goes to: replacing the link would make
    it a file for every later process."""
    (tmp_path / "real.json").write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    files.write_atomically(link, lambda f: f.write(b"new"))
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert (tmp_path / "real.json").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_temporary_files_a_killed_checkpoint_left_are_removed_at_the_next_start(tmp_path):
    old = time.time() - files.STALE_SECONDS - 60
    stale = tmp_path / ".checkpoint.npz.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    os.utime(stale, (old, old))
    live = tmp_path / ".checkpoint.npz.writing.tmp"  # another process, writing now
    live.write_bytes(b"")
    checkpoint.Run(tmp_path, {}).save([History(PARAMS)], "cpu")
    assert sorted(os.listdir(tmp_path)) == [".checkpoint.npz.writing.tmp", "checkpoint.npz"]


def test_every_write_removes_what_a_killed_write_of_its_file_left(tmp_path):
    """A summary, a figure or predictions as much as a checkpoint: another file's temporary
    files are left alone."""
    from experiments.writing import write_summary

    old = time.time() - files.STALE_SECONDS - 60
    for name in (".s.json.k1ll3d.tmp", ".t.json.k1ll3d.tmp"):
        (tmp_path / name).write_bytes(b"half a file")
        os.utime(tmp_path / name, (old, old))
    write_summary(tmp_path / "s.json", {"accuracy": 0.5})
    assert sorted(os.listdir(tmp_path)) == [".t.json.k1ll3d.tmp", "s.json"]


def test_a_checkpoint_of_the_older_format_is_one_line_saying_so(tmp_path):
    """Before one checkpoint format served every runner, experiments.mnist wrote its own:
    the same meta keys, one network's epochs unnested and other array names."""
    run = tmp_path / "run"
    run.mkdir()
    meta = {"epochs": [{"epoch": 0, "correct": 9000}], "settings": {"eta": 3.0}}
    np.savez(run / "checkpoint.npz", meta=np.array(json.dumps(meta)), w0=PARAMS["weights"][0])
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.Run(run, {"eta": 3.0}).resume([History(PARAMS)], "cpu")
    msg = assert_one_line(e)
    assert "written by an older one" in msg and "delete it to start over" in msg


def rewrite(path, meta=None, **arrays) -> None:
    """Rewrites the checkpoint ``path`` whole, with ``meta`` and arrays replaced."""
    with np.load(path) as archive:
        old = {k: archive[k] for k in archive.files}
    old.update(arrays)
    if meta is not None:
        old["meta"] = np.array(json.dumps(meta))
    np.savez(path, **old)


def meta_with(path, **fields) -> dict:
    return {**checkpoint.read_meta(path), **fields}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: rewrite(p, a0=np.zeros((3, 3), np.float32)), "float32 (3, 3), where"),
        (lambda p: rewrite(p, a0=np.zeros((3, 4), np.int8)), "int8 (3, 4), where this run"),
        (lambda p: rewrite(p, meta_with(p, epochs=[[{"epoch": 0}]])), "missing"),
        (lambda p: rewrite(p, meta_with(p, epochs=[[], []])), "holds a run of 2 networks, not 1"),
        (lambda p: rewrite(p, meta_with(p, devices=5)), "devices are not a list"),
    ],
    ids=["shape", "dtype", "epoch-fields", "networks", "devices"],
)
def test_a_checkpoint_with_foreign_contents_is_one_line_naming_it(tmp_path, change, message):
    """A readable checkpoint whose arrays or epochs do not fit this run (edited, or written
    by other code): refused before any of it is used, not a traceback in training."""
    path = write_run(tmp_path)
    change(path)
    with pytest.raises(checkpoint.CheckpointError) as e:
        read_run(path)
    msg = assert_one_line(e)
    assert str(path) in msg and message in msg, msg


def test_an_npz_that_is_no_checkpoint_says_what_it_lacks(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.read_meta(path)
    assert f"cannot read the checkpoint {path} (it holds no meta)" in assert_one_line(e)
