"""Per-key TOTP, client certificates and signing secrets (CONTRACT §3), root key only.

Responses that carry a secret are sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from keyguard.api.deps import ContextDep, Manager
from keyguard.keys import service as keys
from keyguard.keys.routes import certificate_out, key_out
from keyguard.keys.schemas import CertificateOut, KeyOut
from keyguard.restrictions import service as restrictions
from keyguard.restrictions.schemas import (
    CertificateList,
    CertificateUpload,
    SigningSecretOut,
    TotpConfirm,
    TotpEnrolmentOut,
)

router = APIRouter(tags=["restrictions"])

_NO_STORE = {"Cache-Control": "no-store"}


@router.post("/v1/keys/{key_id}/totp", response_model=TotpEnrolmentOut)
async def start_totp(
    key_id: str, response: Response, rt: ContextDep, caller: Manager
) -> TotpEnrolmentOut:
    """Start TOTP enrolment: scan the QR code, then confirm with a code."""
    enrolment = await restrictions.start_totp(rt, key_id, actor=caller.actor)
    response.headers.update(_NO_STORE)
    return TotpEnrolmentOut(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post("/v1/keys/{key_id}/totp/confirm", response_model=KeyOut)
async def confirm_totp(key_id: str, body: TotpConfirm, rt: ContextDep, caller: Manager) -> KeyOut:
    """Turn TOTP on. A wrong code is 422 ``totp_invalid`` (the body is wrong, not the caller)."""
    await restrictions.confirm_totp(rt, key_id, body.code, actor=caller.actor)
    return key_out(await keys.get_key(rt, key_id))


@router.delete("/v1/keys/{key_id}/totp", status_code=status.HTTP_204_NO_CONTENT)
async def disable_totp(key_id: str, rt: ContextDep, caller: Manager) -> Response:
    await restrictions.disable_totp(rt, key_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/keys/{key_id}/certificates",
    status_code=status.HTTP_201_CREATED,
    response_model=CertificateOut,
)
async def add_certificate(
    key_id: str, body: CertificateUpload, rt: ContextDep, caller: Manager
) -> CertificateOut:
    cert = await restrictions.add_certificate(rt, key_id, body.pem, actor=caller.actor)
    return certificate_out(cert)


@router.get("/v1/keys/{key_id}/certificates", response_model=CertificateList)
async def list_certificates(key_id: str, rt: ContextDep, _: Manager) -> CertificateList:
    certs = await restrictions.list_certificates(rt, key_id)
    return CertificateList(data=[certificate_out(c) for c in certs])


@router.delete(
    "/v1/keys/{key_id}/certificates/{fingerprint}", status_code=status.HTTP_204_NO_CONTENT
)
async def remove_certificate(
    key_id: str, fingerprint: str, rt: ContextDep, caller: Manager
) -> Response:
    await restrictions.remove_certificate(rt, key_id, fingerprint, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/keys/{key_id}/signing-secret",
    status_code=status.HTTP_201_CREATED,
    response_model=SigningSecretOut,
)
async def set_signing_secret(
    key_id: str, response: Response, rt: ContextDep, caller: Manager
) -> SigningSecretOut:
    """A new signing secret (shown once); every request with the key must then be signed."""
    secret = await restrictions.set_signing_secret(rt, key_id, actor=caller.actor)
    response.headers.update(_NO_STORE)
    return SigningSecretOut(signing_secret=secret)


@router.delete("/v1/keys/{key_id}/signing-secret", status_code=status.HTTP_204_NO_CONTENT)
async def remove_signing_secret(key_id: str, rt: ContextDep, caller: Manager) -> Response:
    await restrictions.remove_signing_secret(rt, key_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
