"""OpenAPI documents shaped like seed 002's (Apiture): per-operation ``security`` with an
API key, an access token with scopes, both, or nothing."""

from __future__ import annotations

# Scheme names as Apiture spells them; the gateway goes by their ``type`` only.
BANKING_YAML = """\
openapi: 3.0.3
info: {title: Banking, version: 0.1.0}
servers:
  - url: https://api.example.com/banking
security:
  - apiKey: []
    accessToken: [banking/read]
paths:
  /:
    get:
      security:
        - apiKey: []
  /apiDoc:
    get:
      security: []
  /products:
    get:
      security:
        - {}
  /accounts:
    get: {}
    post:
      security:
        - apiKey: []
          accessToken: [banking/write]
  /accounts/mine:
    get:
      security:
        - accessToken: [banking/read]
  /accounts/{accountId}:
    get:
      security:
        - accessToken: [banking/read]
    delete:
      security:
        - apiKey: []
          accessToken: [banking/write, banking/admin]
  /reports/{year}-{month}.json:
    get:
      security:
        - apiKey: []
  /status:
    get:
      security:
        - apiKey: []
        - accessToken: []
components:
  securitySchemes:
    apiKey:
      type: apiKey
      in: header
      name: API-Key
    accessToken:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: https://auth.example.com/authorize
          tokenUrl: https://auth.example.com/token
          scopes:
            banking/read: Read accounts
            banking/write: Change accounts
            banking/admin: Close accounts
"""


def minimal(paths: dict[str, object], **top: object) -> dict[str, object]:
    """A valid OpenAPI 3.1 document with these paths and top-level fields."""
    document: dict[str, object] = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "token": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            }
        },
    }
    document.update(top)
    return document
