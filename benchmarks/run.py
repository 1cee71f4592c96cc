"""Benchmarks: actgrad against PyTorch, the book build, and autograding. Prints tables and writes
``benchmarks/results.json``. Every figure is a ratio of two timings taken side by side in the same
run; targets are reported, never asserted (speed is not a test).

Usage (from the repository root):
    .venv/bin/python benchmarks/run.py              # MLP step + activations (about a minute)
    .venv/bin/python benchmarks/run.py --book       # + clean and cached book builds (minutes)
    .venv/bin/python benchmarks/run.py --grading    # + autograding vs bare nbclient execution
    .venv/bin/python benchmarks/run.py --only book  # just one group: mlp, act, book, grading or check
    .venv/bin/python benchmarks/run.py --only check # the students' course-check on a solved a1 (seconds)
    .venv/bin/python benchmarks/run.py --all        # everything
    .venv/bin/python benchmarks/run.py --only mlp --against 9fbd031 --threads 1 --clock cpu
                                                    # + the MLP step of actgrad at another git revision,
                                                    #   in the same rounds ("no slower than before")
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

TARGETS = {"mlp_vs_torch": 1.0, "mlp_vs_floor": 1.25, "book_clean_s": 180.0, "book_rebuild_s": 20.0,
           "grading_ratio": 1.3, "check_s": 3.0, "per_minute": 100.0}


def table(rows, columns, title):
    """A plain-text table: columns is a list of (key, header, format)."""
    cells = [[fmt.format(r[key]) if r.get(key) is not None else "-" for key, _, fmt in columns]
             for r in rows]
    heads = [h for _, h, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(heads)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(heads, widths)))
    out = [f"\n## {title}", line, "-" * len(line)]
    for c in cells:
        out.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths))))
    return "\n".join(out)


def flag(value, target):
    return "ok" if value <= target else "OVER"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--book", action="store_true", help="also time a clean and a cached book build")
    ap.add_argument("--grading", action="store_true", help="also time autograding vs bare execution")
    ap.add_argument("--all", action="store_true", help="run every group")
    ap.add_argument("--only", choices=["mlp", "act", "book", "grading", "check"], action="append",
                    help="run only these groups (repeatable)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds (default 15)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for numpy's BLAS and torch alike (default: numpy's BLAS count)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time (default) or the thread's CPU time (steadier on a busy machine; "
                         "meaningful with --threads 1 only)")
    ap.add_argument("--against", metavar="REV",
                    help="also time the MLP step of actgrad at this git revision (commit, tag, branch)")
    ap.add_argument("--submissions", type=int, default=3, help="submissions to grade (default 3)")
    ap.add_argument("--batch", type=int, default=100,
                    help="submissions in the throughput batch (default 100; 0: skip)")
    ap.add_argument("--json", default=str(HERE / "results.json"), help="where to write the results")
    args = ap.parse_args(argv)

    groups = set(args.only or ["mlp", "act"])
    if args.all:
        groups |= {"mlp", "act", "book", "grading"}
    if args.book:
        groups.add("book")
    if args.grading:
        groups.add("grading")

    if args.against and "mlp" not in groups:
        ap.error("--against times the MLP step: run the mlp group too")
    from timing import blas_info
    results = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": {
        "python": platform.python_version(), "cpus": os.cpu_count(), "processor": platform.processor(),
        **blas_info()}, "targets": TARGETS}
    m = results["machine"]
    print(f"machine: {m['cpus']} cpus, numpy BLAS {m.get('blas')} {m.get('blas_version')} "
          f"kernel {m.get('blas_kernel')} threads {m.get('blas_threads')}; "
          f"OPENBLAS_CORETYPE={m['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE={m['OPENBLAS_L2_SIZE']}")

    if groups & {"mlp", "act"}:
        import torch
        from timing import set_threads, use_clock
        if args.clock == "cpu" and args.threads != 1:
            ap.error("--clock cpu needs --threads 1 (other threads' work would not be counted)")
        use_clock(args.clock)
        results["machine"]["clock"] = args.clock
        results["machine"]["torch"] = torch.__version__
        results["machine"]["threads"] = set_threads(args.threads)
        print(f"numpy BLAS and torch both use {results['machine']['threads']} thread(s)")
        import kernels

    if "mlp" in groups:
        before = kernels.package_at(args.against, ROOT) if args.against else None
        rows = kernels.bench_mlp(rounds=args.rounds, before=before)
        for r in rows:
            r["vs_torch"] = flag(r["ratio_vs_torch"], TARGETS["mlp_vs_torch"])
            r["vs_floor"] = flag(r["ratio_vs_floor"], TARGETS["mlp_vs_floor"])
        results["mlp"] = rows
        print(table(rows, [("case", "MLP forward+backward step (float32, softmax-CE)", "{}"),
                           ("actgrad_ms", "actgrad ms", "{:.3f}"), ("torch_ms", "torch ms", "{:.3f}"),
                           ("ratio_vs_torch", "actgrad/torch", "{:.2f}"), ("vs_torch", "<=1.0", "{}"),
                           ("matmul_floor_ms", "matmul floor ms", "{:.3f}"),
                           ("ratio_vs_floor", "actgrad/floor", "{:.2f}"), ("vs_floor", "<=1.25", "{}"),
                           ("matmul_gflops", "GFLOP/s", "{:.0f}")],
                    "MLP step: actgrad vs PyTorch and vs the matmul floor (best of rounds)"))
        if before is not None:
            results["mlp_against"] = args.against
            print(table(rows, [("case", f"MLP step: now vs actgrad at {args.against}", "{}"),
                               ("before_ms", "before ms", "{:.3f}"), ("actgrad_ms", "now ms", "{:.3f}"),
                               ("ratio_before_vs_torch", "before/torch", "{:.2f}"),
                               ("ratio_vs_torch", "now/torch", "{:.2f}"),
                               ("ratio_vs_before", "now/before", "{:.3f}"),
                               ("ratio_vs_before_median", "(median)", "{:.3f}")],
                        "MLP step: now against an earlier revision, same rounds (best of rounds)"))

    if "act" in groups:
        rows = kernels.bench_activations(rounds=max(5, args.rounds * 2 // 3))
        results["activations"] = rows
        print(table(rows, [("activation", "activation (10^6 float32)", "{}"),
                           ("fwd_actgrad_ms", "f actgrad ms", "{:.2f}"), ("fwd_torch_ms", "f torch ms", "{:.2f}"),
                           ("fwd_ratio", "f ratio", "{:.2f}"),
                           ("bwd_actgrad_ms", "f' actgrad ms", "{:.2f}"),
                           ("bwd_torch_ms", "backward torch ms", "{:.2f}"), ("bwd_ratio", "f' ratio", "{:.2f}")],
                    "Activations: actgrad f(x), f'(x) vs torch forward, autograd backward (best of rounds)"))

    if "book" in groups:
        import book
        res = book.bench_book(ROOT)
        res["clean_ok"] = flag(res["clean_s"], TARGETS["book_clean_s"])
        res["rebuild_ok"] = flag(res["rebuild_s"], TARGETS["book_rebuild_s"])
        results["book"] = res
        print(table([res], [("pages", "book build (jupyter-book, -W -n)", "{} pages"),
                            ("clean_s", "clean s", "{:.1f}"), ("clean_ok", "<=180", "{}"),
                            ("rebuild_s", "rebuild s", "{:.1f}"), ("rebuild_ok", "<=20", "{}")],
                    "Book build: clean (empty cache, temp output) and unchanged rebuild"))

    if "check" in groups:
        import grading
        res = grading.bench_check(ROOT)
        res["ok"] = flag(res["check_s"], TARGETS["check_s"])
        results["check"] = res
        print(table([res], [("what", "self-check", "{}"), ("check_s", "median s", "{:.2f}"),
                            ("check_min_s", "min s", "{:.2f}"), ("check_runs", "runs", "{}"),
                            ("ok", f"<={TARGETS['check_s']:g} s", "{}")],
                    "Self-check time: course-check on a solved a1, a fresh process each run"))
    if "grading" in groups:
        import grading
        res = grading.bench_grading(ROOT, n=args.submissions, batch=args.batch)
        results["grading"] = res
        rows = [{"mode": "serial (course.autograde)", "s": res["autograde_s"], "ratio": res["ratio"]}]
        if res.get("sandbox_s") is not None:
            rows.append({"mode": "serial, sandboxed (bwrap)", "s": res["sandbox_s"], "ratio": res["sandbox_ratio"]})
        rows.append({"mode": f"parallel, {res['parallel_jobs']} workers (wall/n)",
                     "s": res["parallel_wall_per_submission_s"], "ratio": res["parallel_ratio"]})
        for r in rows:
            r["bare"] = res["bare_s"]
            r["ok"] = flag(r["ratio"], TARGETS["grading_ratio"])
        print(table(rows, [("mode", f"autograde {res['assignment']} ({res['submissions']} submissions)", "{}"),
                           ("s", "s/submission", "{:.2f}"), ("bare", "bare nbclient s", "{:.2f}"),
                           ("ratio", "ratio", "{:.2f}"), ("ok", "<=1.3", "{}")],
                    "Autograding vs executing the same notebook bare with nbclient (median)"))
        print(f"(bare = the notebook as graded, hidden tests included; the student's notebook alone "
              f"runs in {res['bare_student_s']:.2f} s)")
        extra = [{"what": f"python -m course check (solved {res['assignment']}, fresh process)",
                  "value": f"{res['check_s']:.2f} s", "ok": flag(res["check_s"], TARGETS["check_s"])}]
        if res.get("batch"):
            extra.append({"what": f"autograde throughput, batch of {res['batch']} "
                                  f"({'sandboxed' if res['batch_sandboxed'] else 'unsandboxed'})",
                          "value": f"{res['batch_per_minute']:.0f} /min",
                          "ok": flag(-res["batch_per_minute"], -TARGETS["per_minute"])})
        print(table(extra, [("what", "measure", "{}"), ("value", "value", "{}"),
                            ("ok", f"target: check <= {TARGETS['check_s']:g} s, >= "
                                   f"{TARGETS['per_minute']:g}/min", "{}")],
                    "Self-check time and grading throughput"))

    Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
