"""Every runner's `--help` starts with its module docstring exactly as written: absl
%-formats a docstring with `sys.argv[0]`, which garbles a lone `%` (`99.67% row` printed as
`99.67'/path/to/vote.py'ow`)."""

import ast
import pathlib
import sys
import types

import pytest
from absl import app

from tests.helpers import run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNNERS = sorted(
    p
    for folder in ("experiments", "benchmarks")
    for p in (ROOT / folder).glob("*.py")
    if "app.run(" in p.read_text()
)


def test_every_runner_is_found():
    names = {p.stem for p in RUNNERS}
    assert {"mnist", "conv", "chapter6", "vote", "sweep", "epoch_speed"} <= names, names


@pytest.mark.parametrize("path", RUNNERS, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_help_shows_the_docstring_as_written(path, monkeypatch, capsys):
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=False)
    assert doc, f"{path} has no docstring for --help"
    main = types.ModuleType("__main__")
    main.__doc__ = doc
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", [str(path)])
    app.usage(shorthelp=True, writeto_stdout=True)
    assert capsys.readouterr().out.startswith(doc.replace("%%", "%"))


@pytest.mark.parametrize(
    "args, code",
    [
        (["--help"], 0),
        (["-?"], 0),
        (["--helpfull"], 0),
        (["--epochs=2", "--help"], 0),
        (["--help=false", "--eta=abc"], 1),  # no help asked: the flag error stands
    ],
)
def test_help_exits_zero_as_other_tools_do(args, code):
    result = run_module("experiments.mnist", *args)
    assert result.returncode == code, result.stderr
    assert ("--hidden" in result.stdout) == (code == 0), result.stdout


def test_help_inside_a_flagfile_exits_zero_too(tmp_path):
    (tmp_path / "help.flags").write_text("--epochs=2\n--help\n")
    result = run_module("experiments.mnist", f"--flagfile={tmp_path / 'help.flags'}")
    assert result.returncode == 0 and "--hidden" in result.stdout, result.stderr
