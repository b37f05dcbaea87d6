"""Comments and docs cite this repository's own files, never documents a clone does not have.

Scanned: the prose of ``src/``, ``tests/``, ``bench/``, ``docs/``, ``.ci/``, the README,
CONTRIBUTING.md, the Makefile and pyproject.toml (in Python files, the comments and the strings
with a space in them: docstrings and messages, not file names the code writes). A cited ``.md``
file must exist, relative to the repository's root or to the citing file; a section cited after
it in quotes (``docs/api.md, "Jobs"``) must begin a heading, or a bold lead, of that file; a test
id such as F20 must be in the catalogue of docs/reliability.md (CONTRIBUTING.md, "Conventions").
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("src", "tests", "bench", "docs", ".ci", "deploy")
SCANNED_FILES = ("README.md", "CONTRIBUTING.md", "Makefile", "pyproject.toml")
SUFFIXES = frozenset({".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".lua", ".sh"})
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "dist", "out", ".hypothesis"})
GENERATED = "bench/out/"  # written by `make bench`, so absent from a clone
CATALOGUE = ROOT / "docs" / "reliability.md"

OUTSIDE = re.compile(r"\.\./shared|shared/spec|§")
MD_CITATION = re.compile(r'(?<![\w/.-])([\w./-]*\w\.md)\b(?:,?\s*"([^"\n]+)")?')
TEST_ID = re.compile(r"\b([LFBS]\d{1,2})\b")
CATALOGUE_ROW = re.compile(r"^\| ([LFBS]\d{1,2}) \|", re.MULTILINE)
STRING_PREFIX = re.compile(r"[A-Za-z]*")
FSTRING_FIELD = re.compile(r"\{[^{}]*\}")
ANY_CITATION = re.compile(r"\.md\b|\.\./shared|shared/spec|§|\b[LFBS]\d{1,2}\b")
HEADING = re.compile(r"^(?:#+\s+(.+?)|\*\*(.+?)\*\*.*)$", re.MULTILINE)


def _files() -> Iterator[Path]:
    yield from (ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file())
    for top in SCANNED_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            parts = set(path.relative_to(ROOT).parts[:-1])
            if path.is_file() and path.suffix in SUFFIXES and not parts & SKIPPED_DIRS:
                yield path


def _python_prose(text: str) -> Iterator[tuple[int, str]]:
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        prose = token.string
        if token.type == tokenize.STRING and "f" in STRING_PREFIX.match(prose)[0].lower():
            prose = FSTRING_FIELD.sub("", prose)  # what an f-string interpolates is code
        if token.type == tokenize.COMMENT or (
            token.type == tokenize.STRING and re.search(r"\s", prose)
        ):
            yield token.start[0], prose


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, text)`` pieces of a file that a person reads as prose."""
    text = path.read_text(encoding="utf-8")
    if not ANY_CITATION.search(text):
        return  # nothing to check: spare the tokenizer
    if path.suffix == ".py":
        yield from _python_prose(text)
    else:
        yield from enumerate(text.splitlines(), start=1)


@pytest.fixture(scope="module")
def prose() -> list[tuple[Path, int, str]]:
    return [(path, line, text) for path in _files() for line, text in _prose(path)]


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def _target(path: Path, cited: str) -> Path | None:
    for base in (ROOT, path.parent):
        candidate = (base / cited).resolve()
        if candidate.is_file() and candidate.is_relative_to(ROOT):
            return candidate
    return None


def _sections(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [(a or b).strip().lower() for a, b in HEADING.findall(text)]


def _citation_problems(path: Path, line: int, prose: str) -> Iterator[str]:
    for match in MD_CITATION.finditer(prose):
        cited, section = match.group(1).removeprefix("./"), match.group(2)
        if cited.startswith(GENERATED):
            continue
        target = _target(path, cited)
        if target is None:
            yield f"{_where(path, line)}: cites {cited}, which is not in the repository"
        elif section and not any(s.startswith(section.lower()) for s in _sections(target)):
            yield f'{_where(path, line)}: {cited} has no section "{section}"'


def test_nothing_cites_a_document_outside_the_repository(
    prose: list[tuple[Path, int, str]],
) -> None:
    problems = [
        f"{_where(path, line)}: {match.group(0)!r} points outside the repository"
        for path, line, text in prose
        for match in OUTSIDE.finditer(text)
    ]
    assert not problems, "\n".join(problems)


def test_cited_documents_and_sections_exist(prose: list[tuple[Path, int, str]]) -> None:
    problems = [
        problem for path, line, text in prose for problem in _citation_problems(path, line, text)
    ]
    assert not problems, "\n".join(problems)


def test_cited_test_ids_are_in_the_catalogue(prose: list[tuple[Path, int, str]]) -> None:
    rows = CATALOGUE.read_text(encoding="utf-8") if CATALOGUE.is_file() else ""
    catalogue = set(CATALOGUE_ROW.findall(rows))
    problems = [
        f"{_where(path, line)}: {match.group(1)} is not in docs/reliability.md"
        for path, line, text in prose
        if path != CATALOGUE
        for match in TEST_ID.finditer(text)
        if match.group(1) not in catalogue
    ]
    assert not problems, "\n".join(problems)
