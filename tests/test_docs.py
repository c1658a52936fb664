"""The method is described in the repository (docs/method.md), and every citation points at a section it has.

Code, tests, benchmarks, scripts, the README and the pipeline files cite "docs/method.md §N"; none of them may
cite the developers' own reference file (named by `DEVELOPERS_REFERENCE`), which is not in the repository. Reads
text files only (no torch).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEVELOPERS_REFERENCE = "".join(("S", "P", "E", "C"))  # spelled apart, so that this file does not cite it either
METHOD_DOC = REPO / "docs" / "method.md"
SCANNED = [
    "rlaux",
    "tests",
    "benchmarks",
    "scripts",
    "paper_tables",
    "docs",
    "README.md",
    "params.yaml",
    "dvc.yaml",
    "report.yaml",
]
TEXT_SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".json", ".csv"}

CITATION = re.compile(r"docs/method\.md(?:'s)?((?:\s*,?\s*§\d+(?:\.\d+)?(?:\s*[-–/]\s*§?\d+(?:\.\d+)?)?)+)")
SECTION_ID = re.compile(r"\d+(?:\.\d+)?")


def scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = REPO / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
            ]
    return files


def doc_sections(text: str) -> set[str]:
    """Section ids of docs/method.md: its headings ("## 6. …", "### 9.1 …") and the errata table's rows ("| 6.4 |")."""
    headings = re.findall(r"^#{2,4}\s+(\d+(?:\.\d+)?)[.\s]", text, re.MULTILINE)
    rows = re.findall(r"^\|\s*(\d+\.\d+)\s*\|", text, re.MULTILINE)
    return set(headings) | set(rows)


def cited_sections(text: str) -> list[str]:
    """Every section id named by a "docs/method.md §…" citation: lists (§5, §6.10) and both ends of ranges (§1-5)."""
    return [sid for match in CITATION.finditer(text) for sid in SECTION_ID.findall(match.group(1))]


def test_no_file_cites_the_developers_spec():
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in scanned_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if DEVELOPERS_REFERENCE in line
    ]
    assert not offenders, f"cite docs/method.md §N, not {DEVELOPERS_REFERENCE}:\n" + "\n".join(offenders)


def test_every_method_citation_names_a_section_that_exists():
    assert METHOD_DOC.is_file(), "docs/method.md, the project's description of the method, is missing"
    sections = doc_sections(METHOD_DOC.read_text(encoding="utf-8"))
    cited = 0
    missing = []
    for path in scanned_files():
        for sid in cited_sections(path.read_text(encoding="utf-8", errors="replace")):
            cited += 1
            if sid not in sections:
                missing.append(f"{path.relative_to(REPO)}: §{sid}")
    assert not missing, "docs/method.md has no such section:\n" + "\n".join(missing)
    assert cited >= 30  # the code does cite it; a broken pattern would find nothing and pass vacuously


def test_the_method_doc_lists_its_sections_and_every_erratum_switch():
    text = METHOD_DOC.read_text(encoding="utf-8")
    contents = re.findall(r"^(\d+)\. (.+)$", text.split("\n## 1.")[0], re.MULTILINE)
    headings = re.findall(r"^## (\d+)\. (.+)$", text, re.MULTILINE)
    assert contents == headings and len(headings) >= 9
    assert {f"6.{i}" for i in range(1, 13)} <= doc_sections(text)
    from rlaux.config import Errata  # pydantic only: importing rlaux loads no torch

    assert [name for name in Errata.model_fields if f"`errata.{name}`" not in text] == []


def test_the_citation_parser():
    assert cited_sections("(docs/method.md §5, §6.11-6.12)") == ["5", "6.11", "6.12"]
    assert cited_sections("docs/method.md §1–5 and docs/method.md §6.1/6.3; docs/method.md §9.1's") == [
        "1",
        "5",
        "6.1",
        "6.3",
        "9.1",
    ]
    assert cited_sections("see docs/method.md, section 2") == []
    assert doc_sections("## 6. Errata\n### 9.1 Controls\n| 6.4 | `x` | y |\n") == {"6", "9.1", "6.4"}
