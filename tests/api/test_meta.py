async def test_self_description_needs_no_credentials(client):
    r = await client.get("/v1/")
    assert r.status_code == 200
    assert r.json()["links"]["apiDoc"]["href"] == "/v1/apiDoc"
    oauth = await client.get(r.json()["links"]["oauth"]["href"])
    assert oauth.json()["token_endpoint"].endswith("/oauth/token")


async def test_api_doc_is_openapi_3_1_without_credentials(client):
    r = await client.get("/v1/apiDoc")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/projects/{project_id}/keys" in doc["paths"]
    assert "/v1/keys/verify" in doc["paths"]


async def test_health_probe_needs_no_credentials(client):
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


async def test_session_route_is_documented_with_its_path_parameter(client):
    doc = (await client.get("/v1/apiDoc")).json()
    get = doc["paths"]["/v1/sessions/{session_id}"]["get"]
    assert [p["name"] for p in get["parameters"]] == ["session_id"]
