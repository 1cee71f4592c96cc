"""Helpers shared by the browser tests' fixtures and tests: where the book source is, and its
table of contents."""
import os
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(os.environ.get("ACTGRAD_SITE_SOURCE", ROOT))

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def load_yaml(name):
    return yaml.safe_load((SOURCE / name).read_text(encoding="utf-8"))


def toc_docnames():
    """Every document of _toc.yml (root first), in reading order, without suffix."""
    toc = load_yaml("_toc.yml")
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
            for part in entry.get("parts", []) or []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []) or []:
        walk(part.get("chapters"))
    return [str(Path(n).with_suffix("")) if Path(n).suffix in {".md", ".ipynb"} else n
            for n in names]


def source_of(docname):
    """The source file of a docname (.ipynb or .md), or None."""
    for suffix in (".ipynb", ".md"):
        path = SOURCE / (docname + suffix)
        if path.exists():
            return path
    return None


def chromium_path():
    path = os.environ.get("ACTGRAD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if Path(path).exists() else None
