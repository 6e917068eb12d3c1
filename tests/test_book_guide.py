"""The book guide (docs/book/chapter*.md) names code that exists and shows what it prints.

* every `path.py:name` names a file of this repository that defines ``name`` (a function,
  class or assignment at its top level; ``Class.method`` for a method);
* every ``python -m MODULE`` names a runner or benchmark of this checkout, and each of its
  ``--flag``s is defined by that runner or the shared flag modules it uses;
* the ``>>>`` examples run and print what the page says (doctest);
* where a page quotes what a quick runner prints (an indented block: the command, a blank
  line, its output), the runner, run now, prints every quoted line (``...`` stands for
  lines left out; a ``--png`` goes to a temporary file and is named back as written).
"""

import ast
import doctest
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = sorted((ROOT / "docs" / "book").glob("chapter*.md"))
REFERENCE = re.compile(r"`((?:nnjax|experiments|benchmarks)/[\w/]+\.py):([\w.]+)`")
COMMAND = re.compile(r"python -m ((?:experiments|benchmarks)\.\w+)((?:[ \t]+(?:\\\n)?[^\n`]*)?)")
FLAG = re.compile(r"--(?:no)?(\w+)")
# Runners quick enough to run here, with what their quoted output must not depend on.
QUICK = (
    "experiments.slowdown",
    "experiments.vanishing",
    "experiments.universality",
    "experiments.baselines",
    "experiments.digits",
    "benchmarks.backprop_speed",
)


def _defined(tree: ast.Module) -> dict:
    """Top-level names of a module: {name: node}, classes and their methods as Class.method."""
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names[f"{node.name}.{item.name}"] = item
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
    return names


def _references():
    return [
        (page.name, path, name)
        for page in GUIDE
        for path, name in REFERENCE.findall(page.read_text())
    ]


def _commands():
    return [
        (page.name, module, FLAG.findall(rest))
        for page in GUIDE
        for module, rest in COMMAND.findall(page.read_text())
    ]


def test_every_chapter_has_a_page():
    assert [p.name for p in GUIDE] == [f"chapter{k}.md" for k in range(1, 7)]


def test_the_pages_name_code():
    assert len(_references()) >= 6 * 3, "each chapter should point at its code"
    assert len(_commands()) >= 6, "each chapter should show a command"


@pytest.mark.parametrize("page,path,name", _references())
def test_reference_exists(page, path, name):
    source = ROOT / path
    assert source.is_file(), f"{page}: {path} does not exist"
    names = _defined(ast.parse(source.read_text()))
    assert name in names, f"{page}: {path} defines no {name}"


def _flag_names(module: str) -> set:
    """Flags a runner can take: those its own module or the experiments/benchmarks modules it
    imports define (DEFINE_*("name", ...) or a define_*_flags helper's)."""
    sources, seen, todo = [], set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = ROOT / (name.replace(".", "/") + ".py")
        if not path.is_file():
            continue
        text = path.read_text()
        sources.append(text)
        todo += re.findall(r"^from ((?:experiments|benchmarks)\.\w+) import", text, re.M)
        todo += re.findall(r"^import ((?:experiments|benchmarks)\.\w+)", text, re.M)
    text = "\n".join(sources)
    return set(re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", text)) | set(
        re.findall(r"^\s*\"(\w+)\",\s*$", text, re.M)
    )


@pytest.mark.parametrize("page,module,flags_used", _commands())
def test_command_exists(page, module, flags_used):
    path = ROOT / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"{page}: python -m {module}: no {path.relative_to(ROOT)}"
    known = _flag_names(module) | {"helpfull", "help"}
    unknown = [f for f in flags_used if f not in known]
    assert not unknown, f"{page}: python -m {module} has no flag(s) {unknown}"


@pytest.mark.parametrize("page", GUIDE, ids=lambda p: p.name)
def test_examples_print_what_the_page_says(page):
    failures, tried = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
        verbose=False,
    )
    assert failures == 0, f"{page.name}: {failures} of {tried} examples print something else"


def _blocks(text: str):
    """The indented code blocks of a markdown page: lists of their lines, unindented."""
    blocks, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("    ") or (block and not line.strip()):
            block.append(line[4:])
        elif block:
            while block and not block[-1].strip():
                block.pop()
            blocks.append(block)
            block = []
    return blocks


def _quoted_runs():
    """(page, command, quoted output lines) of each block that is a quick command, a blank
    line and what it prints (timings are never quoted so: backprop_speed only --check)."""
    runs = []
    for page in GUIDE:
        for block in _blocks(page.read_text()):
            first = block[0]
            if not first.startswith("python -m ") or "" not in block:
                continue
            module = first.split()[2]
            output = [line for line in block[block.index("") + 1 :] if line.strip()]
            if module not in QUICK or not output or "--svm" in first:
                continue
            if module == "benchmarks.backprop_speed" and "--check" not in first:
                continue
            runs.append((page.name, first, output))
    return runs


def test_some_pages_quote_what_runners_print():
    assert len(_quoted_runs()) >= 6


@pytest.mark.parametrize("page,command,quoted", _quoted_runs())
def test_quoted_output_is_what_the_runner_prints(tmp_path, page, command, quoted):
    args, renamed = shlex.split(command)[1:], {}
    for i, arg in enumerate(args):
        if arg.startswith("--png="):
            renamed[str(tmp_path / "figure.png")] = arg[len("--png=") :]
            args[i] = f"--png={tmp_path / 'figure.png'}"
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    for new, old in renamed.items():
        printed = printed.replace(new, old)
    printed = {line.strip() for line in printed.splitlines()}
    missing = [line for line in quoted if line.strip() != "..." and line.strip() not in printed]
    assert not missing, f"{page}: `{command}` no longer prints {missing}"
