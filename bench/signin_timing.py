"""Does signing in tell, by its timing, whether an email has an account?

    .venv/bin/python bench/signin_timing.py [--samples 200] [--warmup 10] [--seed N]

``POST /login`` through the real app (``create_asgi`` on a real ``Runtime``, SQLite under a
temp dir, in-process state), called in-process over ``httpx.ASGITransport``: no socket or
TLS, whose jitter would only blur the comparison. Two kinds of attempt:

- **unknown**: an email no account has (a fresh one each time, as someone probing a list
  of addresses would send), with a wrong password;
- **known**: the one account's email with a wrong password.

Both must answer 401 with the same page after the same work: the account look-up, the
throttle, one argon2id verification (against a dummy hash when there is no account), one
audit row. ``--samples`` of each are timed (``perf_counter_ns`` around the request; the
CSRF token is fetched once, outside), in one random interleaved order so drift (CPU
frequency, a noisy neighbour, the audit table growing) falls on both alike; ``--warmup``
of each come first and are not counted. Emails and passwords have the same lengths in
both groups, so the echoed form and the hashed input are the same size.

Throttling: a sample must take the very code path a first wrong guess takes, never the
back-off or lock (429, no hashing). The throttle's counters live in the state stores and,
with in-process state, run on the runtime's clock; it is a ``FrozenClock`` here, moved
``2 x LOCK_WINDOW`` forward before every sample, so every per-account, race-bound and
per-IP window of the previous sample has expired: each sample is a first failure. No
limit is raised and no code is changed. Every answer is checked to be 401 (the script
stops otherwise), so a throttled answer can never be counted.

Printed: per group count, mean, median, p10, p90 and standard deviation (ms); Welch's t
(unequal variances) with its degrees of freedom and a two-sided p-value, and the
two-sample Kolmogorov-Smirnov D with its asymptotic p-value. A small |t| and D with large
p-values mean the measurement found no difference; the standard error of the difference
of means is printed too, as the resolution of this run. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/signin_timing.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from keyguard.accounts.service import init_admin
from keyguard.accounts.throttle import LOCK_WINDOW
from keyguard.app import create_asgi
from keyguard.clock import FrozenClock
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.web.csrf import FIELD

START = 1_800_000_000.0
KNOWN_EMAIL = "bench-owner@example.com"  # local part: 11 characters
KNOWN_PASSWORD = "bench owner's real passphrase"
CLIENT_IP = "198.51.100.23"
_TOKEN = re.compile(rf'name="{FIELD}" value="([^"]+)"')


def unknown_email() -> str:
    return f"u{secrets.token_hex(5)}@example.com"  # 11 characters before the @, as known


def wrong_password() -> str:
    return f"wrong-{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    mean: float
    median: float
    p10: float
    p90: float
    stdev: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        deciles = statistics.quantiles(values, n=10, method="inclusive")
        return cls(
            count=len(values),
            mean=statistics.fmean(values),
            median=statistics.median(values),
            p10=deciles[0],
            p90=deciles[-1],
            stdev=statistics.stdev(values),
        )


# scipy is not installed in this project's environment (and is not worth a dependency for
# two formulas), so both tests are written out here.


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's t for mean(a) - mean(b), its Welch-Satterthwaite degrees of freedom, and a
    two-sided p-value from the normal approximation to Student's t (with hundreds of
    degrees of freedom they differ in the third decimal at most)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df, math.erfc(abs(t) / math.sqrt(2))


def kolmogorov_smirnov(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS: D, the largest gap between the two empirical CDFs, and its
    asymptotic p-value Q_KS(lambda) = 2 sum_k (-1)^(k-1) exp(-2 k^2 lambda^2), with
    Stephens' small-sample correction lambda = (sqrt(n) + 0.12 + 0.11/sqrt(n)) D,
    n = n_a n_b / (n_a + n_b) (Numerical Recipes, ``kstwo``/``probks``)."""
    xs, ys = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(xs) and j < len(ys):
        value = min(xs[i], ys[j])
        while i < len(xs) and xs[i] == value:
            i += 1
        while j < len(ys) and ys[j] == value:
            j += 1
        d = max(d, abs(i / len(xs) - j / len(ys)))
    n = len(xs) * len(ys) / (len(xs) + len(ys))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    total, sign, previous = 0.0, 2.0, 0.0
    for k in range(1, 101):
        term = sign * math.exp(-2 * k * k * lam * lam)
        total += term
        if abs(term) <= 1e-3 * previous or abs(term) <= 1e-8 * total:
            return d, min(1.0, max(0.0, total))
        sign, previous = -sign, abs(term)
    return d, 1.0  # not converged: lambda is tiny, the samples are indistinguishable


