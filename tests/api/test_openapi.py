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
