"""The audit log (CONTRACT §10): a project's events; the whole log's checkpoints, signing
keys and Merkle proofs."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from keyguard.api.deps import ContextDep, Manager, RootOnly
from keyguard.api.schema_base import SQL_BIGINT_MAX
from keyguard.audit import checkpoints
from keyguard.audit import service as audit
from keyguard.audit.errors import ProofRangeInvalid
from keyguard.projects import service as projects

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    data: list[AuditEventOut]
    next_after: int | None


@router.get("/v1/projects/{project_id}/audit", response_model=AuditPage)
async def project_audit(
    project_id: str,
    rt: ContextDep,
    _: Manager,
    after: int = Query(
        default=0, ge=0, le=SQL_BIGINT_MAX, description="Return events with seq greater than this"
    ),
    limit: int = Query(default=100, ge=1, le=500),
) -> AuditPage:
    await projects.get_project(rt, project_id)  # 404 for an unknown project
    async with rt.sessions() as session:
        events = await audit.project_events(session, project_id, after=after, limit=limit)
    return AuditPage(
        data=[
            AuditEventOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                data=e.data,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in events
        ],
        next_after=events[-1].seq if len(events) == limit else None,
    )


# ---- the log as a Merkle tree: checkpoints, keys, proofs (CONTRACT §10) ----


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SigningKeyOut(BaseModel):
    key_id: str  # the signed note's key hash, hex
    name: str  # the log's origin
    public_key: str  # base64 of the raw Ed25519 key
    verifier_key: str  # name+hash+base64, the form note verifiers take
    created_at: datetime
    retired_at: datetime | None
    current: bool

    @classmethod
    def of(cls, key: checkpoints.PublicKey, *, current: bool) -> SigningKeyOut:
        return cls(
            key_id=key.key_id,
            name=key.verifier.name,
            public_key=_b64(key.verifier.public_key),
            verifier_key=str(key.verifier),
            created_at=key.created_at,
            retired_at=key.retired_at,
            current=current,
        )


class SigningKeys(BaseModel):
    keys: list[SigningKeyOut]


class InclusionProofOut(BaseModel):
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    proof: list[str]


class ConsistencyProofOut(BaseModel):
    from_size: int = Field(serialization_alias="from")
    to_size: int = Field(serialization_alias="to")
    from_root: str
    to_root: str
    proof: list[str]


_CHECKPOINT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/plain": {}},
        "description": "A C2SP tlog-checkpoint signed note (origin, tree size, root hash).",
    }
}


@router.get("/v1/audit/checkpoint", response_class=PlainTextResponse, responses=_CHECKPOINT_DOC)
async def audit_checkpoint(rt: ContextDep, _: RootOnly) -> PlainTextResponse:
    signed = await checkpoints.sign_current(rt)
    return PlainTextResponse(signed.note, media_type="text/plain; charset=utf-8")


@router.get("/v1/audit/keys", response_model=SigningKeys)
async def audit_keys(rt: ContextDep) -> SigningKeys:
    """The checkpoints' public keys, retired ones included. Public: no credential."""
    keys = await checkpoints.public_keys(rt)
    return SigningKeys(keys=[SigningKeyOut.of(k, current=k.retired_at is None) for k in keys])


@router.post("/v1/audit/keys/rotate", response_model=SigningKeyOut, status_code=201)
async def rotate_audit_key(rt: ContextDep, principal: RootOnly) -> SigningKeyOut:
    key = await checkpoints.rotate_key(rt, actor=principal.actor)
    return SigningKeyOut.of(key, current=True)


_SIZE = Query(default=None, ge=1, le=SQL_BIGINT_MAX, description="Tree size (default: now)")


async def _size(rt: ContextDep, size: int | None) -> int:
    current = await checkpoints.tree_size(rt)
    if size is None:
        size = current
    if size > current:
        raise ProofRangeInvalid(f"the log has {current} events")
    return size


@router.get("/v1/audit/proofs/inclusion", response_model=InclusionProofOut)
async def inclusion_proof(
    rt: ContextDep,
    _: RootOnly,
    seq: int = Query(ge=1, le=SQL_BIGINT_MAX, description="The event's sequence number"),
    size: int | None = _SIZE,
) -> InclusionProofOut:
    tree_size = await _size(rt, size)
    if seq > tree_size:
        raise ProofRangeInvalid(f"event {seq} is not in a tree of {tree_size} events")
    leaf, root, path = await checkpoints.inclusion_proof(rt, seq - 1, tree_size)
    return InclusionProofOut(
        seq=seq,
        leaf_index=seq - 1,
        tree_size=tree_size,
        leaf_hash=_b64(leaf),
        root_hash=_b64(root),
        proof=[_b64(p) for p in path],
    )


@router.get("/v1/audit/proofs/consistency", response_model=ConsistencyProofOut)
async def consistency_proof(
    rt: ContextDep,
    _: RootOnly,
    from_size: int = Query(alias="from", ge=1, le=SQL_BIGINT_MAX),
    to_size: int | None = Query(default=None, alias="to", ge=1, le=SQL_BIGINT_MAX),
) -> ConsistencyProofOut:
    to = await _size(rt, to_size)
    if from_size > to:
        raise ProofRangeInvalid(f"a tree of {from_size} events cannot precede one of {to}")
    first, second, proof = await checkpoints.consistency_proof(rt, from_size, to)
    return ConsistencyProofOut(
        from_size=from_size,
        to_size=to,
        from_root=_b64(first),
        to_root=_b64(second),
        proof=[_b64(p) for p in proof],
    )
