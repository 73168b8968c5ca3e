"""Whatever JSON a client sends, the answer is a 2xx or a 4xx JSON error: never a 500."""

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mongomock_motor import AsyncMongoMockClient

from api.app import create_app
from models.collections import ensure_indexes
from models.secrets import SecretBox
from models.settings import Settings
from models.tokens import TokenStore
from tests.conftest import SECRET_KEY
from tests.fakes import FakeClock

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "name",
    "dataSourceId",
    "destinationDatabaseId",
    "schedule",
    "syncMode",
    "entities",
    "enabled",
    "timeoutSeconds",
    "retry",
    "overlapPolicy",
    "misfireGraceSeconds",
    "description",
    "cron",
    "timezone",
]
job_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
bodies = job_like | json_values


async def exercise(body) -> list[int]:
    db = AsyncMongoMockClient(tz_aware=True)["fuzz"]
    await ensure_indexes(db)
    clock = FakeClock()
    app = create_app(
        Settings(_env_file=None, log_level="error"), db=db, clock=clock, secrets=SecretBox(SECRET_KEY)
    )
    token, _ = await TokenStore(db).issue(workspace_id="ws", name="t", now=clock.now(), role="owner")
    headers = {"Authorization": f"Bearer {token}"}
    statuses = []
    async with TestClient(TestServer(app)) as client:
        base = "/api/workspaces/ws/sync-jobs"
        job = {
            "name": "j",
            "dataSourceId": "a" * 24,
            "destinationDatabaseId": "b" * 24,
            "schedule": {"cron": "@daily"},
        }
        await db.data_sources.insert_one({"_id": ObjectId("a" * 24), "workspaceId": "ws"})
        await db.destinations.insert_one({"_id": ObjectId("b" * 24), "workspaceId": "ws"})
        created = await (await client.post(base, json=job, headers=headers)).json()
        for method, url in (
            ("POST", base),
            ("PUT", f"{base}/{created['id']}"),
            ("PATCH", f"{base}/{created['id']}"),
            ("POST", "/api/workspaces/ws/data-sources"),
            ("POST", "/api/workspaces/ws/tokens"),
        ):
            response = await client.request(method, url, json=body, headers=headers)
            statuses.append(response.status)
            payload = await response.json()
            assert response.status < 500, (method, url, body, payload)
            if response.status >= 400:
                assert set(payload["error"]) == {"code", "message", "details"}
    return statuses


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_no_json_body_makes_the_api_fail(body):
    asyncio.run(exercise(body))
