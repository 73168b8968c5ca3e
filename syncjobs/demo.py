"""The zero-setup demo: a workspace, a token, a data source served by this very process, a destination
in the same database, and a job that syncs every minute."""

import ipaddress
import socket
from datetime import UTC, datetime, timedelta

from aiohttp import web

from models.clock import Clock
from models.resources import DATA_SOURCE, DESTINATION
from models.secrets import SecretBox
from models.settings import Settings
from models.sync_job import SyncJobSpec
from models.sync_job_store import SyncJobStore
from models.tokens import Role, TokenStore

WORKSPACE = "demo"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
# Small on purpose: the in-memory database scans a collection for every upsert.
CUSTOMER_EVERY = timedelta(minutes=10)
ORDER_EVERY = timedelta(minutes=1)
HISTORY = {"customers": timedelta(days=2), "orders": timedelta(hours=6)}


def allow_demo_shop(settings: Settings, host: str) -> Settings:
    """The settings with the demo's own shop (served on `host`, loopback by default) added to the network
    policy: the one place the demo widens it, and only by the addresses it listens on."""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = [ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, None)]
    networks = [
        settings.syncjobs_allowed_networks,
        *(f"{address}/{address.max_prefixlen}" for address in addresses),
    ]
    return settings.model_copy(update={"syncjobs_allowed_networks": ",".join(filter(None, networks))})


def demo_records(entity: str, now: datetime) -> list[dict]:
    """Records that exist by `now`: new ones keep appearing, so each incremental run has something to do."""
    step = CUSTOMER_EVERY if entity == "customers" else ORDER_EVERY
    start = now - HISTORY[entity]
    first = int((start - EPOCH) / step)
    count = int((now - EPOCH) / step)
    records = []
    for i in range(first, count + 1):
        moment = EPOCH + i * step
        if entity == "customers":
            records.append(
                {
                    "id": i,
                    "name": f"Customer {i}",
                    "email": f"customer{i}@example.com",
                    "updatedAt": moment.isoformat(),
                }
            )
        else:
            records.append(
                {
                    "id": i,
                    "customerId": i % 97,
                    "amountCents": (i * 7919) % 50_000,
                    "createdAt": moment.isoformat(),
                }
            )
    return records


def add_demo_routes(app: web.Application, clock: Clock) -> None:
    """GET /demo/customers?page=&limit= (page-numbered), /demo/orders?cursor= (cursor-paged)."""

    async def customers(request: web.Request) -> web.Response:
        since = request.query.get("updated_since")
        records = [r for r in demo_records("customers", clock.now()) if not since or r["updatedAt"] > since]
        page, limit = int(request.query.get("page", 1)), min(int(request.query.get("limit", 100)), 500)
        return web.json_response({"data": records[(page - 1) * limit : page * limit]})

    async def orders(request: web.Request) -> web.Response:
        records = demo_records("orders", clock.now())
        offset = int(request.query.get("cursor") or 0)
        chunk = records[offset : offset + 200]
        more = offset + 200 < len(records)
        return web.json_response({"orders": chunk, "next": str(offset + 200) if more else None})

    app.router.add_get("/demo/customers", customers)
    app.router.add_get("/demo/orders", orders)


async def seed_demo(db, *, clock: Clock, secrets: SecretBox, base_url: str) -> dict:
    """Create the demo workspace's resources once; returns what to print. Each start mints a new owner
    token for the demo workspace and revokes the one the last start printed."""
    now = clock.now()
    tokens = TokenStore(db)
    for old in await tokens.list(WORKSPACE):
        if old["name"] == "demo":
            await tokens.revoke(WORKSPACE, old["_id"])
    token, _ = await tokens.issue(workspace_id=WORKSPACE, name="demo", role=Role.OWNER, now=now)
    jobs = SyncJobStore(db)
    existing, _ = await jobs.list(WORKSPACE, limit=1, cursor=None)
    if existing:
        return {"token": token, "job": existing[0]}
    source_fields = DATA_SOURCE.spec.validate_python(
        {
            "name": "Demo shop API",
            "type": "http",
            "baseUrl": base_url,
            "headers": {"Authorization": "Bearer demo-secret-never-shown"},
            "entities": [
                {
                    "name": "customers",
                    "path": "/customers",
                    "recordsPath": "data",
                    "cursorField": "updatedAt",
                    "cursorParam": "updated_since",
                    "pagination": {"type": "page", "pageSize": 100, "sizeParam": "limit"},
                },
                {
                    "name": "orders",
                    "path": "/orders",
                    "recordsPath": "orders",
                    "pagination": {"type": "cursor", "cursorParam": "cursor", "nextCursorPath": "next"},
                },
            ],
        }
    ).model_dump(by_alias=True, mode="json")
    source = await DATA_SOURCE.store(db).insert(WORKSPACE, DATA_SOURCE.seal(source_fields, secrets), now)
    destination_fields = DESTINATION.spec.validate_python(
        {"name": "Demo warehouse", "type": "mongodb", "database": "demo_warehouse"}
    ).model_dump(by_alias=True, mode="json")
    destination = await DESTINATION.store(db).insert(WORKSPACE, destination_fields, now)
    job = await jobs.create(
        WORKSPACE,
        SyncJobSpec.model_validate(
            {
                "name": "Demo shop sync, every minute",
                "dataSourceId": str(source["_id"]),
                "destinationDatabaseId": str(destination["_id"]),
                "schedule": {"cron": "* * * * *", "timezone": "UTC"},
                "syncMode": "incremental",
                "timeoutSeconds": 120,
                "retry": {"maxAttempts": 2, "backoffSeconds": 5},
            }
        ),
        now,
    )
    return {"token": token, "job": job}
