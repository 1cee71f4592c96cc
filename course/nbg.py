"""Loading the course's nbgrader configuration and talking to nbgrader's API and gradebook."""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from . import ASSIGNMENTS, ROOT


def load_config(root: Path | str = ROOT, **overrides) -> Config:
    """The course's ``nbgrader_config.py`` with ``CourseDirectory.root`` set to ``root``.

    ``overrides`` are ``"Section.trait": value`` pairs, e.g. ``{"Execute.timeout": 10}``.
    """
    root = Path(root).resolve()
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    cfg.CourseDirectory.root = str(root)
    for key, value in overrides.items():
        section, trait = key.rsplit(".", 1)
        cfg[section][trait] = value
    return cfg


def _venv_on_path() -> None:
    """nbgrader runs ``alembic`` (the gradebook migrations) as a subprocess: find it in our venv.
    Also silences SQLAlchemy 2's ``SAWarning``s about nbgrader 0.9.6's relationships (harmless,
    six of them before every command)."""
    import sys
    import warnings

    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)

    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def make_api(root: Path | str = ROOT, config: Config | None = None, quiet: bool = True):
    """An ``nbgrader.apps.NbGraderAPI`` for the course at ``root``."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _venv_on_path()
    config = config if config is not None else load_config(root)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    if quiet:
        api.log.setLevel(logging.WARNING)
    return api


def gradebook(root: Path | str = ROOT, config: Config | None = None):
    """Open the gradebook (a context manager); the SQLite file is created on first use."""
    from nbgrader.api import Gradebook

    _venv_on_path()
    from nbgrader.coursedir import CourseDirectory

    config = config if config is not None else load_config(root)
    cd = CourseDirectory(config=config)  # applies nbgrader's defaults (db_url, course_id)
    return Gradebook(cd.db_url, cd.course_id)


def resolve_assignments(names) -> list[str]:
    """Map user input (``None``/empty: all; ``a1`` or a full id) to assignment ids."""
    if not names:
        return list(ASSIGNMENTS)
    out = []
    for name in names:
        hits = [a for a in ASSIGNMENTS if a == name or a.split("_")[0] == name]
        if not hits:
            raise SystemExit(f"unknown assignment {name!r}; choose from {', '.join(ASSIGNMENTS)}")
        out.append(hits[0])
    return out


def run(result: dict, what: str) -> dict:
    """Raise with nbgrader's log if an API call failed."""
    if not result.get("success"):
        raise RuntimeError(f"{what} failed:\n{result.get('log', '')}\n{result.get('error', '')}")
    return result


def ensure_in_gradebook(assignments, root: Path | str = ROOT, config: Config | None = None) -> list[str]:
    """Make sure each assignment and its grade cells are in the gradebook (a fresh clone has none).

    Runs ``generate_assignment`` from ``solutions/`` into a throw-away folder, so the committed
    release in ``exercises/`` is untouched. Returns the assignments that had to be added.
    """
    from nbgrader.api import MissingEntry

    config = config if config is not None else load_config(root)
    missing = []
    with gradebook(root, config) as gb:
        for a in assignments:
            try:
                if not gb.find_assignment(a).notebooks:
                    missing.append(a)
            except MissingEntry:
                missing.append(a)
    if missing:
        with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
            cfg = load_config(root, **{"CourseDirectory.release_directory": tmp})
            api = make_api(root, cfg)
            for a in missing:
                run(api.generate_assignment(a, force=True, create=True), f"generate_assignment {a}")
    return missing


@contextlib.contextmanager
def chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
