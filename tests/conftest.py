"""Shared fixtures. Append new fixtures below; do not rewrite others' fixtures."""
import fcntl
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def root():
    """The repository root (the course directory)."""
    return ROOT


@pytest.fixture(scope="session")
def built_site():
    """Build the whole website once per test run, as the README's build command does.

    Returns the path of ``_build/html``; the Chinese site is built too, into ``_build/html/zh``
    (scripts/i18n.py build). The build fails the requesting tests on any warning
    (``-W``) or failing cell (``raise_on_error``). Under pytest-xdist every worker has its own
    session, and ``xdist_group`` does not keep tests on one worker with pytest 9 (xdist 3.8 renames
    ``item._nodeid``, which pytest 9 no longer reads), so the workers share one build through a
    lock file: the first builds, the others wait and reuse its result (or its failure).
    """
    build = ROOT / "_build"
    build.mkdir(exist_ok=True)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    result = build / ".test-build-result"
    with open(build / ".test-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result.exists() and result.read_text().startswith(run_id + "\n"):
            status, _, log = result.read_text()[len(run_id) + 1:].partition("\n")
        else:
            status, log = _build_site()
            result.write_text(f"{run_id}\n{status}\n{log}")
    if status != "ok":
        pytest.fail(f"jupyter-book build failed ({status}):\n{log}")
    return build / "html"


def _build_site():
    cmd = [str(BIN / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going"]
    # MPLBACKEND is dropped: Agg, for one, would keep the notebooks' inline figures out of the
    # pages (and out of the shared execution cache).
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    # As `make site`: execute the chapters two at a time into the cache, then build.
    subprocess.run([sys.executable, str(ROOT / "scripts" / "execute_book.py")], cwd=ROOT,
                   capture_output=True, env=env)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return f"exit {proc.returncode}", f"{proc.stdout[-8000:]}\n{proc.stderr[-8000:]}"
    # As `make site`: then the Chinese site into _build/html/zh (same notebooks, same execution
    # cache, -W -n --keep-going too); the English pages link to it.
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "i18n.py"), "build"], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return f"Chinese build: exit {proc.returncode}", f"{proc.stdout[-8000:]}\n{proc.stderr[-8000:]}"
    return "ok", ""


@pytest.fixture
def strict_numerics():
    """Every warning is an error and NumPy raises on overflow, invalid values and division by zero
    (use with ``pytestmark = pytest.mark.usefixtures("strict_numerics")``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield
