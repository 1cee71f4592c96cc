"""Nothing secret reaches the website: no solution line and no hidden-test line in any page,
source copy, download or the search index, and no instructor/student folder or gradebook."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from test_exercises import ASSIGNMENTS, hidden_lines, load, nb_path, solution_lines

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("site")]


def _text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        nb = json.loads(raw)
        parts = []
        for cell in nb.get("cells", []):
            s = cell.get("source", "")
            parts.append("".join(s) if isinstance(s, list) else s)
            for out in cell.get("outputs", []):
                parts.append(json.dumps(out))
        return "\n".join(parts)
    if path.suffix in (".html", ".htm"):
        return html.unescape(re.sub(r"<[^>]+>", "", raw))
    return raw


def _published_files(site: Path):
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".htm", ".ipynb", ".txt", ".md", ".js", ".py", ".json"):
            if "_static" in path.parts and path.name != "searchindex.js":
                continue  # theme assets
            yield path


def test_no_secret_on_site(built_site):
    site = Path(built_site)
    secrets = set()
    for a in ASSIGNMENTS:
        nb = load(nb_path("solutions", a))
        secrets |= {("solution", a, line) for line in solution_lines(nb)}
        secrets |= {("hidden test", a, line) for line in hidden_lines(nb)}
    assert len(secrets) > 100
    files = list(_published_files(site))
    assert any(p.name == "searchindex.js" for p in files)
    assert any("_sources" in p.parts for p in files)
    for a in ASSIGNMENTS:  # the released notebooks are published (page + source copy)
        assert (site / "exercises" / a / f"{a}.html").is_file()
    leaks = []
    for path in files:
        text = _text(path)
        if "BEGIN SOLUTION" in text or "HIDDEN TESTS" in text:
            leaks.append((str(path.relative_to(site)), "nbgrader marker"))
        for kind, a, line in secrets:
            if line in text:
                leaks.append((str(path.relative_to(site)), kind, a, line))
    assert not leaks, leaks[:20]


def test_no_course_data_on_site(built_site):
    site = Path(built_site)
    for name in ("solutions", "submitted", "autograded", "feedback", "downloaded", "release", "course"):
        assert not list(site.rglob(name)), name
    assert not list(site.rglob("gradebook.db*"))
    assert not [p for p in site.rglob("*") if "solutions" in p.name or "autograded" in p.name]
