"""Sandbox overhead and parallel speed-up of the instructor's autograde (course.sandbox/.parallel).

1. Overhead: ``n`` correct submissions of one assignment, each graded twice in alternation,
   without and with the bubblewrap sandbox (nbgrader's Autograde via ``grade_one``, serial);
   overhead = median(sandboxed) / median(plain) - 1, per submission. Target <= 10 %.
2. Speed-up: ``m`` submissions (default 40) graded by ``autograde(jobs=1)`` and by
   ``autograde(jobs=2)`` (sandboxed where available) in two copies of the course; wall times
   include starting the workers. Target >= 1.7x on 2 cores.

Usage: .venv/bin/python benchmarks/autograde_overhead.py [--n 8] [--m 40]
Numbers depend on the machine's load: the load average is recorded next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]


def machine() -> dict:
    return {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                         if l.startswith("model name")), platform.processor()),
            "python": platform.python_version(), "kernel": platform.release(),
            "loadavg_before": os.getloadavg()}


def overhead(n: int = 8, assignment: str | None = None) -> dict:
    from grading import scratch_course          # benchmarks/grading.py: a solved copy of the course
    from course import ASSIGNMENTS
    from course.autograde import grade_one, grading_config
    from course.nbg import ensure_in_gradebook, make_api
    from course.sandbox import check_available, configure

    ok, why = check_available()
    if not ok:
        return {"skipped": why}
    assignment = assignment or next(a for a in ASSIGNMENTS if (ROOT / "solutions" / a).is_dir())
    tmp = scratch_course(ROOT, assignment, n)
    try:
        ensure_in_gradebook([assignment], tmp, grading_config(tmp))
        plain = make_api(tmp, grading_config(tmp))
        boxed = make_api(tmp, configure(grading_config(tmp), tmp))
        times = {"plain": [], "sandbox": []}
        scores = {"plain": [], "sandbox": []}
        students = sorted(p.name for p in (tmp / "submitted").iterdir())
        for k, s in enumerate(students):          # alternate which mode goes first
            order = ("plain", "sandbox") if k % 2 == 0 else ("sandbox", "plain")
            for mode in order:
                r = grade_one(plain if mode == "plain" else boxed, assignment, s, force=True)
                if not r.ok:
                    raise RuntimeError(f"{mode} autograde failed for {s}:\n{r.log[-3000:]}")
                times[mode].append(r.seconds)
                scores[mode].append(r.score)
        med = {m: statistics.median(t) for m, t in times.items()}
        return {"assignment": assignment, "submissions": n,
                "plain_median_s": med["plain"], "sandbox_median_s": med["sandbox"],
                "overhead": med["sandbox"] / med["plain"] - 1,
                "scores_identical": scores["plain"] == scores["sandbox"],
                "plain_s": times["plain"], "sandbox_s": times["sandbox"]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def speedup(m: int = 40, jobs: int = 2, assignment: str | None = None) -> dict:
    from grading import scratch_course
    from course import ASSIGNMENTS
    from course.autograde import autograde, grading_config
    from course.nbg import ensure_in_gradebook
    from course.sandbox import check_available

    sandbox = check_available()[0]
    assignment = assignment or next(a for a in ASSIGNMENTS if (ROOT / "solutions" / a).is_dir())
    wall, scores, dirs = {}, {}, []
    try:
        for j in (1, jobs):
            tmp = scratch_course(ROOT, assignment, m)
            dirs.append(tmp)
            ensure_in_gradebook([assignment], tmp, grading_config(tmp))
            t0 = time.perf_counter()
            res = autograde([assignment], root=tmp, jobs=j, sandbox=sandbox, progress=False)
            wall[j] = time.perf_counter() - t0
            if not all(r.ok for r in res):
                raise RuntimeError(f"jobs={j}: " + "\n".join(r.log[-2000:] for r in res if not r.ok))
            scores[j] = [(r.student, r.score) for r in res]
        return {"assignment": assignment, "submissions": m, "jobs": jobs, "sandbox": sandbox,
                "serial_s": wall[1], "parallel_s": wall[jobs],
                "speedup": wall[1] / wall[jobs], "scores_identical": scores[1] == scores[jobs]}
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8, help="submissions for the overhead (default 8)")
    ap.add_argument("--m", type=int, default=40, help="submissions for the speed-up (default 40)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-speedup", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    out = {"machine": machine(), "overhead": overhead(args.n)}
    o = out["overhead"]
    if "overhead" in o:
        print(f"sandbox overhead: {o['overhead']:+.1%} per submission "
              f"({o['plain_median_s']:.2f} s plain, {o['sandbox_median_s']:.2f} s sandboxed, "
              f"median of {o['submissions']}; target <= +10%)")
    if not args.skip_speedup:
        out["speedup"] = s = speedup(args.m, args.jobs)
        print(f"parallel: {s['submissions']} submissions, jobs=1 {s['serial_s']:.1f} s, "
              f"jobs={s['jobs']} {s['parallel_s']:.1f} s: {s['speedup']:.2f}x (target >= 1.7x), "
              f"sandbox={s['sandbox']}, same scores: {s['scores_identical']}")
    out["machine"]["loadavg_after"] = os.getloadavg()
    path = HERE / "results-autograde.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"machine: {out['machine']}\nwrote {path.relative_to(ROOT)}")
    return out


if __name__ == "__main__":
    main()
