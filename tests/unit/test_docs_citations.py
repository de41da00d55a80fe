"""Citations stay true: every `docs/<file>.md#<anchor>` cited in code, tests, bench and the docs
names a file and a heading that exist, and nothing cites the briefing documents that live outside
the repository (a reader of the repository cannot open them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "tests", "bench", "docs")
SUFFIXES = {".py", ".md", ".toml", ".txt", ".sh", ".yaml", ".yml", ".cfg", ".ini"}
# This file names the forbidden patterns themselves.
NOT_CITATIONS = {Path("tests/unit/test_docs_citations.py")}

CITATION = re.compile(r"docs/(?P<file>[A-Za-z0-9_./-]+?\.md)(?:#(?P<anchor>[A-Za-z0-9_-]+))?")
# a relative Markdown link inside docs/: [text](channels.md#webhooks), [text](../api.md#errors)
RELATIVE_LINK = re.compile(
    r"\]\((?!https?:|#)(?P<file>[A-Za-z0-9_./-]+?\.md)(?:#(?P<anchor>[A-Za-z0-9_-]+))?\)"
)
OUTSIDE = re.compile(
    r"\bSPEC\b|\bCHANNELS\b|ARCHITECTURE\.md|\bPart [12] §|shared/|/work/",
)


def scanned_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for top in SCANNED:
        files += [
            p
            for p in sorted((ROOT / top).rglob("*"))
            if p.is_file() and p.suffix in SUFFIXES and "results" not in p.relative_to(ROOT).parts
        ]
    return files


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def citations() -> list[tuple[str, Path, str | None]]:
    """(where, cited file, anchor or None) for every citation of a file in docs/."""
    out: list[tuple[str, Path, str | None]] = []
    for path in scanned_files():
        rel = path.relative_to(ROOT)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{rel}:{number}"
            for m in CITATION.finditer(line):
                out.append((where, ROOT / "docs" / m.group("file"), m.group("anchor")))
            if (rel.parts[0] == "docs" and rel.suffix == ".md") or rel == Path("README.md"):
                for m in RELATIVE_LINK.finditer(line):
                    out.append((where, (path.parent / m.group("file")).resolve(), m.group("anchor")))
    return out


def test_there_are_citations_to_check() -> None:
    cited = citations()
    assert len(cited) > 80
    assert any(anchor for _, _, anchor in cited)


def test_every_cited_doc_and_section_exists() -> None:
    broken = []
    cache: dict[Path, set[str]] = {}
    for where, doc, anchor in citations():
        if not doc.is_file():
            broken.append(f"{where}: no file {doc.relative_to(ROOT)}")
            continue
        if anchor is not None and anchor not in cache.setdefault(doc, anchors(doc)):
            broken.append(f"{where}: no section #{anchor} in {doc.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_nothing_cites_documents_outside_the_repository() -> None:
    found = []
    for path in scanned_files():
        rel = path.relative_to(ROOT)
        if rel in NOT_CITATIONS:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, "cite docs/ instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Differences from Infobip", "differences-from-infobip"),
        ("The 24-hour window", "the-24-hour-window"),
        ("`submit_sm` fields", "submit_sm-fields"),
        ("Errors (and retries)", "errors-and-retries"),
    ],
)
def test_slug_is_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor
