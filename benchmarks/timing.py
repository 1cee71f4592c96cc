"""Timing helpers for the benchmarks: side-by-side rounds and the BLAS/thread set-up."""
from __future__ import annotations

import os
import statistics
import time


def blas_info() -> dict:
    """numpy's BLAS (library, kernel, threads) and the OpenBLAS environment variables in force."""
    import numpy  # noqa: F401  (threadpoolctl sees numpy's BLAS only once it is loaded)

    info = {"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                info.update(blas=pool.get("internal_api"), blas_version=pool.get("version"),
                            blas_kernel=pool.get("architecture"), blas_threads=pool.get("num_threads"))
                break
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, say so
        info["blas"] = "unknown (threadpoolctl missing)"
    return info


def set_threads(n: int | None = None) -> int:
    """Give numpy's BLAS and PyTorch the same number of threads: ``n``, or by default as many as
    numpy's BLAS has. Returns that number. (On a loaded machine, ``n=1`` gives steadier ratios.)"""
    import torch

    if n is None:
        n = blas_info().get("blas_threads") or os.cpu_count() or 1
    else:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=int(n), user_api="blas")
    torch.set_num_threads(int(n))
    return int(n)


CLOCK = {"wall": time.perf_counter, "cpu": time.thread_time}
_clock = CLOCK["wall"]


def use_clock(name: str) -> None:
    """``wall`` (default) or ``cpu``: the calling thread's CPU time. With one thread for numpy and
    torch alike, all the work runs in the calling thread, so ``cpu`` ignores time spent waiting
    for a core on a loaded machine (cache effects of other processes remain)."""
    global _clock
    _clock = CLOCK[name]


def side_by_side(fns: dict, rounds: int = 15, min_time: float = 0.05) -> dict:
    """Time several callables in interleaved rounds (a, b, a, b, ...), so that both see the same
    machine load. Each round runs a callable ``k`` times (``k`` chosen so that a round lasts at least
    ``min_time``) and records the mean; returns name -> {"best", "median"} seconds per call.
    """
    calls = {}
    for name, fn in fns.items():  # warm up, and pick the number of calls per round
        fn()
        t0 = _clock()
        fn()
        one = max(_clock() - t0, 1e-7)
        calls[name] = max(1, int(min_time / one))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            k = calls[name]
            t0 = _clock()
            for _ in range(k):
                fn()
            samples[name].append((_clock() - t0) / k)
    return {name: {"best": min(s), "median": statistics.median(s)} for name, s in samples.items()}
