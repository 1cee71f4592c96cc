"""Shared fixtures. Append new fixtures below; do not rewrite others' fixtures."""
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
    """Build the whole website once per test session, as the README's build command does.

    Tests that use it must carry ``@pytest.mark.xdist_group("site")`` so that one pytest-xdist
    worker builds it and runs them all. Returns the path of ``_build/html``. The build fails the
    requesting tests on any warning (``-W``) or failing cell (``raise_on_error``).
    """
    cmd = [str(BIN / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going"]
    # MPLBACKEND is dropped: Agg, for one, would keep the
    # notebooks' inline figures out of the pages (and out of the shared execution cache).
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    # As `make site`: execute the chapters two at a time into the cache, then build.
    subprocess.run([sys.executable, str(ROOT / "scripts" / "execute_book.py")], cwd=ROOT,
                   capture_output=True, env=env)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        pytest.fail(f"jupyter-book build failed (exit {proc.returncode}):\n"
                    f"{proc.stdout[-8000:]}\n{proc.stderr[-8000:]}")
    return ROOT / "_build" / "html"


@pytest.fixture
def strict_numerics():
    """Every warning is an error and NumPy raises on overflow, invalid values and division by zero
    (use with ``pytestmark = pytest.mark.usefixtures("strict_numerics")``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield
