"""Request and response bodies of the OAuth apps API (CONTRACT §8)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from keyguard.api.schema_base import DomainEntry, Name, Scope, Strict, unique
from keyguard.oauth.apps import AppSpec, AppView
from keyguard.oauth.redirects import check_registered

RedirectUri = Annotated[str, Field(max_length=2000), AfterValidator(check_registered)]
RoleName = Literal["owner", "admin", "developer", "viewer"]


class _AppFields(Strict):
    @model_validator(mode="after")
    def _roles_grant_app_scopes(self) -> Any:
        scopes = getattr(self, "scopes", None)
        role_scopes = getattr(self, "role_scopes", None)
        if scopes is not None and role_scopes:
            for role, granted in role_scopes.items():
                extra = sorted(set(granted) - set(scopes))
                if extra:
                    raise ValueError(
                        f"role_scopes.{role} names scopes the app does not have: "
                        + ", ".join(extra)
                    )
        return self


class OAuthAppCreate(_AppFields):
    name: Name
    public: bool = False
    redirect_uris: Annotated[list[RedirectUri], Field(max_length=20), AfterValidator(unique)] = (
        Field(default_factory=list)
    )
    allowed_domains: Annotated[
        list[DomainEntry], Field(max_length=1000), AfterValidator(unique)
    ] = Field(default_factory=list)
    scopes: Annotated[list[Scope], Field(max_length=100), AfterValidator(unique)] = Field(
        default_factory=list
    )
    role_scopes: dict[RoleName, list[Scope]] = Field(default_factory=dict)

    def spec(self) -> AppSpec:
        """The service's spec (the API and the dashboard both register apps through it)."""
        return AppSpec(
            name=self.name,
            public=self.public,
            redirect_uris=tuple(self.redirect_uris),
            allowed_domains=tuple(self.allowed_domains),
            scopes=tuple(self.scopes),
            role_scopes={k: tuple(v) for k, v in self.role_scopes.items()},
        )


class OAuthAppUpdate(_AppFields):
    name: Name | None = None
    redirect_uris: Annotated[
        list[RedirectUri] | None, Field(max_length=20), AfterValidator(unique)
    ] = None
    allowed_domains: Annotated[
        list[DomainEntry] | None, Field(max_length=1000), AfterValidator(unique)
    ] = None
    scopes: Annotated[list[Scope] | None, Field(max_length=100), AfterValidator(unique)] = None
    role_scopes: dict[RoleName, list[Scope]] | None = None

    def changes(self) -> dict[str, Any]:
        """Field -> new value, for the fields sent (what ``update_app`` takes)."""
        out: dict[str, Any] = {}
        for field in self.model_fields_set:
            value = getattr(self, field)
            if value is None:
                continue
            if field == "role_scopes":
                value = {k: tuple(v) for k, v in value.items()}
            elif isinstance(value, list):
                value = tuple(value)
            out[field] = value
        return out


class SecretRotate(Strict):
    grace_seconds: int = Field(default=0, ge=0, le=7 * 86_400)


class OAuthAppOut(BaseModel):
    id: str
    project_id: str
    client_id: str
    name: str
    public: bool
    redirect_uris: list[str]
    allowed_domains: list[str]
    scopes: list[str]
    role_scopes: dict[str, list[str]]
    created_at: datetime
    updated_at: datetime
    previous_secret_until: datetime | None

    @classmethod
    def of(cls, view: AppView) -> OAuthAppOut:
        return cls.model_validate(view, from_attributes=True)


class OAuthAppCreated(OAuthAppOut):
    client_secret: str | None = Field(description="Confidential apps only; shown once, never again")