async def measure(samples: int, warmup: int, seed: int) -> dict[str, list[float]]:
    """Milliseconds per ``POST /login``, by kind, in one shuffled order."""
    clock = FrozenClock(START)
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-signin-") as tmp:
        runtime = await Runtime.start(Settings(data_dir=Path(tmp)), clock=clock)
        try:
            await init_admin(runtime, email=KNOWN_EMAIL, password=KNOWN_PASSWORD)
            transport = httpx.ASGITransport(app=create_asgi(runtime), client=(CLIENT_IP, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
                # A CSRF token is bound to the browser's cookie and does not expire.
                found = _TOKEN.search((await client.get("/login")).text)
                if found is None:
                    raise RuntimeError("the sign-in page has no CSRF token")
                token = found.group(1)

                async def attempt(kind: str) -> float:
                    clock.advance(2 * LOCK_WINDOW)  # every throttle window has expired
                    email = KNOWN_EMAIL if kind == "known" else unknown_email()
                    form = {FIELD: token, "email": email, "password": wrong_password()}
                    started = time.perf_counter_ns()
                    response = await client.post("/login", data=form)
                    elapsed = (time.perf_counter_ns() - started) / 1e6
                    if response.status_code != 401:
                        raise RuntimeError(f"{kind}: answered {response.status_code}, not 401")
                    return elapsed

                rng = random.Random(seed)
                order = ["unknown", "known"] * warmup
                rng.shuffle(order)
                for kind in order:
                    await attempt(kind)
                order = ["unknown", "known"] * samples
                rng.shuffle(order)
                timings: dict[str, list[float]] = {"unknown": [], "known": []}
                for kind in order:
                    timings[kind].append(await attempt(kind))
                return timings
        finally:
            await runtime.close()


def report(timings: dict[str, list[float]]) -> str:
    unknown, known = timings["unknown"], timings["known"]
    lines = [
        f"{'POST /login (ms)':<34}{'count':>6}{'mean':>9}{'median':>9}"
        f"{'p10':>9}{'p90':>9}{'stdev':>8}"
    ]
    for label, values in (
        ("unknown email, any password", unknown),
        ("known email, wrong password", known),
    ):
        s = Summary.of(values)
        lines.append(
            f"{label:<34}{s.count:>6}{s.mean:>9.2f}{s.median:>9.2f}"
            f"{s.p10:>9.2f}{s.p90:>9.2f}{s.stdev:>8.2f}"
        )
    t, df, p_t = welch(unknown, known)
    d, p_ks = kolmogorov_smirnov(unknown, known)
    diff = statistics.fmean(unknown) - statistics.fmean(known)
    se = math.sqrt(sum(statistics.variance(v) / len(v) for v in (unknown, known)))
    lines += [
        "",
        f"mean(unknown) - mean(known): {diff:+.3f} ms (standard error {se:.3f} ms); "
        f"median difference {statistics.median(unknown) - statistics.median(known):+.3f} ms",
        f"Welch's t = {t:+.3f}, df = {df:.1f}, two-sided p = {p_t:.3f} (normal approximation)",
        f"Kolmogorov-Smirnov D = {d:.4f}, asymptotic p = {p_ks:.3f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=200, help="timed attempts per kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed attempts per kind")
    parser.add_argument("--seed", type=int, default=None, help="seed of the interleaving")
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error("--samples must be at least 2")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    print(
        f"Keyguard sign-in timing: unknown email vs known email + wrong password, "
        f"{args.samples} each (+{args.warmup} warm-up), interleaved at random (seed {seed}), "
        f"in-process ASGI, SQLite, in-process state",
        flush=True,
    )
    timings = asyncio.run(measure(args.samples, args.warmup, seed))
    print(report(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
