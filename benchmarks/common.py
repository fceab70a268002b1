"""Helpers for the benchmarks: the machine's matmul GFLOP/s, FLOP counting, ratio tables."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of float32 GEMM throughput at the current thread count, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def train_step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of ``step`` (forward + backward + optimizer), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step()
    return fc.get_total_flops()


def median_of(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    print(f"\n{title}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r) + " |")
