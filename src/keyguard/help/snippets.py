"""The code of the Help > Security article (CONTRACT §12): commands and receivers that
work against this server as configured, its address and its header prefix.

Code is code: it is never translated (the prose around it is, from the catalogs). The
webhook verifiers are run by the tests exactly as the page serves them, against real
deliveries signed by :mod:`keyguard.webhooks.signing`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Markers replaced by this server's values; they appear nowhere else in the code.
_URL = "{URL}"
_PREFIX = "{P}"
_KEY = "{KEY}"
_KEY_ID = "{KEY_ID}"

_REQUEST = f"""curl -X POST {_URL}/v1/sessions \\
  -H "Authorization: Bearer {_KEY}" \\
  -H "Content-Type: application/json" \\
  -d '{{ "delivery_mode": "poll" }}'"""

_TOTP = f"""curl -X POST {_URL}/v1/sessions \\
  -H "Authorization: Bearer {_KEY}" \\
  -H "X-{_PREFIX}-TOTP: 123456" \\
  -H "Content-Type: application/json" \\
  -d '{{ "delivery_mode": "webhook", "webhook_url": "https://your-app.example/webhook" }}'"""

_MTLS_CERTIFICATE = """# A self-signed certificate is fine: Keyguard pins its SHA-256 fingerprint.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\
  -keyout client.key -out client.crt -days 365 -subj "/CN=my-service\""""

_MTLS = f"""# cURL with client certificate
curl -X POST {_URL}/v1/sessions \\
  --cert client.crt \\
  --key client.key \\
  -H "Authorization: Bearer {_KEY}" \\
  -H "Content-Type: application/json" \\
  -d '{{ "delivery_mode": "webhook", "webhook_url": "https://your-app.example/webhook" }}'"""

_SIGNING_RULE = f"""X-{_PREFIX}-Signature: sha256=hex(HMAC-SHA256(signing_secret,
    METHOD + PATH_WITH_QUERY + BODY + TIMESTAMP))
X-{_PREFIX}-Timestamp: TIMESTAMP   (Unix seconds, within 300 s of the server's clock)"""

_SIGNING = f"""KEY_ID="{_KEY_ID}"           # the key's public id, not the whole key
SIGNING_SECRET="$KEYGUARD_SIGNING_SECRET"  # from Request signing, shown once
METHOD="POST"
PATH_WITH_QUERY="/v1/sessions"
BODY='{{"delivery_mode":"poll"}}'
TIMESTAMP="$(date +%s)"
SIGNATURE="$(printf '%s' "$METHOD$PATH_WITH_QUERY$BODY$TIMESTAMP" \\
  | openssl dgst -sha256 -hmac "$SIGNING_SECRET" | awk '{{print $NF}}')"

curl -X "$METHOD" "{_URL}$PATH_WITH_QUERY" \\
  -H "X-API-Key: $KEY_ID" \\
  -H "X-{_PREFIX}-Timestamp: $TIMESTAMP" \\
  -H "X-{_PREFIX}-Signature: sha256=$SIGNATURE" \\
  -H "Content-Type: application/json" \\
  --data-raw "$BODY\""""

_SESSION_PASSWORD = f"""curl -X POST {_URL}/v1/sessions \\
  -H "Authorization: Bearer {_KEY}" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "delivery_mode": "webhook",
    "webhook_url": "https://your-app.example/webhook",
    "password": "claim-4521-pin"
  }}'"""

_SESSION_UPLOAD = f"""# The end user: no API key, the session's password instead.
curl -X POST {_URL}/v1/sessions/SESSION_ID/photos \\
  -H "X-{_PREFIX}-Session-Password: claim-4521-pin" \\
  -F "file=@photo.jpg\""""

WEBHOOK_PYTHON = '''import base64
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 5 * 60


def verify_webhook(body: bytes, headers, secret: str) -> bool:
    """True if a Keyguard delivery is genuine and recent (Standard Webhooks).

    body: the raw request body, before any JSON parsing.
    headers: the request headers (case-insensitive, or with lower-case names).
    secret: the project's webhook secret, "whsec_...".
    """
    msg_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    if not msg_id or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False  # too old (or from the future): a replay
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # Several signatures during a secret rotation: any one of them may match.
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


# With Flask, for example:
#   if not verify_webhook(request.get_data(), request.headers, WEBHOOK_SECRET):
#       abort(401)'''

WEBHOOK_NODE = """const crypto = require("node:crypto");

const TOLERANCE_SECONDS = 5 * 60;

// True if a Keyguard delivery is genuine and recent (Standard Webhooks).
// body: the raw body (a Buffer); headers: Node's lower-case request headers;
// secret: the project's webhook secret, "whsec_...".
function verifyWebhook(body, headers, secret) {
  const id = headers["webhook-id"] || "";
  const timestamp = headers["webhook-timestamp"] || "";
  const signatures = headers["webhook-signature"] || "";
  if (!id || !/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
    return false; // too old (or from the future): a replay
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest();
  // Several signatures during a secret rotation: any one of them may match.
  return signatures.split(" ").some((candidate) => {
    const [version, signature] = candidate.split(",");
    if (version !== "v1" || !signature) return false;
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

// In your Express handler (express.raw keeps the exact bytes that were signed):
app.post("/webhook", express.raw({ type: "*/*" }), (req, res) => {
  if (!verifyWebhook(req.body, req.headers, process.env.WEBHOOK_SECRET)) {
    return res.status(401).send("Invalid signature");
  }
  // Safe to process...
  res.status(200).end();
});"""


@dataclass(frozen=True, slots=True)
class Snippets:
    """Every code block of the article, for one server's address and header prefix."""

    request: str
    totp: str
    mtls_certificate: str
    mtls: str
    signing_rule: str
    signing: str
    session_password: str
    session_upload: str
    webhook_python: str
    webhook_node: str


def for_server(base_url: str, header_prefix: str, key_prefix: str) -> Snippets:
    """The article's code for a server at ``base_url`` (no trailing slash) whose headers
    are ``X-{header_prefix}-…`` and whose new keys start with ``{key_prefix}_live_``."""
    example_id = f"{key_prefix}_live_xxxx"

    def fill(code: str) -> str:
        return (
            code.replace(_URL, base_url.rstrip("/"))
            .replace(_PREFIX, header_prefix)
            .replace(_KEY_ID, example_id)
            .replace(_KEY, example_id)
        )

    return Snippets(
        request=fill(_REQUEST),
        totp=fill(_TOTP),
        mtls_certificate=_MTLS_CERTIFICATE,
        mtls=fill(_MTLS),
        signing_rule=fill(_SIGNING_RULE),
        signing=fill(_SIGNING),
        session_password=fill(_SESSION_PASSWORD),
        session_upload=fill(_SESSION_UPLOAD),
        webhook_python=WEBHOOK_PYTHON,
        webhook_node=WEBHOOK_NODE,
    )
