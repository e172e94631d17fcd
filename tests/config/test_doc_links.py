"""Links printed to users point at files and headings that exist (and at the project's own address)."""

from __future__ import annotations

import re
from pathlib import Path

from tokenrate._docs import REPOSITORY_URL, doc_url

ROOT = Path(__file__).resolve().parents[2]


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_doc_link_in_the_source_names_an_existing_file_and_heading():
    calls = []
    for path in (ROOT / "src" / "tokenrate").rglob("*.py"):
        calls += re.findall(r"""doc_url\(\s*["']([^"']+)["'](?:\s*,\s*["']([^"']+)["'])?""", path.read_text())
    assert calls, "no doc_url() call found: the pattern is wrong"
    for target, anchor in calls:
        doc = ROOT / target
        assert doc.is_file(), target
        if anchor:
            headings = [line.lstrip("#") for line in doc.read_text().splitlines() if line.startswith("#")]
            assert anchor in {_slug(h) for h in headings}, (target, anchor)


def test_links_use_the_project_url_from_pyproject():
    section = (ROOT / "pyproject.toml").read_text().split("[project.urls]", 1)[1].split("\n[", 1)[0]
    urls = re.findall(r'=\s*"([^"]+)"', section)
    assert urls
    assert all(url.startswith(REPOSITORY_URL) for url in urls)
    assert doc_url("docs/cost.md", "the-ledger") == f"{REPOSITORY_URL}/blob/main/docs/cost.md#the-ledger"
