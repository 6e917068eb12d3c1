"""The Colab notebook's code, run on the CPU with tiny settings, so that it cannot rot.

The install cell (tagged ``# nnjax: install``) is run on its own, cloning this checkout and
installing it into a temporary directory. The other code cells are turned into one script:
the settings cell (``# nnjax: settings``) gets the tiny values below; ``!command`` lines
become subprocess calls with IPython's ``{NAME}`` expansion. The script runs in a temporary
directory with 8 virtual CPU devices, so the data-parallel cell splits its mini-batches as on
a TPU's 8 cores.
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
    "CONV_PRESET": "dropout",
    "CONV_FLAGS": "--train_size=300 --epochs=1 --expand=none --layers=conv:4:5x5,fc:20,softmax",
}

PREAMBLE = '''\
import re, subprocess, sys

def _shell(command):
    """IPython's `!command`: {NAME} replaced by the variable's value, `python` by this
    Python; failing fails."""
    command = re.sub(r"\\{(\\w+)\\}", lambda m: str(globals()[m.group(1)]), command)
    command = re.sub(r"^python ", sys.executable + " ", command)
    print("$", command, flush=True)
    subprocess.run(command, shell=True, check=True)
'''


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


def tiny_settings(source: str) -> str:
    """The settings cell with TINY's values; it must set exactly TINY's names."""
    names = [t.id for node in ast.parse(source).body for t in node.targets]
    assert sorted(names) == sorted(TINY), names
    return "\n".join(f"{name} = {value!r}" for name, value in TINY.items())


def to_python(source: str) -> str:
    out = []
    for line in source.splitlines():
        stripped = line.lstrip()
        assert not stripped.startswith("%"), f"no IPython magics outside the install cell: {line}"
        if stripped.startswith("!"):
            line = line[: len(line) - len(stripped)] + f"_shell({stripped[1:]!r})"
        out.append(line)
    return "\n".join(out)


def notebook_script() -> str:
    parts = [PREAMBLE]
    tags = []
    for tag, source in code_cells():
        tags.append(tag)
        if tag == "install":
            continue
        if tag == "sweep" and not HAS_SWEEP:
            continue
        parts.append(tiny_settings(source) if tag == "settings" else to_python(source))
    assert {"install", "settings", "sweep", "conv"} <= set(tags), tags
    return "\n\n".join(parts) + "\n"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    where = tmp_path_factory.mktemp("colab")
    (where / "notebook.py").write_text(notebook_script())
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
        "JAX_NUM_CPU_DEVICES": "8",
        "PYTHONUNBUFFERED": "1",
    }
    result = subprocess.run(
        [sys.executable, "notebook.py"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return where, result.stdout


def run_install_cell(repo: str, root: pathlib.Path, site: pathlib.Path):
    """The install cell as Colab runs it (the cwd on sys.path), with REPO and ROOT set; pip
    installs into ``site`` (PIP_TARGET), offline, so the test's own environment is untouched."""
    source = dict(code_cells())["install"]
    assert re.search(r'^REPO = ""$', source, re.M), "REPO ships unset"
    source = re.sub(r"^REPO = .*$", f"REPO = {repo!r}", source, count=1, flags=re.M)
    source = re.sub(r"^ROOT = .*$", f"ROOT = {str(root)!r}", source, count=1, flags=re.M)
    env = {
        **os.environ,
        "PIP_TARGET": str(site),
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's spelling of --no-build-isolation
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-c", source],
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_install_cell_stops_with_one_line_while_repo_is_unset(tmp_path):
    result = run_install_cell("", tmp_path / "nnjax", tmp_path / "site")
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "Set REPO in the install cell to nnjax's git URL, then run it again."
    )
    assert not (tmp_path / "nnjax").exists()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout to clone")
def test_install_cell_clones_installs_and_reruns(tmp_path):
    root, site = tmp_path / "nnjax", tmp_path / "site"
    for run in range(2):  # Colab's "run all" twice: the second reuses the checkout
        result = run_install_cell(f"file://{ROOT}", root, site)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert f"checkout in {root}" in result.stdout
        assert (root / "experiments" / "mnist.py").exists()
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
    install = dict(code_cells())["install"]
    assert "--no-deps" in install  # Colab's jax and jaxlib, built for its TPU or GPU, stay


def test_notebook_trains_and_plots_on_cpu(ran):
    where, stdout = ran
    assert "Epoch 0:" in stdout and "Epoch 1:" in stdout and "Best: epoch" in stdout
    assert "on 8 cpu devices" in stdout  # the data-parallel run split its mini-batches
    parallel = [json.loads(l) for l in (where / "data_parallel.jsonl").read_text().splitlines()]
    # 1,000 images, 26 steps of 80: it learns (28.9% here; chance is 10%), slowly
    assert [r["epoch"] for r in parallel] == [0, 1]
    assert parallel[1]["correct"] > parallel[0]["correct"] and parallel[1]["correct"] > 2000
    assert (where / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not HAS_SWEEP, reason=NO_SWEEP)
def test_notebook_sweep_cell_draws_the_sweep(ran):
    where, _ = ran
    assert (where / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [json.loads(l) for l in (where / "sweep.jsonl").read_text().splitlines()]
    # SWEEP_SEEDS "0:2" × SWEEP_ETAS "0.5,3.0", one epoch each
    assert sorted((r["seed"], r["eta"]) for r in rows) == [(0, 0.5), (0, 3.0), (1, 0.5), (1, 3.0)]
    assert all(len(r["accuracies"]) == 1 and 0 <= r["accuracies"][0] <= 1 for r in rows)


def test_notebook_conv_cell_trains_the_preset_and_draws_its_figures(ran):
    where, stdout = ran
    assert "dropout 0.5 (book)" in stdout  # the preset's dropout, with tiny layers
    epochs = [json.loads(l) for l in (where / "conv.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs] == [0] and epochs[0]["test_total"] == 10000
    for png in ("filters.png", "wrong.png"):
        assert (where / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
