"""``collect``: put submissions in ``submitted/<student>/<assignment>/`` with nbgrader zip_collect.

The source is a folder of notebooks, a zip file (e.g. an LMS "download all submissions"), or a
folder of zips. Files must be named ``<student_id>_<notebook>.ipynb`` (anything between them is
ignored if you pass ``--regexp``), e.g. ``alice_a1_activation_derivatives.ipynb``.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from . import ROOT
from .nbg import chdir, load_config


def default_regexp(assignment: str) -> str:
    """``<student_id>_<assignment>[ (n)][-anything].ipynb``; student ids may contain underscores."""
    nb = re.escape(assignment)
    return rf"^(?:.*[/\\])?(?P<student_id>[^/\\]+?)_(?P<file_id>{nb})(?:[ _\-(][^/\\]*)?\.ipynb$"


def collect(assignment: str, source: Path | str, *, root: Path | str = ROOT, regexp: str | None = None):
    """Copy/extract ``source`` into ``downloaded/<assignment>/archive`` and run zip_collect.

    Returns the submitted notebooks of this assignment afterwards. Re-collecting replaces a
    student's submitted files (nbgrader keeps the grades until the next autograde).
    """
    from nbgrader.apps.zipcollectapp import ZipCollectApp

    root = Path(root).resolve()
    source = Path(source).resolve()
    if not source.exists():
        raise FileNotFoundError(f"collect: {source} does not exist")
    archive = root / "downloaded" / assignment / "archive"
    if archive.exists():
        shutil.rmtree(archive)
    archive.mkdir(parents=True)
    if source.is_dir():
        for f in sorted(source.iterdir()):
            if f.is_file() and f.suffix in (".ipynb", ".zip"):
                shutil.copy2(f, archive / f.name)
    else:
        shutil.copy2(source, archive / source.name)
    cfg = load_config(root)
    cfg.CourseDirectory.assignment_id = assignment
    cfg.ZipCollectApp.force = True
    cfg.ZipCollectApp.strict = True
    cfg.FileNameCollectorPlugin.named_regexp = regexp or default_regexp(assignment)
    with chdir(root):  # nbgrader apps also read ./nbgrader_config.py
        app = ZipCollectApp(config=cfg)
        app.initialize([assignment])
        app.start()
    return sorted((root / "submitted").glob(f"*/{assignment}/*.ipynb"))
