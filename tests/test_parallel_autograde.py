"""Parallel autograding (``course.parallel``): same scores as the serial run, nothing lost.

The expected scores come from how each submission was written (independent of the grader);
serial and parallel runs grade separate copies of one scratch course.
"""
from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

import scratch_course as sc
from course import parallel
from course.autograde import autograde

# nbgrader 0.9.6 + SQLAlchemy 2 warn (SAWarning, a RuntimeWarning) on every new submission.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

# student -> (add body, part2 body, expected {grade cell: points})
SUBMISSIONS = {
    "full": ("    return a + b", '    return "ok"', {"test_add": 1.0, "test_part2": 1.0}),
    "add_wrong": ("    return a * b", '    return "ok"', {"test_add": 0.0, "test_part2": 1.0}),
    "part2_wrong": ("    return b + a", '    return "no"', {"test_add": 1.0, "test_part2": 0.0}),
    "zero": ("    return 0", "    return None", {"test_add": 0.0, "test_part2": 0.0}),
    "raises": ("    raise ValueError(a)", '    return "o" + "k"', {"test_add": 0.0, "test_part2": 1.0}),
    "syntax": ("    return a +", '    return "ok"', {"test_add": 0.0, "test_part2": 1.0}),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = sc.build(tmp_path_factory.mktemp("parallel") / "template")
    for student, (add, part2, _) in SUBMISSIONS.items():
        sc.submit(root, student, add_body=add, part2_body=part2)
    return root


@pytest.mark.slow
def test_parallel_scores_equal_serial(template, tmp_path):
    serial_root = sc.copy_course(template, tmp_path / "serial")
    parallel_root = sc.copy_course(template, tmp_path / "parallel")
    serial = autograde([sc.A], root=serial_root, jobs=1, sandbox=False, progress=False)
    par = autograde([sc.A], root=parallel_root, jobs=2, sandbox=False, progress=False)

    assert [(r.student, r.ok) for r in par] == [(r.student, r.ok) for r in serial]
    assert all(r.ok for r in par), [r.log for r in par if not r.ok]
    expected = {s: exp for s, (_, _, exp) in SUBMISSIONS.items()}
    assert sc.scores(serial_root) == expected
    assert sc.scores(parallel_root) == expected
    assert {r.student: r.score for r in par} == {s: sum(e.values()) for s, e in expected.items()}
    # every row is there exactly once: 6 submissions x 2 grade cells, no duplicates
    with sqlite3.connect(parallel_root / "gradebook.db") as db:
        assert db.execute("SELECT count(*) FROM submitted_assignment").fetchone()[0] == 6
        assert db.execute("SELECT count(*) FROM grade").fetchone()[0] == 12
        assert db.execute("SELECT count(DISTINCT student_id) FROM submitted_assignment"
                          ).fetchone()[0] == 6


def _hammer(db_url: str, prefix: str, n: int) -> None:
    from nbgrader.api import Gradebook

    for i in range(n):
        with Gradebook(parallel.with_busy_timeout(db_url), "scratch") as gb:
            gb.update_or_create_student(f"{prefix}{i}", first_name=prefix)
            gb.update_or_create_submission(sc.A, f"{prefix}{i}")


@pytest.mark.slow
def test_concurrent_gradebook_writes_lose_nothing(template, tmp_path):
    """Three processes add submissions to one gradebook at once, as grading workers do."""
    root = sc.copy_course(template, tmp_path / "course")
    url = f"sqlite:///{root / 'gradebook.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(url, p, 25)) for p in ("x", "y", "z")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with sqlite3.connect(root / "gradebook.db") as db:
        assert db.execute("SELECT count(*) FROM submitted_assignment").fetchone()[0] == 75
        assert db.execute("SELECT count(*) FROM grade").fetchone()[0] == 150


def test_busy_timeout_url():
    assert parallel.with_busy_timeout("sqlite:////c/gradebook.db", 60) == \
        "sqlite:////c/gradebook.db?timeout=60"
    assert parallel.with_busy_timeout("sqlite:////c/g.db?mode=rw", 5) == "sqlite:////c/g.db?mode=rw&timeout=5"
    assert parallel.with_busy_timeout("sqlite:////c/g.db?timeout=3") == "sqlite:////c/g.db?timeout=3"
    assert parallel.with_busy_timeout("postgresql://h/db") == "postgresql://h/db"


def test_jobs_validation():
    assert parallel.default_jobs() >= 1
    with pytest.raises(ValueError, match="jobs"):
        parallel.grade_parallel([(sc.A, "x")], root=".", jobs=0)
    assert parallel.grade_parallel([], root=".", jobs=2) == []
