"""The Colab notebook's code, run on the CPU with tiny settings, so that it cannot rot.

The install cell (tagged ``# nnjax: install``) is run on its own, as IPython runs a cell,
cloning this checkout and installing it into a temporary directory. The other code cells are
turned into one script, after the install cell's ``Stop`` and ``run`` (the runners' calls): the
settings cell (``# nnjax: settings``) gets the tiny values below; ROOT is this checkout and
OUT a temporary directory. The script runs in an empty directory of its own
(which must stay empty: every path is absolute) with 8 virtual CPU devices, so that the
data-parallel cell splits its mini-batches as on an 8-chip TPU; that cell runs again on one
device, as on Colab's single-chip TPUs and its GPUs.
"""

import ast
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

import nnjax
from experiments.presets import CHAPTER6

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"
HAS_SWEEP = (ROOT / "experiments" / "sweep.py").exists()
NO_SWEEP = "experiments/sweep.py is not in this checkout: the notebook's sweep cell is not run"

TINY = {
    "EPOCHS": 2,
    "TRAIN_SIZE": 1000,
    "DP_MINI_BATCH_SIZE": 80,
    "DP_ETA": 10.0,
    "SWEEP_EPOCHS": 1,
    "SWEEP_SEEDS": "0:2",
    "SWEEP_ETAS": "0.5,3.0",
}
# The notebook's own CONV_PRESET and CONV_FLAGS, then these flags, which override theirs: the
# default command runs, with tiny layers and data.
TINY_CONV_FLAGS = "--train_size=300 --epochs=1 --expand=none --layers=conv:4:5x5,fc:20,softmax"

PREAMBLE = """\
import os, subprocess, sys  # what the install cell imports for Stop and run

ROOT = {root!r}
OUT = {out!r}
"""


def install_cell_helpers() -> str:
    """The install cell's ``Stop`` and ``run`` (how every cell runs a runner), as source."""
    tree = ast.parse(dict(code_cells())["install"])
    found = [n for n in tree.body if getattr(n, "name", None) in ("Stop", "run")]
    assert [n.name for n in found] == ["Stop", "run"]
    return "\n\n".join(ast.unparse(n) for n in found)


# A cell run as IPython runs it: an exception it raises shown as
# IPython.core.interactiveshell.showtraceback shows it (SystemExit under a header; one with a
# _render_traceback_() as those lines alone; others with a traceback). Then the JAX platforms
# the cell left the notebook's process with.
AS_IPYTHON = """\
import sys
cell = {"__name__": "__main__"}
try:
    exec(compile(sys.argv[1], "<cell>", "exec"), cell)
except SystemExit as e:
    print("An exception has occurred, use %tb to see the full traceback.", file=sys.stderr)
    print(f"SystemExit: {e}", file=sys.stderr)
    sys.exit(1)
except Exception as e:
    if not hasattr(e, "_render_traceback_"):
        raise
    print(*e._render_traceback_(), sep="\\n", file=sys.stderr)
    sys.exit(1)
if "jax" in cell:
    print("jax_platforms:", cell["jax"].config.jax_platforms)
"""


def code_cells():
    """``(tag, source)`` of every code cell; the tag is X of a first line ``# nnjax: X``."""
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            first = source.splitlines()[0] if source else ""
            tag = first.split("# nnjax:", 1)[1].split()[0] if first.startswith("# nnjax:") else ""
            cells.append((tag, source))
    return cells


def settings() -> dict:
    """The settings cell's names and values."""
    tree = ast.parse(dict(code_cells())["settings"])
    return {t.id: ast.literal_eval(node.value) for node in tree.body for t in node.targets}


def tiny_settings() -> str:
    """The settings cell with TINY's values; it must set exactly TINY's names and the conv's."""
    notebook = settings()
    assert sorted(notebook) == sorted([*TINY, "CONV_PRESET", "CONV_FLAGS"]), notebook
    tiny = {
        **TINY,
        "CONV_PRESET": notebook["CONV_PRESET"],
        "CONV_FLAGS": f"{notebook['CONV_FLAGS']} {TINY_CONV_FLAGS}".strip(),
    }
    return "\n".join(f"{name} = {value!r}" for name, value in tiny.items())


