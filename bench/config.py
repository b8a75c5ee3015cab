"""Knobs shared by every check; ``--quick`` shrinks them for a smoke run."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BenchConfig:
    quick: bool = False
    # in-process loops
    iterations: int = 20_000
    repeats: int = 7
    # HTTP load
    duration_s: float = 8.0
    warmup_s: float = 3.0
    rounds: int = 3  # A B A B ... pairs; medians over rounds
    connections: int = 48
    threads: int = 1
    pin_cpus: bool = True  # server on one core, load generator on the other

    @classmethod
    def create(cls, *, quick: bool, pin_cpus: bool = True) -> BenchConfig:
        if quick:
            return cls(
                quick=True,
                iterations=5_000,
                repeats=5,
                duration_s=2.0,
                warmup_s=1.0,
                rounds=2,
                pin_cpus=pin_cpus,
            )
        return cls(pin_cpus=pin_cpus)

    @property
    def can_pin(self) -> bool:
        return self.pin_cpus and len(os.sched_getaffinity(0)) >= 2
