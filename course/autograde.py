"""``autograde``: grade every submission of one or all assignments, headless, with progress.

Each submission is graded by nbgrader's own ``Autograde`` converter (through ``NbGraderAPI``), one
(assignment, student) pair at a time, so one broken submission never stops the batch. nbgrader's
``Execute`` step is replaced by :class:`TwoProcessExecute`: the student's cells run in a student
process (sandboxed: ``course.sandbox``), the test cells here (``course.twoproc``); a student
process that hangs or dies fails the remaining tests of its own submission only.
:func:`grade_one` grades a single submission, so a parallel runner (``course.parallel``) calls it
per worker.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from . import ROOT
from .sandbox import Limits
from .nbg import ensure_in_gradebook, gradebook, load_config, make_api, resolve_assignments


class TwoProcessExecute(Execute):
    """nbgrader's ``Execute`` step, done in two processes (``course.twoproc``).

    The submission's own cells run in a student process (``sandbox``: in bubblewrap); the test
    cells (grade cells that are not answer cells, whose source is the gradebook's) run here,
    in the grading process, and their outputs (an error output iff the test failed) are what
    nbgrader's ``SaveAutoGrades`` scores. ``Execute.timeout`` is the time limit per cell.
    """

    sandbox = Bool(False, help="run the student process in bubblewrap").tag(config=True)
    limit_memory = Integer(Limits.memory).tag(config=True)
    limit_processes = Integer(Limits.processes).tag(config=True)
    limit_cpu_seconds = Integer(Limits.cpu_seconds).tag(config=True)
    limit_file_size = Integer(Limits.file_size).tag(config=True)
    limit_open_files = Integer(Limits.open_files).tag(config=True)
    limit_tmp_size = Integer(Limits.tmp_size).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        from .scrub import BEGIN
        from .twoproc import run_notebook

        tests = trusted_tests(resources["nbgrader"])
        limits = Limits(**{f: getattr(self, f"limit_{f}") for f in Limits.__dataclass_fields__})
        workdir = resources.get("metadata", {}).get("path") or None
        run_notebook(nb, lambda cell: is_test_cell(cell, tests), files_from=workdir,
                     timeout=self.timeout or 30, sandbox=self.sandbox, limits=limits,
                     startup_timeout=self.startup_timeout,
                     withhold=lambda cell: BEGIN in cell.source,   # a hidden test out of place
                     spare=True)
        return nb, resources


def trusted_tests(info: dict) -> dict[str, str]:
    """{grade_id: source} of the notebook's test cells, as the gradebook holds them."""
    from nbgrader.api import Gradebook

    with Gradebook(info["db_url"]) as gb:
        nb = gb.find_notebook(info["notebook"], info["assignment"])
        graded = {c.name for c in nb.grade_cells if c.cell_type == "code"}
        answers = {c.name for c in nb.solution_cells}
        return {c.name: c.source for c in nb.source_cells
                if c.name in graded - answers and c.cell_type == "code"}


def is_test_cell(cell, tests: dict[str, str]) -> bool:
    """A test cell runs in the grader only if it is exactly one of the instructor's tests."""
    meta = cell.metadata.get("nbgrader", {})
    return (cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")
            and tests.get(meta.get("grade_id")) == cell.source)


@dataclass
class GradeResult:
    assignment: str
    student: str
    ok: bool
    seconds: float
    score: float | None = None
    max_score: float | None = None
    log: str = ""


def submissions(root: Path | str = ROOT, assignments=None, students=None) -> list[tuple[str, str]]:
    """(assignment, student) pairs found under ``submitted/<student>/<assignment>/``."""
    root = Path(root)
    pairs = []
    for a in resolve_assignments(assignments):
        for d in sorted((root / "submitted").glob(f"*/{a}")):
            s = d.parent.name
            if d.is_dir() and (not students or s in students) and any(d.glob("*.ipynb")):
                pairs.append((a, s))
    return pairs


def grading_config(root: Path | str = ROOT, timeout: int | None = None):
    """The configuration autograde runs with: the course's, with :class:`TwoProcessExecute`."""
    from nbgrader.converters.autograde import Autograde

    overrides = {}
    if timeout is not None:
        overrides["Execute.timeout"] = timeout
    cfg = load_config(root, **overrides)
    pre = [TwoProcessExecute if p is Execute else p
           for p in Autograde.class_traits()["autograde_preprocessors"].default()]
    cfg.Autograde.autograde_preprocessors = pre
    return cfg


def score_of(root, assignment: str, student: str, config=None):
    """(score, max_score) of one submission from the gradebook, or (None, None)."""
    from nbgrader.api import MissingEntry

    with gradebook(root, config) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None, None
        return sub.score, sub.max_score


def grade_one(api, assignment: str, student: str, force: bool = False) -> GradeResult:
    """Autograde one submission with an existing API object; never raises on a bad submission."""
    root = api.coursedir.root
    t0 = time.perf_counter()
    res = api.autograde(assignment, student, force=force, create=True)
    seconds = time.perf_counter() - t0
    ok = bool(res.get("success"))
    graded = (Path(root) / "autograded" / student / assignment).is_dir()
    score, max_score = score_of(root, assignment, student, api.config) if ok and graded else (None, None)
    if not ok:
        score = None
    log = (res.get("log", "") + res.get("error", "")) if not ok else ""
    return GradeResult(assignment, student, ok and graded, seconds, score, max_score, log)


def autograde(assignments=None, students=None, *, root: Path | str = ROOT, jobs: int = 1,
              sandbox: bool = False, progress: bool = True, force: bool = False,
              timeout: int | None = None) -> list[GradeResult]:
    """Grade the submissions of ``assignments`` (default all) by ``students`` (default all).

    Already-graded submissions are skipped unless they changed since, or ``force``. A failed
    submission is reported (``ok=False``, nbgrader's log in ``.log``) and grading goes on.
    ``sandbox`` runs every student process in bubblewrap (``course.sandbox``); ``jobs`` > 1 grades
    in that many worker processes (``course.parallel``; ``None``: one per core).
    """
    root = Path(root).resolve()
    assignments = resolve_assignments(assignments)
    pairs = submissions(root, assignments, students)
    cfg = grading_config(root, timeout)
    if sandbox:
        from .sandbox import configure
        configure(cfg, root)
    ensure_in_gradebook(sorted({a for a, _ in pairs}), root, cfg)
    if pairs:   # the grading process imports what the tests import once, not per submission
        from .twoproc import preimport
        preimport(root, sorted({a for a, _ in pairs}))
    if jobs is None:
        from .parallel import default_jobs
        jobs = default_jobs()
    if jobs > 1 and len(pairs) > 1:
        from .parallel import grade_parallel
        return grade_parallel(pairs, root=root, jobs=jobs, timeout=timeout, sandbox=sandbox,
                              force=force, progress=progress)
    api = make_api(root, cfg)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc="autograde", unit="nb", file=sys.stderr)
    results = []
    for a, s in pairs:
        if bar is not None:
            bar.set_postfix_str(f"{a.split('_')[0]} {s}")
        r = grade_one(api, a, s, force=force)
        results.append(r)
        if bar is not None:
            bar.update(1)
            if not r.ok:
                bar.write(f"FAILED {a} {s}: see the log above / `python -m course autograde -v`")
    if bar is not None:
        bar.close()
    return results


def format_results(results) -> str:
    lines = [f"{'assignment':28} {'student':16} {'score':>12} {'time':>7}"]
    for r in results:
        score = f"{r.score:g}/{r.max_score:g}" if r.score is not None else "FAILED"
        lines.append(f"{r.assignment:28} {r.student:16} {score:>12} {r.seconds:6.1f}s")
    return "\n".join(lines)
