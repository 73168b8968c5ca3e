import os
import shutil
import tempfile

import pytest

from api.app import create_app
from models.secrets import SecretBox
from models.settings import Settings
from models.tokens import TokenStore
from tests.factories import destination_body, http_source_body
from tests.fakes import FakeClock

SECRET_KEY = SecretBox.new_key()
# The `db` fixture over both backends (in-memory, the mongoeco wire server), and the count of each.
pytest_plugins = ["tests.wire.backend", "tests.parallel"]


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MONGODB_URL"):
        return
    skip = pytest.mark.skip(reason="needs a MongoDB replica set: set MONGODB_URL (docker compose up mongo)")
    for item in items:
        if "mongo" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, mongodb_url=None, syncjobs_secret_key=SECRET_KEY, log_format="console")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def secrets() -> SecretBox:
    return SecretBox(SECRET_KEY)


@pytest.fixture
async def client(settings, db, clock, secrets, aiohttp_client):
    from tests.api.conformance import check_every_response

    test_client = await aiohttp_client(create_app(settings, db=db, clock=clock, secrets=secrets))
    check_every_response(test_client)  # every live response must match the OpenAPI document
    return test_client


@pytest.fixture
def token_for(db, clock):
    """Headers with a fresh token for a workspace (owner unless `role` says otherwise), or an admin token."""

    async def make(
        workspace_id: str | None = None, *, admin: bool = False, role: str = "owner"
    ) -> dict[str, str]:
        token, _ = await TokenStore(db).issue(
            workspace_id=workspace_id, name="test", now=clock.now(), admin=admin, role=role
        )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
async def ws(client, token_for):
    """Workspace ws-a: its auth headers and the ids of a data source and a destination in it."""

    class Ws:
        id = "ws-a"

    ws = Ws()
    ws.headers = await token_for("ws-a")
    resp = await client.post("/api/workspaces/ws-a/data-sources", json=http_source_body(), headers=ws.headers)
    assert resp.status == 201, await resp.text()
    ws.data_source_id = (await resp.json())["id"]
    resp = await client.post("/api/workspaces/ws-a/destinations", json=destination_body(), headers=ws.headers)
    assert resp.status == 201, await resp.text()
    ws.destination_id = (await resp.json())["id"]
    ws.jobs = "/api/workspaces/ws-a/sync-jobs"
    return ws


@pytest.fixture
def readable_dir():
    """A directory the unprivileged source user can read (pytest's tmp_path is root's alone)."""
    path = tempfile.mkdtemp(prefix="syncjobs-test-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
