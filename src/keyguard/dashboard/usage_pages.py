"""Usage and security, and the audit log, of a project (seed 003: "check dashboard
regularly for unusual activity"): requests over time and refusals by code as SVG charts
(per project, or per key), last use, anomaly alerts, keys due for rotation; the audit log
filtered by action and actor, with the chain's verdict and, for administrators, the
latest signed checkpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from keyguard.api.deps import context_of
from keyguard.audit import checkpoints
from keyguard.audit.log import AuditEntry, last_verdict, project_log, verify_and_remember
from keyguard.dashboard.access import in_project
from keyguard.dashboard.charts import Bar, horizontal_bars, stacked_bars
from keyguard.errors import NotFound, ValidationFailed
from keyguard.i18n import translate
from keyguard.keys import service as keys
from keyguard.keys.views import KeyView
from keyguard.usage import anomalies as anomalies_module
from keyguard.usage import service as usage
from keyguard.usage.views import Usage
from keyguard.web.pages import PageError, read_form, redirect, render

router = APIRouter(include_in_schema=False)

GRANULARITY_LABEL = {"minute": "%H:%M", "hour": "%H:00", "day": "%m-%d"}  # UTC
ANOMALIES_SHOWN = 20
AUDIT_PAGE = 50


def _bars(found: Usage) -> list[Bar]:
    pattern = GRANULARITY_LABEL[found.granularity]
    return [Bar(p.start.strftime(pattern), p.succeeded, p.refused) for p in found.series]


@router.get("/projects/{project_id}/usage")
async def usage_page(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id)
    ctx = context_of(request)
    granularity = request.query_params.get("granularity", "hour")
    if granularity not in GRANULARITY_LABEL:
        granularity = "hour"
    key_id = request.query_params.get("key", "")
    key = None
    try:
        if key_id:
            key = await keys.get_key(ctx, key_id)
            if key.project_id != project_id:
                raise NotFound()
            found = await usage.key_usage(ctx, key_id, granularity=granularity)
        else:
            found = await usage.project_usage(ctx, project_id, granularity=granularity)
    except (NotFound, ValidationFailed):
        raise PageError(404, "error.not_found") from None
    # In the page's language (the request's, chosen when the person was looked up).
    ok_label = translate("usage.allowed")
    refused_label = translate("usage.refused")
    codes = sorted(found.totals.by_code.items(), key=lambda item: (-item[1], item[0]))
    refusals = [(code, n) for code, n in codes if code != "ok"]
    due: list[KeyView] = []
    anomalies: list[AuditEntry] = []
    if key is None:  # shown for the whole project only
        due, _ = await keys.list_keys(ctx, project_id, limit=keys.MAX_PAGE, rotation_due=True)
        anomalies = await project_log(ctx, project_id, limit=ANOMALIES_SHOWN, action="key.anomaly")
    return await render(
        request,
        "dashboard/usage.html",
        where=where,
        project_id=project_id,
        usage=found,
        key=key,
        granularity=granularity,
        granularities=tuple(GRANULARITY_LABEL),
        chart=stacked_bars(
            _bars(found),
            title=translate("usage.chart.requests"),
            ok_label=ok_label,
            refused_label=refused_label,
        ),
        refusals=refusals,
        refusal_chart=horizontal_bars(refusals, title=translate("usage.chart.refusals"))
        if refusals
        else "",
        rotation_due=due,
        anomalies=anomalies,
        anomaly_reasons=anomalies_module.REASONS,
    )


@router.get("/projects/{project_id}/audit")
async def audit_page(request: Request, project_id: str) -> Response:
    where = await in_project(request, project_id)
    ctx = context_of(request)
    action = request.query_params.get("action", "")[:100]
    actor = request.query_params.get("actor", "")[:200]
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 19 else None
    entries = await project_log(
        ctx, project_id, before=before, limit=AUDIT_PAGE, action=action, actor=actor
    )
    # The checkpoint covers every project's events (its size says how many there are):
    # an installation's administrators see it, a project's members do not.
    checkpoint = None
    if where.me.account.is_admin:
        checkpoint = (await checkpoints.sign_current(ctx)).note
    return await render(
        request,
        "dashboard/audit.html",
        where=where,
        project_id=project_id,
        entries=entries,
        action=action,
        actor=actor,
        next_before=entries[-1].seq if len(entries) == AUDIT_PAGE else None,
        verdict=await last_verdict(ctx),
        can_verify=where.me.account.is_admin,
        checkpoint=checkpoint,
    )


@router.post("/projects/{project_id}/audit/verify")
async def verify_audit_chain(request: Request, project_id: str) -> Response:
    """Recompute the chain: it reads the whole installation's log, so only an
    administrator may start it (a POST with its CSRF token, never a link)."""
    where = await in_project(request, project_id)
    if not where.me.account.is_admin:
        raise PageError(403, "error.role_too_low")
    await read_form(request)
    await verify_and_remember(context_of(request))
    return redirect(f"/projects/{project_id}/audit?flash=chain_verified#chain-h")
