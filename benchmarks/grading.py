"""Autograding cost per submission against executing the same notebook bare with nbclient.

"Bare" is nbclient executing, in a fresh kernel, the very notebook nbgrader executed (the
submission with the hidden tests restored, taken from autograded/); the student's own notebook
(no hidden tests) is timed too, for reference.

A throw-away copy of the course (nbgrader_config.py, course/, solutions/ and the release of one
assignment) is set up in a temporary folder, with ``n`` correct submissions: the released student
notebook whose answer cells hold the instructor's solution (markers removed). Each submission is
then, in alternation, executed bare (nbclient, fresh kernel) and autograded through the course's
own code (``course.autograde.grade_one``, i.e. nbgrader's Autograde converter), serially; then,
where bubblewrap works, in the sandbox (``course.sandbox``); then all at once with the parallel
runner (``course.parallel``, one worker per core). Then ``python -m course check`` on a solved
notebook (a fresh process each time, as a student runs it), and the throughput of the
instructor's ``autograde`` on a batch of ``batch`` correct submissions (submissions per minute).

Grading runs the student's cells in a student process and the tests in the grading process
(``course.twoproc``), which imports the tests' modules (PyTorch) once, not once per submission.
"""
from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nbformat

SOLUTION = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def solved_submission(release_nb, source_nb):
    """The release notebook with each answer cell replaced by the solution (markers stripped)."""
    answers = {c.metadata["nbgrader"]["grade_id"]: SOLUTION.sub("", c.source)
               for c in source_nb.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(release_nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            cell.source = answers[gid]
    return nb


def scratch_course(root: Path, assignment: str, n: int) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="actgrad-gradebench-"))
    shutil.copy(root / "nbgrader_config.py", tmp)
    shutil.copytree(root / "course", tmp / "course", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("solutions", "exercises"):
        shutil.copytree(root / folder / assignment, tmp / folder / assignment)
    name = f"{assignment}.ipynb"
    source = nbformat.read(root / "solutions" / assignment / name, as_version=4)
    release = nbformat.read(root / "exercises" / assignment / name, as_version=4)
    sub = solved_submission(release, source)
    for k in range(n):
        dest = tmp / "submitted" / f"student{k:02d}" / assignment
        dest.mkdir(parents=True)
        nbformat.write(sub, dest / name)
    return tmp


def bare_execute(path: Path, timeout: int) -> float:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - t0


def check_times(tmp: Path, assignment: str, runs: int = 3) -> dict:
    """``python -m course check`` on a solved student notebook, end to end (a new process)."""
    nb = next((tmp / "submitted").iterdir()) / assignment / f"{assignment}.ipynb"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "course", "check", str(nb)], cwd=tmp,
                              capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"course check failed:\n{proc.stdout}\n{proc.stderr}")
    return {"check_s": statistics.median(times), "check_runs": runs}


def bench_check(root: Path, assignment: str = "a1_activation_derivatives", runs: int = 5) -> dict:
    """``course-check`` (the installed console script) on a solved ``assignment`` from the
    notebook's own folder, a fresh process each run, as a student runs it."""
    exe = Path(sys.executable).with_name("course-check")
    tmp = scratch_course(root, assignment, 1)
    try:
        nb = next((tmp / "submitted").iterdir()) / assignment / f"{assignment}.ipynb"
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            proc = subprocess.run([str(exe), nb.name], cwd=nb.parent, capture_output=True, text=True,
                                  timeout=600)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise RuntimeError(f"course-check failed:\n{proc.stdout}\n{proc.stderr}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"what": f"course-check {assignment}.ipynb (solved)", "check_s": statistics.median(times),
            "check_min_s": min(times), "check_runs": runs}


