"""``python -m course <command>``: the course's student and instructor commands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import ASSIGNMENTS, ROOT

HELP = f"""\
Student (from any folder, once `pip install -e .` has installed the course):
  python -m course check NOTEBOOK.ipynb        same as: course-check NOTEBOOK.ipynb
  course-check --copy a1 ~/work                a working copy outside exercises/
Instructor (run from the course repository):
  python -m course release [A ...]             regenerate exercises/ from solutions/
  python -m course collect A SOURCE            SOURCE: folder of <student>_<A>.ipynb files or LMS zip
  python -m course autograde [A ...] [-s S]    grade every submission (headless, with progress;
                                               sandboxed, in parallel: -j N, --no-sandbox)
  python -m course feedback [A ...] [-s S]     HTML feedback without hidden tests -> feedback/
  python -m course grades                      grades.csv, grades_by_question.csv, grades.png
  python -m course roster FILE.csv             students' names/emails (columns id, first_name,
                                               last_name, email) into the gradebook
Assignments: {", ".join(ASSIGNMENTS)} (or a1 ... a4); none given = all.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course", description=__doc__, epilog=HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=ROOT, help="course directory (default: this repo)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="self-check a notebook: run it, exit 1 if a visible test fails")
    c.add_argument("notebooks", nargs="+", type=Path)
    c.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")

    r = sub.add_parser("release", help="regenerate exercises/<A>/ from solutions/<A>/")
    r.add_argument("assignments", nargs="*")
    r.add_argument("--no-db", action="store_true", help="do not touch the gradebook")

    co = sub.add_parser("collect", help="place submissions into submitted/<student>/<A>/")
    co.add_argument("assignment")
    co.add_argument("source", type=Path)
    co.add_argument("--regexp", help="named regexp with student_id and file_id groups")

    a = sub.add_parser("autograde", help="grade submissions headless")
    a.add_argument("assignments", nargs="*")
    a.add_argument("-s", "--student", action="append", help="only this student (repeatable)")
    a.add_argument("--force", action="store_true", help="re-grade already graded submissions")
    a.add_argument("--timeout", type=int, help="seconds per cell (default: nbgrader_config.py)")
    a.add_argument("-v", "--verbose", action="store_true", help="print nbgrader's log of failures")
    a.add_argument("-j", "--jobs", type=int, default=None,
                   help="grade in N worker processes (default: one per core)")
    a.add_argument("--no-sandbox", action="store_true",
                   help="run student code with your own permissions (default: in bubblewrap)")

    f = sub.add_parser("feedback", help="per-student HTML feedback without hidden tests")
    f.add_argument("assignments", nargs="*")
    f.add_argument("-s", "--student", action="append")

    ro = sub.add_parser("roster", help="import students' names and emails from a CSV file")
    ro.add_argument("file", type=Path)

    g = sub.add_parser("grades", help="export grades (CSV) and a per-question figure (PNG)")
    g.add_argument("--csv", type=Path, help="default: grades.csv")
    g.add_argument("--by-question", type=Path, help="default: grades_by_question.csv")
    g.add_argument("--figure", type=Path, help="default: grades.png")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    root = args.root.resolve()
    from .nbg import resolve_assignments

    if args.command == "check":
        from .check import check
        return check(args.notebooks, args.timeout)

    if args.command == "release":
        from .release import release
        for nb in release(resolve_assignments(args.assignments), root, db=not args.no_db):
            print(f"released {nb.relative_to(root)}")
        return 0

    if args.command == "collect":
        from .collect import collect
        [assignment] = resolve_assignments([args.assignment])
        found = collect(assignment, args.source, root=root, regexp=args.regexp)
        print(f"{len(found)} submission(s) of {assignment} in submitted/")
        return 0

    if args.command == "autograde":
        from .autograde import Interrupted, autograde, format_results
        from .sandbox import announce
        if args.jobs is not None and args.jobs < 1:
            print(f"autograde: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
            return 2
        try:
            results = autograde(args.assignments, args.student, root=root, force=args.force,
                                timeout=args.timeout, jobs=args.jobs,
                                sandbox=announce(disabled=args.no_sandbox))
        except Interrupted as stop:
            print(stop.summary(), file=sys.stderr)
            return 130
        except KeyboardInterrupt:
            print("interrupted before grading started: nothing graded, nothing changed",
                  file=sys.stderr)
            return 130
        print(format_results(results))
        failed = [r for r in results if not r.ok]
        if args.verbose:
            for r in failed:
                print(f"\n===== {r.assignment} {r.student} =====\n{r.log}")
        for r in failed:
            print(f"NOT GRADED {r.reason}", file=sys.stderr)
        if failed:
            print(f"{len(failed)} submission(s) could not be graded (no score; `grades` marks them "
                  "'not gradable'); fix the named files, then collect and autograde again "
                  "(-v: nbgrader's log).", file=sys.stderr)
        return 1 if failed else 0

    if args.command == "feedback":
        from .feedback import feedback
        written, failed = feedback(args.assignments, args.student, root=root)
        print(f"{len(written)} feedback file(s) in feedback/ (hidden tests removed)")
        for a, s, why in failed:
            print(f"FAILED feedback {a} {s}: {why}", file=sys.stderr)
        return 1 if failed else 0

    if args.command == "roster":
        from .roster import import_roster
        ids = import_roster(args.file, root, warn=lambda line: print(line, file=sys.stderr))
        print(f"{len(ids)} student(s) in the gradebook's roster")
        return 0

    if args.command == "grades":
        from .grades import export
        for path in export(root, args.csv, args.by_question, args.figure):
            print(f"wrote {path}")
        return 0
    return 2
