"""Re-sealing every recoverable secret under the current master key (master-key rotation).

Each feature declares its sealed columns (``SEALED`` in its ``models.py``, gathered in
``keyguard.tables``). The job walks each column in primary-key order, a batch per
transaction, and replaces a value only if it is still the one it read (compare-and-set),
so a secret a running server changes meanwhile is never overwritten with an old one.
It is resumable by construction: a value already under the current key is skipped, and
a crash loses at most the batch in flight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyguard.crypto.envelope import DecryptionError, Envelope


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A column of values sealed with the master key, and the associated data (context)
    a row's value was sealed with."""

    row: type[Any]
    column: str
    context: Callable[[Any], str]

    @property
    def name(self) -> str:
        return f"{self.row.__tablename__}.{self.column}"


@dataclass(slots=True)
class ResealReport:
    resealed: int = 0
    # "table.column:primary key" of values no known key opens (never printed with content).
    unopenable: list[str] = field(default_factory=list)


Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def reseal(
    transaction: Transaction,
    envelope: Envelope,
    columns: Sequence[SealedColumn],
    *,
    batch: int = 200,
    progress: Callable[[str, int], None] | None = None,
) -> ResealReport:
    report = ResealReport()
    for sealed in columns:
        attr = getattr(sealed.row, sealed.column)
        pk = inspect(sealed.row).primary_key[0]
        after: Any = None
        while True:
            query = (
                select(sealed.row)
                .where(attr.is_not(None), attr != "", ~attr.startswith(envelope.current_kid + "."))
                .order_by(pk)
                .limit(batch)
            )
            if after is not None:
                query = query.where(pk > after)
            async with transaction() as session:
                rows = list((await session.execute(query)).scalars())
                done = 0
                for row in rows:
                    old = getattr(row, sealed.column)
                    key = getattr(row, pk.key)
                    try:
                        new = envelope.reseal(old, sealed.context(row))
                    except DecryptionError:
                        report.unopenable.append(f"{sealed.name}:{key}")
                        continue
                    if new is None:
                        continue
                    result = await session.execute(
                        update(sealed.row)
                        .where(pk == key, attr == old)
                        .values({sealed.column: new})
                        .execution_options(synchronize_session=False)
                    )
                    done += result.rowcount  # type: ignore[attr-defined]
            report.resealed += done
            if progress is not None and rows:
                progress(sealed.name, done)
            if len(rows) < batch:
                break
            after = getattr(rows[-1], pk.key)
    return report


async def sealed_by_key(
    sessions: async_sessionmaker[AsyncSession], columns: Sequence[SealedColumn]
) -> Counter[str]:
    """How many values each master key id seals (``keyguard master-key status``)."""
    counts: Counter[str] = Counter()
    async with sessions() as session:
        for sealed in columns:
            attr = getattr(sealed.row, sealed.column)
            values = await session.execute(select(attr).where(attr.is_not(None), attr != ""))
            counts.update(value.split(".", 1)[0] for value in values.scalars())
    return counts