def to_python(source: str) -> str:
    """A code cell as plain Python: runners are run by ``run``, which stops on failure, not by
    IPython's ``!command``, which does not; they run from ROOT and write to OUT."""
    for line in source.splitlines():
        stripped = line.lstrip()
        assert not stripped.startswith(("%", "!")), f"no IPython magics or shell lines: {line}"
        for path in re.findall(r"--\w+=(\S+\.(?:png|jsonl|json|npz))\b", stripped):
            assert path.startswith("{OUT}/"), f"the runners write to OUT: {line}"
    return source


def notebook_script(out: pathlib.Path, tags=None) -> str:
    """The code cells (those tagged ``tags``, or all but the install cell) as one script."""
    parts = [PREAMBLE.format(root=str(ROOT), out=str(out)), install_cell_helpers()]
    seen = []
    for tag, source in code_cells():
        seen.append(tag)
        if tag == "install" or (tags is not None and tag not in tags):
            continue
        if tag == "sweep" and not HAS_SWEEP:
            continue
        parts.append(tiny_settings() if tag == "settings" else to_python(source))
    assert {"install", "settings", "devices", "data_parallel", "sweep", "conv"} <= set(seen)
    return "\n\n".join(parts) + "\n"


def run_notebook(where: pathlib.Path, devices: int, tags=None):
    """Runs the script in ``where/cwd`` with OUT ``where/out``; returns its stdout."""
    cwd, out = where / "cwd", where / "out"
    cwd.mkdir()
    out.mkdir()
    (where / "notebook.py").write_text(notebook_script(out, tags))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
        "JAX_NUM_CPU_DEVICES": str(devices),
        "PYTHONUNBUFFERED": "1",
    }
    result = subprocess.run(
        [sys.executable, str(where / "notebook.py")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert list(cwd.iterdir()) == []  # nothing written relative to the working directory
    return result.stdout


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    where = tmp_path_factory.mktemp("colab")
    return where / "out", run_notebook(where, devices=8)


def run_install_cell(repo: str, root: pathlib.Path, out: pathlib.Path, site: pathlib.Path):
    """The install cell as Colab runs it, with REPO, ROOT and OUT set; pip installs into
    ``site`` (PIP_TARGET, on the cell's sys.path as Colab's site-packages is), offline, so
    that the test's own environment is untouched."""
    source = dict(code_cells())["install"]
    assert re.search(r'^REPO = ""$', source, re.M), "REPO ships unset"
    for name, value in (("REPO", repo), ("ROOT", str(root)), ("OUT", str(out))):
        source, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", source, count=1, flags=re.M)
        assert n == 1, name
    site.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "PIP_TARGET": str(site),
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's spelling of --no-build-isolation
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", AS_IPYTHON, source],
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_install_cell_stops_with_one_line_while_repo_is_unset(tmp_path):
    result = run_install_cell("", tmp_path / "nnjax", tmp_path / "out", tmp_path / "site")
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "Set REPO in the install cell to nnjax's git URL, then run it again."
    )
    assert not (tmp_path / "nnjax").exists() and not (tmp_path / "out").exists()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout to clone")
def test_install_cell_clones_installs_and_reruns(tmp_path):
    root, out, site = tmp_path / "nnjax", tmp_path / "out", tmp_path / "site"
    for run in range(2):  # Colab's "run all" twice: the second reuses the checkout
        result = run_install_cell(f"file://{ROOT}", root, out, site)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert f"nnjax {nnjax.__version__}: checkout in {root}, files in {out}" in result.stdout
        assert (root / "experiments" / "mnist.py").exists() and out.is_dir()
        assert "jax_platforms: cpu" in result.stdout  # the notebook leaves the TPU to the runners
        if run == 0:
            (root / "marker").write_text("kept")
    assert (root / "marker").read_text() == "kept"
    installed = subprocess.run(
        [sys.executable, "-c", "import nnjax; print(nnjax.__version__, nnjax.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    version, path = installed.stdout.split()
    assert pathlib.Path(path).is_relative_to(site) and version == nnjax.__version__
    assert (site / "nnjax" / "kernels" / "sgd_epoch_cpu.cc").exists()  # the kernel ships
    # Only nnjax went in: Colab's jax and jaxlib, built for its TPU or GPU, stay, and the other
    # dependencies were all there.
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info")) == ["nnjax"]


def test_notebook_defaults_are_a_preset_row():
    values = settings()
    assert values["CONV_PRESET"] in CHAPTER6
    assert values["DP_MINI_BATCH_SIZE"] % 8 == 0  # 1, 2, 4 or 8 devices


def test_notebook_trains_and_plots_on_cpu(ran):
    out, stdout = ran
    assert "Epoch 0:" in stdout and "Epoch 1:" in stdout and "Best: epoch" in stdout
    assert "The runners train on cpu, 8 device(s)" in stdout  # the devices cell's probe
    assert "This notebook computes on cpu." in stdout
    assert "on 8 cpu devices" in stdout  # the data-parallel run split its mini-batches
    parallel = [json.loads(l) for l in (out / "data_parallel.jsonl").read_text().splitlines()]
    # 1,000 images, 26 steps of 80: it learns (29.2% here; chance is 10%), slowly
    assert [r["epoch"] for r in parallel] == [0, 1]
    assert parallel[1]["correct"] > parallel[0]["correct"] and parallel[1]["correct"] > 2000
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_notebook_data_parallel_cell_on_one_device(ran, tmp_path):
    out8, _ = ran
    stdout = run_notebook(tmp_path, devices=1, tags={"settings", "devices", "data_parallel"})
    assert "The runners train on cpu, 1 device(s)" in stdout
    assert "mini-batch 80, 2 epochs on cpu;" in stdout  # one device: no mesh
    one = [
        json.loads(l) for l in (tmp_path / "out" / "data_parallel.jsonl").read_text().splitlines()
    ]
    eight = [json.loads(l) for l in (out8 / "data_parallel.jsonl").read_text().splitlines()]
    # The same mini-batches, summed in another order: the same network up to float rounding.
    assert [r["epoch"] for r in one] == [0, 1]
    assert all(abs(a["correct"] - b["correct"]) <= 5 for a, b in zip(one, eight, strict=True))


@pytest.mark.skipif(not HAS_SWEEP, reason=NO_SWEEP)
def test_notebook_sweep_cell_draws_the_sweep(ran):
    out, _ = ran
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [json.loads(l) for l in (out / "sweep.jsonl").read_text().splitlines()]
    # SWEEP_SEEDS "0:2" × SWEEP_ETAS "0.5,3.0", one epoch each
    assert sorted((r["seed"], r["eta"]) for r in rows) == [(0, 0.5), (0, 3.0), (1, 0.5), (1, 3.0)]
    assert all(len(r["accuracies"]) == 1 and 0 <= r["accuracies"][0] <= 1 for r in rows)


def test_notebook_conv_cell_trains_the_preset_and_draws_its_figures(ran):
    out, stdout = ran
    assert "dropout 0.5 (book)" in stdout  # the preset's dropout, with tiny layers
    epochs = [json.loads(l) for l in (out / "conv.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs] == [0] and epochs[0]["test_total"] == 10000
    for png in ("filters.png", "wrong.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_runner_that_fails_stops_run_all_with_its_error_line(tmp_path):
    """IPython goes on after a failing ``!command``; the notebook's ``run`` raises Stop, shown
    as the runner's one error line, so no later cell plots a missing or earlier file."""
    script = notebook_script(tmp_path, tags=set()) + (
        'run("experiments.mnist", "--eta=-1")\nprint("went on")\n'
    )
    (tmp_path / "cwd").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", AS_IPYTHON, script],
        cwd=tmp_path / "cwd",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1 and "went on" not in result.stdout
    assert "$ python -m experiments.mnist --eta=-1" in result.stdout
    assert result.stderr.strip() == (
        "python -m experiments.mnist failed: error: --eta must be positive, got -1.0"
    ), result.stderr


def test_install_cell_installs_a_dependency_that_is_too_old():
    """Colab has long shipped absl-py 1.4 where nnjax asks for more: the install cell's
    is_missing reads the version bound, not only whether a package is there."""
    tree = ast.parse(dict(code_cells())["install"])
    (function,) = [n for n in tree.body if getattr(n, "name", None) == "is_missing"]
    scope = {}
    exec(
        "import importlib.metadata\nfrom packaging.requirements import Requirement\n"
        + ast.unparse(function),
        scope,
    )
    is_missing = scope["is_missing"]
    assert not is_missing("absl-py>=1.0") and not is_missing("numpy")
    assert is_missing("absl-py>=999") and is_missing("no-such-package-here>=1")
