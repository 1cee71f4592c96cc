"""Autograde submissions in parallel worker processes (``python -m course autograde --jobs N``).

nbgrader grades one submission after another, so a second core mostly idles. Here ``jobs``
worker processes (forked on Linux, so they start with nbgrader already imported) each hold one ``NbGraderAPI`` and take (assignment,
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
from pathlib import Path

BUSY_TIMEOUT = 120          # seconds a gradebook connection waits for SQLite's write lock
RETRIES = 4                 # extra attempts for a submission that failed on the database
DB_ERRORS = ("database is locked", "error accessing the nbgrader database",
             "OperationalError")

_API = None                 # the worker's NbGraderAPI
_INIT_ERROR = None          # or why it could not be made


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


_GRADING = False            # True while the worker grades (Ctrl-C interrupts only then)


def _on_sigint(signum, frame):
    # Ctrl-C reaches the whole process group; the parent stops the pool. A worker idle in the
    # pool's queue must not die with a traceback; one grading stops (its state stays cleared).
    if _GRADING:
        from .autograde import on_sigint
        on_sigint(signum, frame)


def _init_worker(root: str, timeout, sandbox: bool) -> None:
    # never raise here: multiprocessing.Pool would restart a failing worker forever
    global _API, _INIT_ERROR
    import signal
    import warnings
    signal.signal(signal.SIGINT, _on_sigint)   # a Python handler: children exec'd get the default
    try:
        from sqlalchemy.exc import SAWarning
        warnings.filterwarnings("ignore", category=SAWarning)
        from .nbg import make_api

        _API = make_api(root, worker_config(root, timeout, sandbox))
    except Exception:  # reported with every submission this worker takes
        import traceback
        _INIT_ERROR = traceback.format_exc()


def _grade(task):
    global _GRADING
    from .autograde import GradeResult, grade_one

    assignment, student, force = task
    if _INIT_ERROR is not None:
        return GradeResult(assignment, student, False, 0.0, log=f"worker failed:\n{_INIT_ERROR}",
                           reason=f"grading worker failed: {_INIT_ERROR.strip().splitlines()[-1]}")
    _GRADING = True
    try:
        for attempt in range(RETRIES + 1):
            result = grade_one(_API, assignment, student, force=force or attempt > 0)
            if result.ok or not any(e in result.log for e in DB_ERRORS):
                break
            time.sleep(0.5 * (attempt + 1))
    except KeyboardInterrupt:
        return GradeResult(assignment, student, False, 0.0, reason="interrupted", skipped=True)
    finally:
        _GRADING = False
    return result


def _context():
    """fork on Linux: the workers start with nbgrader and the tests' imports already loaded
    (seconds of CPU each under spawn). The pool forks before any other thread, student process
    or database handle exists."""
    if sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


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
    # import (and warm caches) once, here, so forked workers inherit them: nbgrader, and
    # whatever the test cells import (PyTorch for the hidden tests)
    import nbgrader.apps  # noqa: F401
    import nbgrader.converters.autograde  # noqa: F401
    from . import autograde, nbg, student, twoproc  # noqa: F401
    from . import sandbox as sb
    twoproc.preimport(root, sorted({a for a, _ in pairs}))
    sb.allowed_packages()
    student._font_caches()
    if sandbox:
        sb.check_available()
    from .autograde import Interrupted
    results = {}
    tasks = [(a, s, force) for a, s in pairs]
    pool = _context().Pool(min(jobs, len(pairs)), initializer=_init_worker,
                           initargs=(root, timeout, sandbox))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc=f"autograde x{min(jobs, len(pairs))}", unit="nb",
                   file=sys.stderr)
    try:
        for r in pool.imap_unordered(_grade, tasks):
            if r.reason == "interrupted":
                continue
            results[r.assignment, r.student] = r
            if bar is not None:
                bar.set_postfix_str(f"{r.assignment.split('_')[0]} {r.student}")
                bar.update(1)
                if not r.ok:
                    bar.write(f"FAILED {r.reason}")
    except KeyboardInterrupt:
        pool.terminate()    # unfinished submissions keep no state: graded next run
        pool.join()
        raise Interrupted(list(results.values()), [p for p in pairs if p not in results]) from None
    finally:
        if bar is not None:
            bar.close()
    pool.close()            # workers exit normally (and stop their spare student processes)
    pool.join()
    if len(results) < len(pairs):   # a worker was interrupted on its own
        raise Interrupted(list(results.values()), [p for p in pairs if p not in results])
    return [results[p] for p in pairs]
