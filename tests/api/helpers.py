from tests.factories import sync_job_body


async def create_job(client, ws, **overrides) -> dict:
    body = sync_job_body(dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id, **overrides)
    resp = await client.post(ws.jobs, json=body, headers=ws.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()
