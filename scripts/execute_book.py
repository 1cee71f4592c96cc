"""Execute the book's chapters in parallel into Jupyter Book's execution cache, then (with
--build) build the site, saying what happens and nothing else.

`jupyter-book build` executes notebooks one after another. On a 2-core machine most of a chapter's
time is kernel start-up and imports, so running two kernels at once nearly halves the clean build.
This script adds every notebook listed in _toc.yml (except the student exercises, which are never
executed) to the jupyter-cache project that myst-nb uses and executes the stale ones two at a
time, printing one line per chapter. The build that follows finds them cached and only renders.
A notebook that fails here is left for the build, which then reports the error itself.

The kernels' own start-up messages (ipykernel's "running over TCP without encryption" warning,
one per kernel) go to _build/.execute-logs/<chapter>.log instead of the terminal. With --build,
the build's output is shown without the same kernel warning and without MyST's configuration dump;
everything else (Sphinx's progress, every warning and error) is shown.

Usage: python scripts/execute_book.py [--build] [BUILD_DIR]   (default: _build, as `jupyter-book build .`)
"""
import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor
from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

ROOT = Path(__file__).resolve().parents[1]
#: Build output that is not the reader's business (each is noise repeated for every kernel or build).
NOISE = re.compile(r"Kernel is running over TCP without encryption|^\S*myst(-nb)? v[\d.]+:\S* \w+ParserConfig\(")


def chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [toc["root"]] + [c["file"] for p in toc["parts"] for c in p["chapters"]]
    for entry in entries:
        path = ROOT / f"{entry}.ipynb"
        if path.exists() and not entry.startswith("exercises/"):
            yield path


def _execute(job):
    """In a worker process: execute one notebook into the cache, the kernel's stderr to a log."""
    data, log = job
    start = time.perf_counter()
    with open(log, "w") as sink:
        os.dup2(sink.fileno(), 2)
        status, uri = ExecutionWorkerLocalMProc()(data)
    return status, uri, time.perf_counter() - start


def execute(build_dir: Path, jobs: int = 2) -> int:
    """Execute the stale chapters; print one line per chapter. Returns the number that failed."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    timeout = config.get("execute", {}).get("timeout", 30)
    # Two kernels share two cores: one BLAS thread each, or they oversubscribe the machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    cache = get_cache(str(build_dir / ".jupyter_cache"))
    paths = list(chapters())
    for path in paths:
        cache.add_nb_to_project(str(path))
    records = load_executor("local-parallel", cache).get_records(None, None, clear_tracebacks=True)
    print(f"Executing chapters: {len(records)} of {len(paths)} changed since the last build "
          f"({jobs} at a time; the others come from the cache).", flush=True)
    logs = build_dir / ".execute-logs"
    logs.mkdir(parents=True, exist_ok=True)
    work = [(ProcessData(r.pk, r.uri, cache, timeout, False), str(logs / f"{Path(r.uri).stem}.log"))
            for r in records]
    failed, start = 0, time.perf_counter()
    width = max((len(Path(r.uri).name) for r in records), default=0)
    if work:
        with multiprocessing.Pool(min(jobs, len(work))) as pool:
            for i, (status, uri, seconds) in enumerate(pool.imap_unordered(_execute, work), 1):
                verdict = "ok" if status == 0 else "FAILED (the build below shows why)"
                failed += status != 0
                print(f"  [{i:2d}/{len(work)}] {Path(uri).name:<{width}}  {seconds:5.1f} s  {verdict}", flush=True)
    print(f"Executed {len(work) - failed}, failed {failed}, in {time.perf_counter() - start:.0f} s.",
          flush=True)
    return failed


def build() -> int:
    """`jupyter-book build . -W -n --keep-going` with the noise filtered out; its exit code."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going"]
    print("Building the website (Sphinx; every warning is an error)...", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    for line in proc.stdout:
        if not NOISE.search(line):
            sys.stdout.write(line)
    return proc.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", nargs="?", type=Path, default=ROOT / "_build")
    parser.add_argument("--build", action="store_true", help="then build the site with jupyter-book")
    args = parser.parse_args(argv)
    execute(args.build_dir)
    return build() if args.build else 0


if __name__ == "__main__":
    sys.exit(main())