def throughput(tmp: Path, assignment: str, batch: int, sandbox: bool) -> dict:
    """Submissions per minute for ``batch`` correct submissions graded by the instructor's
    ``course.autograde.autograde`` (one worker per core, sandboxed where bwrap works)."""
    from course.autograde import autograde

    name = f"{assignment}.ipynb"
    model = next((tmp / "submitted").iterdir()) / assignment / name
    for k in range(batch):
        dest = tmp / "submitted" / f"batch{k:03d}" / assignment
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(model, dest / name)
    students = [f"batch{k:03d}" for k in range(batch)]
    t0 = time.perf_counter()
    results = autograde([assignment], students, root=tmp, jobs=None, sandbox=sandbox, progress=False)
    wall = time.perf_counter() - t0
    bad = [r for r in results if not r.ok or r.score != r.max_score]
    if bad:
        raise RuntimeError(f"{len(bad)} of the batch were not graded in full: {bad[0].log[-2000:]}")
    return {"batch": batch, "batch_wall_s": wall, "batch_per_minute": 60 * batch / wall,
            "batch_sandboxed": sandbox}


def bench_grading(root: Path, n: int = 3, assignment: str | None = None, keep: bool = False,
                  batch: int = 100) -> dict:
    sys.path.insert(0, str(root))
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy noise
    from course import ASSIGNMENTS
    from course.autograde import grade_one, grading_config
    from course.nbg import ensure_in_gradebook, make_api

    if assignment is None:
        assignment = next(a for a in ASSIGNMENTS if (root / "solutions" / a).is_dir())
    tmp = scratch_course(root, assignment, n)
    try:
        cfg = grading_config(tmp)
        timeout = int(cfg.Execute.timeout) if "timeout" in cfg.Execute else 30
        ensure_in_gradebook([assignment], tmp, cfg)
        api = make_api(tmp, cfg)
        students = sorted(p.name for p in (tmp / "submitted").iterdir())
        name = f"{assignment}.ipynb"
        from course.sandbox import check_available, configure
        sandbox_ok, why = check_available()
        sapi = make_api(tmp, configure(grading_config(tmp), tmp)) if sandbox_ok else None
        bare, bare_student, graded, sandboxed, scores = [], [], [], [], []
        for s in students:  # interleaved, so that every mode sees the same machine load
            bare_student.append(bare_execute(tmp / "submitted" / s / assignment / name, timeout))
            r = grade_one(api, assignment, s, force=True)
            if not r.ok:
                raise RuntimeError(f"autograde failed for {s}:\n{r.log[-3000:]}")
            graded.append(r.seconds)
            scores.append((r.score, r.max_score))
            # The notebook nbgrader executed (hidden tests restored), executed bare: the same cells.
            bare.append(bare_execute(tmp / "autograded" / s / assignment / name, timeout))
            if sapi is not None:
                r = grade_one(sapi, assignment, s, force=True)
                if not r.ok:
                    raise RuntimeError(f"sandboxed autograde failed for {s}:\n{r.log[-3000:]}")
                sandboxed.append(r.seconds)
        res = {"assignment": assignment, "submissions": n,
               "bare_s": statistics.median(bare), "bare_student_s": statistics.median(bare_student),
               "autograde_s": statistics.median(graded),
               "ratio": statistics.median(graded) / statistics.median(bare),
               "scores": scores}
        if sandboxed:
            res["sandbox_s"] = statistics.median(sandboxed)
            res["sandbox_ratio"] = res["sandbox_s"] / res["bare_s"]
        else:
            res["sandbox_s"] = None
            res["sandbox_skipped"] = why

        from course.parallel import default_jobs, grade_parallel
        jobs = default_jobs()
        t0 = time.perf_counter()
        pres = grade_parallel([(assignment, s) for s in students], root=tmp, jobs=jobs,
                              force=True, progress=False)
        wall = time.perf_counter() - t0
        if not all(r.ok for r in pres):
            raise RuntimeError("parallel autograde failed:\n" + "\n".join(r.log[-2000:] for r in pres))
        res.update(parallel_jobs=jobs, parallel_wall_per_submission_s=wall / n,
                   parallel_ratio=wall / n / res["bare_s"])
        res.update(check_times(tmp, assignment))
        if batch:
            res.update(throughput(tmp, assignment, batch, sandbox_ok))
        return res
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # runnable alone: python benchmarks/grading.py [n]
    out = bench_grading(Path(__file__).resolve().parents[1], n=int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    print(out)
