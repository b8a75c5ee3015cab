"""SSRF refusals at send time: each attempt is refused or cut, with a clear error code."""

from __future__ import annotations

from keyguard.accounts.service import InitResult
from keyguard.keys import service as keys
from keyguard.runtime import Runtime
from keyguard.webhooks.ssrf import ResolutionFailed
from keyguard.webhooks.worker import DeliveryWorker
from webhook_helpers import Receiver, Reply, add_endpoint, attempts, deliveries


async def _one_event(runtime: Runtime, project_id: str) -> None:
    await keys.create_key(runtime, project_id, keys.KeySpec(name="k"), actor="test")


async def _only_attempt(runtime: Runtime) -> tuple[str, int | None, str | None, str]:
    [delivery] = await deliveries(runtime)
    [attempt] = await attempts(runtime, delivery.id)
    return delivery.status, attempt.status_code, attempt.error, attempt.response_excerpt


async def test_a_name_resolving_to_loopback_is_refused_at_send_time(
    runtime: Runtime, admin: InitResult, project_id: str
) -> None:
    await add_endpoint(runtime, project_id, "https://hooks.example.test/in")
    runtime.settings = runtime.settings.model_copy(update={"webhook_allow_private": []})
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    worker = DeliveryWorker(runtime, resolver=rebinding)
    await _one_event(runtime, project_id)
    await worker.run_once()
    assert calls == ["hooks.example.test"]
    status, code, error, _ = await _only_attempt(runtime)
    assert (status, code, error) == ("pending", None, "ssrf_blocked")  # retried later


async def test_an_allow_list_that_shrank_since_registration_is_enforced(
    runtime: Runtime, admin: InitResult, project_id: str, receiver: Receiver
) -> None:
    await add_endpoint(runtime, project_id, receiver.url("/in"))
    runtime.settings = runtime.settings.model_copy(update={"webhook_allow_private": []})
    await _one_event(runtime, project_id)
    await DeliveryWorker(runtime).run_once()
    assert receiver.requests == []
    _, code, error, _ = await _only_attempt(runtime)
    assert (code, error) == (None, "ssrf_blocked")


async def test_a_redirect_to_a_private_address_is_not_followed(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    url = receiver.on("/moved", Reply(302, headers={"Location": "http://10.0.0.1/steal"}))
    await add_endpoint(runtime, project_id, url)
    await _one_event(runtime, project_id)
    await worker.run_once()
    status, code, error, _ = await _only_attempt(runtime)
    assert (status, code, error) == ("pending", 302, "redirect_not_followed")
    assert [r.path for r in receiver.requests] == ["/moved"]


async def test_an_oversized_response_is_cut_and_the_attempt_says_so(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    url = receiver.on("/big", Reply(200, body=b"A" * 2_000_000))
    await add_endpoint(runtime, project_id, url)
    await _one_event(runtime, project_id)
    await worker.run_once()
    status, code, error, excerpt = await _only_attempt(runtime)
    # A 2xx answer is a success however long; the cut is recorded on the attempt.
    assert (status, code, error) == ("succeeded", 200, "response_truncated")
    assert excerpt == "A" * 1024
    [delivery] = await deliveries(runtime)
    assert delivery.last_error is None


async def test_an_oversized_error_answer_fails_by_its_status(
    runtime: Runtime,
    admin: InitResult,
    project_id: str,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    url = receiver.on("/big", Reply(503, body=b"E" * 100_000))
    await add_endpoint(runtime, project_id, url)
    await _one_event(runtime, project_id)
    await worker.run_once()
    status, code, error, _ = await _only_attempt(runtime)
    assert (status, code, error) == ("pending", 503, "response_truncated")  # retried
    [delivery] = await deliveries(runtime)
    assert delivery.last_error == "http_503"


async def test_a_name_that_does_not_resolve_fails_with_dns_failed(
    runtime: Runtime, admin: InitResult, project_id: str
) -> None:
    await add_endpoint(runtime, project_id, "https://not-yet.invalid/in")
    await _one_event(runtime, project_id)

    async def nxdomain(host: str, port: int) -> list[str]:
        raise ResolutionFailed(f"{host} did not resolve")

    await DeliveryWorker(runtime, resolver=nxdomain).run_once()
    status, code, error, _ = await _only_attempt(runtime)
    assert (status, code, error) == ("pending", None, "dns_failed")
