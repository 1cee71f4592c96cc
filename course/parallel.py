"""Autograde submissions in parallel worker processes (``python -m course autograde --jobs N``).

nbgrader grades one submission after another, and most of that time one core waits for a
kernel. Here ``jobs`` worker processes each hold one ``NbGraderAPI`` and take (assignment,
student) pairs from a shared queue, so every submission is still graded by nbgrader's own
``Autograde`` converter (:func:`course.autograde.grade_one`), exactly as in the serial run.

All workers write to the one SQLite gradebook. nbgrader opens it briefly for each write, so
contention is short: every connection waits up to ``BUSY_TIMEOUT`` seconds for the lock (the
``timeout`` of Python's sqlite3), and a submission whose grading still fails on the database is
graded again (up to ``RETRIES`` times). Nothing is merged afterwards, so nothing can be lost in
a merge; ``tests/test_parallel_autograde.py`` checks that the scores equal the serial run's.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

BUSY_TIMEOUT = 120          # seconds a gradebook connection waits for SQLite's write lock
RETRIES = 4                 # extra attempts for a submission that failed on the database
DB_ERRORS = ("database is locked", "error accessing the nbgrader database",
             "OperationalError")

_API = None                 # the worker's NbGraderAPI


def default_jobs() -> int:
    """The number of cores this process may use (the ``--jobs`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def with_busy_timeout(db_url: str, seconds: float = BUSY_TIMEOUT) -> str:
    """``db_url`` with SQLite's lock wait set (SQLAlchemy passes ``timeout`` to sqlite3)."""
    if not db_url.startswith("sqlite:") or "timeout=" in db_url:
        return db_url
    return f"{db_url}{'&' if '?' in db_url else '?'}timeout={seconds:g}"


def worker_config(root, timeout=None, sandbox=False):
    """The configuration one worker grades with: the serial run's, plus the lock wait."""
    from .autograde import grading_config

    cfg = grading_config(root, timeout)
    if sandbox:
        from .sandbox import configure
        configure(cfg, root)
    cfg.CourseDirectory.db_url = with_busy_timeout(cfg.CourseDirectory.db_url)
    return cfg


def _init_worker(root: str, timeout, sandbox: bool) -> None:
    global _API
    from .nbg import make_api

    _API = make_api(root, worker_config(root, timeout, sandbox))


def _grade(assignment: str, student: str, force: bool):
    from .autograde import grade_one

    for attempt in range(RETRIES + 1):
        result = grade_one(_API, assignment, student, force=force or attempt > 0)
        if result.ok or not any(e in result.log for e in DB_ERRORS):
            break
        time.sleep(0.5 * (attempt + 1))
    return result


def grade_parallel(pairs, *, root, jobs: int | None = None, timeout=None, sandbox=False,
                   force=False, progress=True):
    """Grade (assignment, student) ``pairs`` with ``jobs`` worker processes.

    Returns the :class:`course.autograde.GradeResult` list in the order of ``pairs``. The
    gradebook must already hold the assignments (``course.nbg.ensure_in_gradebook``).
    """
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise ValueError(f"grade_parallel: jobs must be >= 1, got {jobs}")
    pairs = list(pairs)
    if not pairs:
        return []
    root = str(Path(root).resolve())
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc=f"autograde x{min(jobs, len(pairs))}", unit="nb",
                   file=sys.stderr)
    results = {}
    ctx = multiprocessing.get_context("spawn")   # no forked zmq/sqlite state in workers
    with ProcessPoolExecutor(min(jobs, len(pairs)), mp_context=ctx, initializer=_init_worker,
                             initargs=(root, timeout, sandbox)) as pool:
        futures = {pool.submit(_grade, a, s, force): (a, s) for a, s in pairs}
        for fut in as_completed(futures):
            a, s = futures[fut]
            results[a, s] = r = fut.result()
            if bar is not None:
                bar.set_postfix_str(f"{a.split('_')[0]} {s}")
                bar.update(1)
                if not r.ok:
                    bar.write(f"FAILED {a} {s}: rerun with -v for nbgrader's log")
    if bar is not None:
        bar.close()
    return [results[p] for p in pairs]
