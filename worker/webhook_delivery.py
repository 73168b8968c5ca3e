"""Sending queued webhook deliveries: claimed one at a time so two workers never send the same attempt,
sent concurrently (a few at once) with a timeout, retried with capped exponential backoff, every attempt's
outcome written to the delivery (the log GET .../webhooks/{id}/deliveries reads).

Targets pass the network policy twice: the URL when the webhook is saved, and every resolved address at
connect time (a resolver that refuses what the policy refuses), so DNS cannot point a webhook inward.
Redirects are not followed for the same reason."""

import asyncio
import socket
from datetime import timedelta
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from pymongo import ReturnDocument

from models.clock import Clock
from models.collections import WEBHOOK_DELIVERIES, WEBHOOKS
from models.errors import ValidationFailed
from models.secrets import SecretBox
from models.settings import Settings
from models.webhook import DeliveryStatus
from models.webhook_network import Network, address_allowed, check_url, parse_allowed_networks
from worker import metrics
from worker.naps import nap
from worker.webhook_payloads import signed_request

log = structlog.get_logger("syncjobs.worker")

CONCURRENCY = 8
BATCH = 100
MAX_ERROR_CHARS = 500


class PolicyResolver(AbstractResolver):
    """DNS answers filtered by the network policy: a name resolving only inward cannot be connected to."""

    def __init__(self, allowed: list[Network]):
        self._inner = DefaultResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        answers = await self._inner.resolve(host, port, family)
        kept = [answer for answer in answers if address_allowed(answer["host"], self._allowed)]
        if not kept:
            raise OSError(f"{host} resolves to no address webhooks may reach")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def backoff(attempts: int, settings: Settings) -> float:
    # Capped, so a receiver down for hours is still tried every quarter hour or so, not every few days.
    return min(settings.webhook_max_backoff_seconds, settings.webhook_backoff_seconds * 2 ** (attempts - 1))


class Deliverer:
    def __init__(self, db, *, clock: Clock, settings: Settings, secrets: SecretBox | None):
        self._deliveries = db[WEBHOOK_DELIVERIES]
        self._webhooks = db[WEBHOOKS]
        self._clock = clock
        self._settings = settings
        self._secrets = secrets
        self._allowed = parse_allowed_networks(settings.syncjobs_allowed_networks)
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._sending: set[asyncio.Task] = set()
        self.wake = asyncio.Event()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=PolicyResolver(self._allowed)),
                timeout=aiohttp.ClientTimeout(total=self._settings.webhook_timeout_seconds),
            )
        return self._session

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook_dispatch_failed")
            await nap(self._clock, self.wake, self._settings.poll_interval_seconds)

    async def run_once(self) -> int:
        """Start sending every due delivery (in the background); returns how many were started."""
        now = self._clock.now()
        due = (
            await self._deliveries.find(
                {"status": DeliveryStatus.PENDING.value, "nextAttemptAt": {"$lte": now}}
            )
            .sort([("nextAttemptAt", 1), ("_id", 1)])
            .limit(BATCH)
            .to_list(None)
        )
        started = 0
        for delivery in due:
            # The claim moves nextAttemptAt past the attempt's timeout: another worker leaves it alone, and
            # if this one dies mid-attempt, the delivery is due again after that.
            claim_until = now + timedelta(seconds=self._settings.webhook_timeout_seconds * 2 + 5)
            claimed = await self._deliveries.find_one_and_update(
                {
                    "_id": delivery["_id"],
                    "status": DeliveryStatus.PENDING.value,
                    "nextAttemptAt": {"$lte": now},
                },
                {"$set": {"nextAttemptAt": claim_until}, "$inc": {"attempts": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if claimed is None:
                continue
            started += 1
            task = asyncio.create_task(self._send_bounded(claimed))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return started

    async def settle(self) -> None:
        """Wait for the attempts under way (tests, shutdown)."""
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*list(self._sending), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send_bounded(self, delivery: dict[str, Any]) -> None:
        async with self._slots:
            try:
                await self._send(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("webhook_attempt_crashed")
                await self._record(delivery, ok=False, status_code=None, error=f"internal: {error!r}")

    async def _send(self, delivery: dict[str, Any]) -> None:
        webhook = await self._webhooks.find_one({"_id": delivery["webhookId"]})
        if webhook is None or not webhook.get("enabled"):
            reason = "the webhook was deleted" if webhook is None else "the webhook is disabled"
            await self._record(delivery, ok=False, status_code=None, error=reason, final=True)
            return
        url = self._open(webhook["url"])
        try:
            check_url(url, self._allowed)
        except ValidationFailed as refused:
            await self._record(delivery, ok=False, status_code=None, error=str(refused.details), final=True)
            return
        body, headers = signed_request(
            webhook.get("format", "json"),
            str(delivery["_id"]),
            delivery["payload"],
            self._open(webhook["secret"]),
            self._clock.now(),
        )
        try:
            async with self._http().post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                ok = 200 <= response.status < 300
                error = None if ok else f"HTTP {response.status}"
                await self._record(delivery, ok=ok, status_code=response.status, error=error)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            await self._record(delivery, ok=False, status_code=None, error=str(error) or type(error).__name__)

    def _open(self, value: str) -> str:
        return self._secrets.open(value) if self._secrets is not None else value

    async def _record(
        self, delivery: dict[str, Any], *, ok: bool, status_code: int | None, error: str | None, final=False
    ) -> None:
        now = self._clock.now()
        fields: dict[str, Any] = {"lastAttemptAt": now, "lastStatusCode": status_code, "lastError": None}
        if ok:
            fields.update(status=DeliveryStatus.DELIVERED.value, deliveredAt=now, nextAttemptAt=None)
            outcome = "delivered"
        else:
            fields["lastError"] = (error or "failed")[:MAX_ERROR_CHARS]
            if final or delivery["attempts"] >= self._settings.webhook_max_attempts:
                fields.update(status=DeliveryStatus.FAILED.value, nextAttemptAt=None)
                outcome = "failed"
            else:
                fields["nextAttemptAt"] = now + timedelta(
                    seconds=backoff(delivery["attempts"], self._settings)
                )
                outcome = "retrying"
        metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
        await self._deliveries.update_one({"_id": delivery["_id"]}, {"$set": fields})
        log.info(
            "webhook_attempted",
            delivery_id=str(delivery["_id"]),
            webhook_id=str(delivery["webhookId"]),
            webhook_event=delivery["event"],
            attempt=delivery["attempts"],
            outcome=outcome,
            status_code=status_code,
        )
