async def test_openapi_document_lists_every_route_with_generated_schemas(client):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    job = "/api/workspaces/{workspaceId}/sync-jobs/{jobId}"
    assert set(doc["paths"][job]) == {"get", "put", "patch", "delete"}
    assert "post" in doc["paths"][f"{job}/executions/{{executionId}}/cancel"]
    spec = doc["components"]["schemas"]["SyncJobSpec"]
    assert "dataSourceId" in spec["properties"] and spec["additionalProperties"] is False
    request = doc["paths"]["/api/workspaces/{workspaceId}/sync-jobs"]["post"]["requestBody"]
    assert request["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SyncJobSpec"}
    operation_ids = [op["operationId"] for path in doc["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


def dashboard(route) -> bool:
    """The dashboard's pages and page-data endpoints, which only its own scripts read, and Prometheus'
    text-format /metrics: served beside the documented API."""
    path = route.resource.canonical
    return path in ("/", "/metrics") or path.startswith("/ui") or "/dashboard/" in path


async def test_every_operation_documents_its_bodies_and_every_route_is_listed(client):
    from aiohttp import web

    doc = await (await client.get("/api/openapi.json")).json()
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (route.method, route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.method != "HEAD" and isinstance(route.resource, web.Resource) and not dashboard(route)
    }
    assert served == listed
    actions = ("/toggle", "/enable", "/disable", "/run", "/cancel", "/pause", "/resume")
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if method in ("put", "patch") or (method == "post" and not path.endswith(actions)):
                assert "application/json" in operation["requestBody"]["content"], (method, path)
            for status, response in operation["responses"].items():
                if status not in ("204", "default"):
                    assert "schema" in response["content"]["application/json"], (method, path, status)
    assert doc["paths"]["/healthz"]["get"]["security"] == []


async def test_documented_shapes_are_the_ones_served(client):
    doc = await (await client.get("/api/openapi.json")).json()
    job = "/api/workspaces/{workspaceId}/sync-jobs/{jobId}"
    schemas = doc["components"]["schemas"]
    run = doc["paths"][f"{job}/run"]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    assert set(schemas[run["$ref"].rsplit("/", 1)[1]]["properties"]) == {"executionId", "execution"}
    assert "token" in schemas["CreatedToken"]["required"]
    status = doc["paths"][f"{job}/status"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "nextFireTimes" in schemas[status["$ref"].rsplit("/", 1)[1]]["properties"]
    patch = doc["paths"][job]["patch"]["requestBody"]["content"]
    assert set(patch) == {"application/json", "application/merge-patch+json"}


def test_the_response_check_refuses_what_the_document_does_not_allow():
    from tests.api.conformance import CONFORMANCE

    run = "/api/workspaces/ws/sync-jobs/" + "a" * 24 + "/run"
    # What the document used to promise for a run: a bare execution.
    assert CONFORMANCE.problems("POST", run, 202, "application/json", {"id": "x", "status": "queued"})
    assert CONFORMANCE.problems("GET", "/healthz", 200, "application/json", {"state": "ok"})
    assert CONFORMANCE.problems("GET", "/api/workspaces/ws/sync-jobs", 201, "application/json", {"items": []})
    assert CONFORMANCE.problems("GET", "/nowhere", 404, "application/json", {"error": "plain"})
    assert not CONFORMANCE.problems("GET", "/healthz", 200, "application/json", {"status": "ok"})
