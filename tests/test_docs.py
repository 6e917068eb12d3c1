"""Every relative link in README.md and docs/**/*.md leads somewhere: the file (or folder)
it names exists, and a ``#fragment`` names a heading of the page it points to (GitHub's
anchors). Links with a scheme (http, https, mailto) are not followed."""

import os
import pathlib
import re
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), with an optional "title"; the text may hold brackets.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The page without fenced code blocks and inline code, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    return LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links as their text) in lower case, without
    punctuation, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: pathlib.Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken(page: pathlib.Path, root: pathlib.Path = ROOT) -> list[str]:
    """The relative links of ``page`` that lead nowhere, each with the reason (paths relative
    to ``root``)."""
    problems = []
    for target in links(page.read_text()):
        if SCHEME.match(target):
            continue
        path, _, fragment = urllib.parse.unquote(target).partition("#")
        path = path.split("?")[0]
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            problems.append(f"{target}: no file {os.path.relpath(where, root)}")
        elif fragment and where.suffix == ".md" and fragment not in anchors(where):
            problems.append(f"{target}: no heading #{fragment} in {where.name}")
    return problems


def test_the_pages_are_found():
    assert ROOT / "README.md" in PAGES and len(PAGES) > 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page):
    assert broken(page) == []


def test_the_checker_finds_what_is_broken(tmp_path):
    (tmp_path / "there.md").write_text("# A `code` heading: here\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-code-heading-here) [ok](there.md#twice-1) "
        "![alt [with] brackets](there.md) [web](https://example.org/missing.md)\n"
        "[gone](missing.md) [bad anchor](there.md#nowhere)\n"
        "`[in code](missing.md)`\n\n```\n[fenced](missing.md)\n```\n"
    )
    assert broken(page, root=tmp_path) == [
        "missing.md: no file missing.md",
        "there.md#nowhere: no heading #nowhere in there.md",
    ]
