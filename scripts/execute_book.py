"""Execute the book's chapters in parallel into Jupyter Book's execution cache.

`jupyter-book build` executes notebooks one after another. On a 2-core machine most of a chapter's
time is kernel start-up and imports, so running two kernels at once nearly halves the clean build.
This script adds every notebook listed in _toc.yml (except the student exercises, which are never
executed) to the jupyter-cache project that myst-nb uses, and executes the stale ones with
jupyter-cache's parallel executor. The build that follows finds them cached and only renders.
A notebook that fails here is simply left for the build, which then reports the error itself.

Usage: python scripts/execute_book.py [BUILD_DIR]   (default: _build, as `jupyter-book build .`)
"""
import logging
import os
import sys
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]


def chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [toc["root"]] + [c["file"] for p in toc["parts"] for c in p["chapters"]]
    for entry in entries:
        path = ROOT / f"{entry}.ipynb"
        if path.exists() and not entry.startswith("exercises/"):
            yield path


def main(build_dir: Path) -> int:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    timeout = config.get("execute", {}).get("timeout", 30)
    # Two kernels share two cores: one BLAS thread each, or they oversubscribe the machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    cache = get_cache(str(build_dir / ".jupyter_cache"))
    for path in chapters():
        cache.add_nb_to_project(str(path))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = load_executor("local-parallel", cache, logger=logging.getLogger("execute_book")) \
        .run_and_cache(timeout=timeout)
    print(f"executed {len(result.succeeded)}, failed {len(result.errored) + len(result.excepted)} "
          "(failures are re-run and reported by the build)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build"))
