"""``keyguard serve --workers N``: N processes accepting on the same sockets.

The parent binds the sockets, forks the workers (before it starts any thread or event
loop of its own) and then only supervises: a SIGINT or SIGTERM it receives goes to every
worker, which finishes its requests and exits; if a worker dies on its own, the others
are stopped too and the parent exits with the worker's status, so a supervisor such as
systemd or Kubernetes sees the failure and restarts the whole service.

State must be shared the way several instances share it (CONTRACT §11): rate limits,
replay caches and TOTP steps in Redis. Embedded mode keeps them in the process, where N
workers would each count on their own (N times the rate limit, a signature accepted once
per worker), so ``--workers`` above 1 without ``KEYGUARD_REDIS_URL`` is refused.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from types import FrameType

from keyguard.cli._config import ConfigurationError
from keyguard.settings import Settings

WORKERS_NEED_REDIS = (
    "--workers {n} needs KEYGUARD_REDIS_URL: rate limits, replay caches and TOTP steps must "
    "be shared by the worker processes, and without Redis each would keep its own (N times "
    "the rate limit, a signature or TOTP code accepted once per worker). Set "
    "KEYGUARD_REDIS_URL, or run one worker"
)


def check_shared_state(settings: Settings, workers: int) -> None:
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    if workers > 1 and not settings.redis_url:
        raise ConfigurationError(WORKERS_NEED_REDIS.format(n=workers))


def supervise(workers: int, work: Callable[[], None]) -> int:
    """Run ``work`` in ``workers`` forked processes until they exit; returns the exit
    status for this process (0 when every worker stopped cleanly)."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=work, name=f"keyguard-worker-{i}") for i in range(workers)]
    stopping = False

    def stop(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, sig)  # a second SIGINT forces, as with one process

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        status = 0
        while any(process.is_alive() for process in processes):
            for process in processes:
                process.join(timeout=0.5)
                if process.exitcode is not None and process.exitcode != 0 and not stopping:
                    # One worker failed on its own: stop the rest, report its status.
                    status = process.exitcode if process.exitcode > 0 else 1
                    stop(signal.SIGTERM, None)
        for process in processes:
            if status == 0 and process.exitcode not in (0, None):
                status = process.exitcode if process.exitcode > 0 else 1
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
