"""Book build time: a clean build (empty execution cache, into a temporary --path-output, so the
repository's own _build is untouched) and a rebuild with nothing changed (the cached case)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _build(root: Path, out: Path) -> tuple[float, subprocess.CompletedProcess]:
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb), "build", str(root), "-W", "-n", "--keep-going", "--path-output", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # as `make site` runs it
    t0 = time.perf_counter()
    # as `make site`: chapters executed two at a time into the cache, then the build renders
    subprocess.run([sys.executable, str(root / "scripts" / "execute_book.py"), str(out / "_build")],
                   cwd=root, capture_output=True, env=env)
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, proc


def bench_book(root: Path, keep: bool = False) -> dict:
    """Seconds for a clean build and for an unchanged rebuild, and the number of HTML pages."""
    out = Path(tempfile.mkdtemp(prefix="actgrad-bookbench-"))
    try:
        clean_s, proc = _build(root, out)
        if proc.returncode != 0:
            raise RuntimeError(f"the clean book build failed (exit {proc.returncode}):\n"
                               f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        rebuild_s, proc = _build(root, out)
        if proc.returncode != 0:
            raise RuntimeError(f"the rebuild failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
        html = out / "_build" / "html"
        pages = sum(1 for p in html.rglob("*.html")
                    if not p.relative_to(html).parts[0].startswith("_")
                    and p.name not in {"genindex.html", "search.html", "index.html"})
        return {"clean_s": clean_s, "rebuild_s": rebuild_s, "pages": pages,
                "output": str(out) if keep else None}
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":  # runnable alone: python benchmarks/book.py
    res = bench_book(Path(__file__).resolve().parents[1])
    print(f"book: {res['pages']} pages, clean {res['clean_s']:.1f} s (target <= 180), "
          f"rebuild {res['rebuild_s']:.1f} s (target <= 20)")
