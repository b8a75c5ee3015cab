"""Bodies of the per-key restriction endpoints (CONTRACT §3: TOTP, certificates, signing)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from keyguard.api.schema_base import Strict
from keyguard.keys.schemas import CertificateOut


class TotpEnrolmentOut(BaseModel):
    secret: str = Field(description="Base32 TOTP secret, shown only in this response")
    otpauth_uri: str = Field(description="otpauth://totp/… URI for authenticator apps")
    qr_svg: str = Field(description="The otpauth URI as an inline SVG QR code")


class TotpConfirm(Strict):
    code: str = Field(min_length=1, max_length=16, description="The 6-digit code the app shows")


class CertificateUpload(Strict):
    pem: str = Field(min_length=1, max_length=65_536, description="One PEM CERTIFICATE block")


class CertificateList(BaseModel):
    data: list[CertificateOut]


class SigningSecretOut(BaseModel):
    signing_secret: str = Field(description="Shown only in this response; stored encrypted")
