"""The dashboard in Debian's chromium, driven by Playwright, against `syncjobs dev` as a process.

One dev process and one browser serve the module; each test has a fresh browser context (its own
sessionStorage), signs in through the form, and saves a screenshot under its pytest temp dir.
Skipped where /usr/bin/chromium is absent (`.ci/run` installs it)."""

import contextlib
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.test_cli import clean_env, free_port

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
DEMO_JOB = "Demo shop sync, every minute"
WAIT_MS = 15_000
LIFECYCLE = ["queued", "running", "succeeded"]


class Dev:
    """The running `syncjobs dev`: its address, the token it printed, an admin token (the bootstrap one it was
    started with), the demo job's id, and a small JSON client for setting up state."""

    def __init__(self, base: str, printed: str, admin: str, job_id: str):
        self.base, self.printed, self.token, self.job_id = base, printed, admin, job_id

    def call(
        self, method: str, path: str, body=None, *, token: str | None = None, if_match: int | None = None
    ):
        headers = {"Authorization": f"Bearer {token or self.token}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    @property
    def job_path(self) -> str:
        return f"/api/workspaces/demo/sync-jobs/{self.job_id}"

    def token_for(self, name: str, role: str = "owner") -> str:
        """A demo token of `role`; where the server has no roles (422: unknown field), a plain one."""
        path = "/api/workspaces/demo/tokens"
        status, body = self.call("POST", path, {"name": name, "role": role})
        if status == 422 and any(d["field"] == "role" for d in body["error"]["details"]):
            status, body = self.call("POST", path, {"name": name})
        assert status == 201, body
        return body["token"]

    def set_job(self, **fields) -> dict:
        status, job = self.call("GET", self.job_path)
        status, job = self.call("PATCH", self.job_path, fields, if_match=job["version"])
        assert status == 200, job
        return job

    @contextlib.contextmanager
    def quiet(self):
        """The demo job on a schedule that will not fire meanwhile (it fires every minute), applied by the
        worker and with no run left over, so what the test starts is the only thing that happens."""
        self.set_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
        deadline = time.monotonic() + WAIT_MS / 1000
        while not self.call("GET", self.job_path + "/status")[1]["scheduleLive"]:
            assert time.monotonic() < deadline, "the worker did not apply the edit"
            time.sleep(0.1)
        self.wait_idle()
        try:
            yield
        finally:
            self.set_job(schedule={"cron": "* * * * *", "timezone": "UTC"})

    def has_a_run(self) -> None:
        """The demo job has a succeeded run in its history (run now if none yet: a test may run alone)."""
        self.wait_idle()
        if not self.call("GET", self.job_path + "/executions?status=succeeded&limit=1")[1]["items"]:
            assert self.call("POST", self.job_path + "/run")[0] in (202, 409)
            self.wait_idle()

    def wait_idle(self) -> None:
        """Until the demo job has no queued or running execution (its own schedule may have started one)."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while self.call("GET", self.job_path + "/status")[1]["activeExecution"] is not None:
            assert time.monotonic() < deadline, "the demo job stayed busy"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def dev():
    port = free_port()
    bootstrap = "sjt_" + secrets.token_urlsafe(24)
    env = clean_env(
        SYNCJOBS_BOOTSTRAP_TOKEN=bootstrap, POLL_INTERVAL_SECONDS="0.3", DASHBOARD_REFRESH_SECONDS="0.2"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "syncjobs", "dev", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        printed = {}
        while "job" not in printed:
            line = process.stdout.readline()
            assert line, "syncjobs dev ended before printing the demo"
            key, _, value = line.strip().partition(":")
            if key in ("token", "job"):
                printed[key] = value.split()[0]
        yield Dev(f"http://127.0.0.1:{port}", printed["token"], bootstrap, printed["job"])
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Europe/Berlin")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.screenshot(path=tmp_path / "screenshot.png", full_page=True)
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sign_in_through_the_form(page, dev: Dev, token: str, workspace: str = "") -> None:
    page.goto(dev.base + "/")
    page.wait_for_url("**/ui/signin")
    page.get_by_label("Token", exact=True).fill(token)
    if workspace:
        page.get_by_label("Workspace (admin tokens only)").fill(workspace)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(dev.base + "/ui/")


def sign_in(page, dev: Dev, token: str, workspace: str = "", path: str = "/ui/") -> None:
    """What the form leaves behind (the form has a test of its own), put in place before the page loads."""
    page.add_init_script(
        f"sessionStorage.setItem('syncjobs.token', {json.dumps(token)});"
        + (f"sessionStorage.setItem('syncjobs.workspace', {json.dumps(workspace)});" if workspace else "")
    )
    page.goto(dev.base + path)


def job_row(page, dev: Dev):
    return page.locator(f'#jobs tbody tr[data-job-id="{dev.job_id}"]')


def test_signing_in_with_the_printed_token_shows_the_demo_job(page, dev):
    # (dev prints the bootstrap admin token where one is set, or else a demo owner token; both work here)
    sign_in_through_the_form(page, dev, dev.printed, workspace="demo")
    row = job_row(page, dev)
    row.get_by_role("link", name=DEMO_JOB).wait_for()
    assert row.locator("td").first.inner_text() == "Every minute, UTC"
    who = dev.call("GET", "/api/whoami", token=dev.printed)[1]
    assert "Workspace demo" in page.locator("#who-text").inner_text()
    assert f"role {who['role']}" in page.locator("#who-text").inner_text()
    # The token lives in this tab's sessionStorage, never in an address.
    assert page.evaluate("sessionStorage.getItem('syncjobs.token')") == dev.printed
    assert dev.printed not in page.url
    assert page.get_by_role("link", name="Scheduler").is_visible() == who["admin"]
    # Times in the viewer's zone, the job's zone on hover.
    next_run = row.locator(".next-run time").get_attribute("title")
    assert "(Europe/Berlin, your zone)" in next_run and "(UTC, the job's zone)" in next_run


def test_the_jobs_list_works_from_the_keyboard(page, dev):
    sign_in(page, dev, dev.token_for("keyboard"))
    row = job_row(page, dev)
    switch = row.get_by_role("switch", name=f"Enabled: {DEMO_JOB}")
    switch.wait_for()
    name_header = page.locator("#jobs thead th").first
    name_header.get_by_role("button", name="Name").focus()
    page.keyboard.press("Enter")
    assert name_header.get_attribute("aria-sort") == "descending"
    switch.focus()
    try:
        page.keyboard.press("Space")
        row.locator(".next-run", has_text="not scheduled").wait_for()
        # The row was drawn anew; focus stays on its switch, so Space puts it back.
        assert page.evaluate("document.activeElement.getAttribute('role')") == "switch"
        # ...once the server holds the first change and the live stream has drawn it (under load the second
        # key could otherwise race the first request).
        for _ in range(100):
            if dev.call("GET", dev.job_path)[1]["enabled"] is False:
                break
            time.sleep(0.05)
        row.get_by_role("switch", checked=False).wait_for()
        page.keyboard.press("Space")
        row.get_by_role("switch", checked=True).wait_for()
        assert dev.call("GET", dev.job_path)[1]["enabled"] is True
    finally:
        dev.set_job(enabled=True)


def test_a_data_source_is_edited_with_its_secret_masked_and_kept(page, dev):
    sign_in(page, dev, dev.token_for("editor"), path="/ui/resources")
    source = page.locator("section[data-kind=data-sources] tbody tr", has_text="Demo shop API")
    source.get_by_role("button", name="Edit Demo shop API").click()
    editor = page.get_by_label("JSON")
    editor.wait_for()
    shown = json.loads(editor.input_value())
    assert shown["headers"] == {"Authorization": "***"}
    assert "demo-secret-never-shown" not in page.content()
    editor.fill(json.dumps({**shown, "name": "Demo shop API (edited)"}))
    with page.expect_request(lambda request: request.method == "PUT") as sent:
        page.get_by_role("button", name="Save").click()
    # The mask goes back as it came; a *** sent back keeps the stored secret (tests/api/test_resources.py).
    assert sent.value.post_data_json["headers"] == {"Authorization": "***"}
    page.locator("section[data-kind=data-sources] tbody tr", has_text="Demo shop API (edited)").wait_for()
    assert page.locator("#resource-errors li").count() == 0


def test_a_run_goes_queued_running_succeeded_in_its_row_without_a_reload(page, dev):
    sign_in(page, dev, dev.token_for("on-call"))
    row = job_row(page, dev)
    row.wait_for()
    assert not page.get_by_role("link", name="Scheduler").is_visible()  # not an admin token
    with dev.quiet():
        watch_a_run(page, dev, row)
    # The schedule put back by another client shows in the row without a reload, too.
    row.get_by_text("Every minute, UTC").wait_for()


def watch_a_run(page, dev: Dev, row) -> None:
    # Every status the row's last-run badge shows, in order, recorded in the page itself.
    page.evaluate(
        """jobId => {
            window.notReloaded = true;
            window.seen = [];
            const record = () => {
                const badge = document.querySelector(`tr[data-job-id="${jobId}"] .last-run .badge`);
                const status = badge && badge.dataset.status;
                if (status && window.seen[window.seen.length - 1] !== status) window.seen.push(status);
                document.body.dataset.seen = window.seen.join(" ");
            };
            const rows = document.querySelector("#jobs tbody");
            record();  // the status before the click comes first
            new MutationObserver(record).observe(rows, {childList: true, subtree: true});
        }""",
        dev.job_id,
    )
    row.get_by_role("button", name=f"Run {DEMO_JOB} now").click()
    # (wait_for_function evaluates strings, which the page's Content-Security-Policy rightly refuses)
    # Until the badge has shown the run active, then succeeded (the status before may be `succeeded` too).
    ended = ", ".join(f'body[data-seen*="{active}"][data-seen$="succeeded"]' for active in LIFECYCLE[:2])
    try:
        page.locator(ended).wait_for(state="attached")
    except Exception as error:
        notice = page.locator("#notice").inner_text()
        pytest.fail(f"statuses seen: {page.evaluate('window.seen')}; notice: {notice!r}; {error}")
    seen = page.evaluate("window.seen")
    # The row shows the run as queued the moment the POST answers, unless the stream was quicker and showed
    # it running already; a state shorter than the stream's refresh may not show at all. Never a step back:
    # not to queued once running, nor to the run before (a snapshot older than the POST's answer).
    assert seen[0] not in LIFECYCLE[:2] and all(status in LIFECYCLE for status in seen[1:]), seen
    steps = [LIFECYCLE.index(status) for status in seen[1:]]
    assert steps == sorted(set(steps)) and seen[-1] == "succeeded", seen
    assert page.evaluate("window.notReloaded") is True
    assert "100 %" in row.locator(".success").inner_text()


def test_disabling_a_job_shows_not_scheduled(page, dev):
    sign_in(page, dev, dev.token_for("on-call"))
    row = job_row(page, dev)
    switch = row.get_by_role("switch", name=f"Enabled: {DEMO_JOB}")
    assert switch.get_attribute("aria-checked") == "true"
    switch.click()
    row.locator(".next-run", has_text="not scheduled").wait_for()
    assert row.get_by_role("switch").get_attribute("aria-checked") == "false"
    assert dev.call("GET", dev.job_path)[1]["enabled"] is False
    row.get_by_role("link", name=DEMO_JOB).click()
    page.locator("#fact-next", has_text="not scheduled").wait_for()
    page.get_by_role("button", name="Enable").click()
    page.locator("#fact-enabled", has_text="Enabled").wait_for()
    assert dev.call("GET", dev.job_path)[1]["enabled"] is True


def test_an_invalid_cron_is_flagged_at_its_field_and_a_fixed_one_previewed_and_saved(page, dev):
    sign_in(page, dev, dev.token_for("editor"))
    job_row(page, dev).get_by_role("link", name=DEMO_JOB).click()
    cron = page.get_by_label("Cron expression")
    cron.wait_for()
    page.locator("#preview-text", has_text="Every minute, UTC").wait_for()
    before = page.locator("#preview-fires").inner_text()
    cron.fill("61 * * * *")
    error = page.locator("#cron-error")
    error.filter(has_text="minute").wait_for()
    assert cron.get_attribute("aria-invalid") == "true"
    assert "cron-error" in cron.get_attribute("aria-describedby")
    cron.fill("30 9 * * 1-5")
    page.locator("#preview-text", has_text="At 09:30, Monday through Friday, UTC").wait_for()
    assert error.inner_text() == "" and cron.get_attribute("aria-invalid") is None
    assert page.locator("#preview-fires").inner_text() != before
    page.get_by_role("button", name="Save schedule").click()
    page.locator("#save-result", has_text="Saved as version").wait_for()
    job = dev.call("GET", dev.job_path)[1]
    assert job["schedule"] == {"cron": "30 9 * * 1-5", "timezone": "UTC"}
    page.locator("#job-schedule", has_text="At 09:30, Monday through Friday, UTC").wait_for()
    # The worker picks the edit up (polling here) and the page says so without a reload.
    page.locator("#fact-live", has_text="Live").wait_for()
    dev.set_job(schedule={"cron": "* * * * *", "timezone": "UTC"})


def test_the_log_tail_of_a_finished_run_opens_from_the_history(page, dev):
    dev.has_a_run()
    sign_in(page, dev, dev.token_for("on-call"), path=f"/ui/jobs/{dev.job_id}")
    succeeded = page.locator("#history tbody tr", has=page.locator('.badge[data-status="succeeded"]')).first
    succeeded.get_by_role("button", name="Log").click()
    log = page.locator("#log-text")
    log.filter(has_text="[source] customers:").wait_for()
    assert page.locator("#log-heading").evaluate("node => node === document.activeElement")


def test_a_job_name_with_markup_is_shown_as_text_never_run(page, dev):
    demo = dev.call("GET", dev.job_path)[1]
    hostile = '<img src=x onerror="window.pwned=1">'
    status, job = dev.call(
        "POST",
        "/api/workspaces/demo/sync-jobs",
        {
            "name": hostile,
            "dataSourceId": demo["dataSourceId"],
            "destinationDatabaseId": demo["destinationDatabaseId"],
            "schedule": {"cron": "0 0 1 1 *"},
            "enabled": False,
        },
    )
    assert status == 201, job
    try:
        sign_in(page, dev, dev.token_for("on-call"))
        page.get_by_role("link", name=hostile).wait_for()
        assert page.locator("#jobs img").count() == 0
        assert page.evaluate("window.pwned") is None
    finally:
        dev.call("DELETE", f"/api/workspaces/demo/sync-jobs/{job['id']}")


def test_on_a_phone_the_jobs_page_fits_390_pixels(page, dev):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, dev, dev.token_for("phone"))
    job_row(page, dev).get_by_role("link", name=DEMO_JOB).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert job_row(page, dev).get_by_role("button", name=f"Run {DEMO_JOB} now").is_visible()
    job_row(page, dev).get_by_role("link", name=DEMO_JOB).click()
    page.locator("#history tbody tr").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_pages_whose_api_is_missing_say_so_instead_of_failing(page, dev):
    sign_in(page, dev, dev.token_for("on-call"), path="/ui/runs")
    runs_exist = dev.call("GET", "/api/workspaces/demo/executions")[0] == 200
    if runs_exist:
        page.locator("#runs tbody tr").first.wait_for()
    else:
        page.locator("#runs-unavailable", has_text="not available on this server").wait_for()
    stats_exist = dev.call("GET", "/api/workspaces/demo/statistics?days=30")[0] == 200
    page.goto(dev.base + "/ui/statistics")
    if stats_exist:
        page.locator("#per-day-chart svg").wait_for()
    else:
        page.locator("#stats-unavailable", has_text="not available on this server").wait_for()


def test_a_viewer_token_sees_no_write_buttons(dev, request):
    viewer = dev.token_for("read-only", role="viewer")
    assert dev.call("GET", "/api/whoami", token=viewer)[1]["role"] == "viewer"
    page = request.getfixturevalue("page")  # only once the server can make a viewer token
    sign_in(page, dev, viewer)
    # Filled in once the page's whoami call answers ("Checking your token…" until then): wait for it.
    page.locator("#who-text", has_text="role viewer").wait_for()
    row = job_row(page, dev)
    row.get_by_role("link", name=DEMO_JOB).wait_for()
    assert row.get_by_role("button").count() == 0 and row.get_by_role("switch").count() == 0
    row.get_by_role("link", name=DEMO_JOB).click()
    page.locator("#history tbody tr").first.wait_for()
    for name in ("Run now", "Disable", "Enable", "Save schedule", "Cancel current run"):
        assert not page.get_by_role("button", name=name).is_visible()


def test_an_admin_sees_the_workers(dev, request):
    assert dev.call("GET", "/api/admin/scheduler")[0] == 200
    page = request.getfixturevalue("page")  # only once the server has the endpoint
    sign_in(page, dev, dev.token, workspace="demo")
    page.get_by_role("link", name="Scheduler").click()
    workers = page.locator("#workers tbody tr")
    workers.first.wait_for()
    assert "leader" in workers.first.inner_text()
    assert page.get_by_role("button", name="Pause scheduling").is_visible()


def contract_answers(page, answers: dict[str, dict]) -> None:
    """Serve contract-shaped bodies for endpoints other branches add, so the pages' drawing is tested here."""

    def answer(body):
        return lambda route: route.fulfill(json=body)

    for pattern, body in answers.items():
        page.route(pattern, answer(body))


def test_pages_draw_what_the_other_branches_contracts_return(page, dev):
    day = {
        "date": "2026-11-22",
        "counts": {"succeeded": 40, "failed": 2},
        "durationMs": {"p50": 900, "p95": 2100},
    }
    contract_answers(
        page,
        {
            "**/api/workspaces/demo/executions?*": {
                "items": [
                    {"id": "e" * 24, "jobId": dev.job_id, "status": "failed", "trigger": "retry",
                     "queuedAt": "2026-11-22T10:00:00Z", "durationMs": 1200}
                ],
                "nextCursor": None,
            },
            "**/api/workspaces/demo/statistics?*": {
                "from": "2026-11-21", "to": "2026-11-22", "days": 2, "total": 84,
                "counts": {"succeeded": 80, "failed": 4}, "successRate": 0.952,
                "durationMs": {"p50": 900, "p95": 2100, "max": 4000}, "recordsWritten": 12345,
                "perDay": [{**day, "date": "2026-11-21"}, day],
            },
            "**/api/admin/scheduler": {
                "leader": {"owner": "host-a:7:abc", "term": 3, "expiresAt": "2026-11-22T10:00:30Z",
                           "heartbeatAt": "2026-11-22T10:00:00Z"},
                "paused": False, "reloadMode": "polling", "jobsLoaded": 1,
                "workers": [{"workerId": "host-a:7:abc", "host": "host-a", "pid": 7, "version": "0.1.0",
                             "heartbeatAt": "2026-11-22T10:00:00Z", "leading": True, "reloadMode": "polling",
                             "running": []}],
                "nextFireTimes": [{"jobId": dev.job_id, "workspaceId": "demo", "name": DEMO_JOB,
                                   "at": "2026-11-22T10:01:00Z"}],
            },
        },
    )  # fmt: skip
    sign_in(page, dev, dev.token, workspace="demo", path="/ui/runs")
    run = page.locator("#runs tbody tr").first
    run.get_by_role("link", name=DEMO_JOB).wait_for()
    assert "failed" in run.inner_text() and "retry" in run.inner_text()
    page.goto(dev.base + "/ui/statistics")
    page.locator("#per-day-chart svg[role=img]").wait_for()
    assert "95 %" in page.locator("#stats-facts").inner_text()
    assert page.locator("#per-day-chart rect").count() == 4  # two days, two statuses each
    page.goto(dev.base + "/ui/admin")
    worker = page.locator("#workers tbody tr").first
    worker.wait_for()
    assert "leader" in worker.inner_text() and "host-a / 7" in worker.inner_text()
    assert page.get_by_role("button", name="Pause scheduling").is_enabled()

    # The server's own status: nextFireTimes as {utc, local} pairs.
    page.goto(dev.base + f"/ui/jobs/{dev.job_id}")
    fires = page.locator("#next-fires li time")
    fires.first.wait_for()
    assert fires.count() == 5
    assert all(fires.nth(i).get_attribute("datetime").endswith("Z") for i in range(5))


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        ("viewer", [], ["Run now", "Disable", "Save schedule"]),
        ("operator", ["Run now", "Disable"], ["Save schedule"]),
    ],
)
def test_a_role_sees_only_the_buttons_it_may_use(page, dev, role, visible, hidden):
    # whoami as tenant-api's roles will answer it; the end-to-end viewer test above needs that branch.
    page.route("**/api/whoami", lambda route: route.fulfill(json={
        "workspaceId": "demo", "admin": False, "role": role, "name": role}))  # fmt: skip
    dev.has_a_run()
    sign_in(page, dev, dev.token_for(role, role=role), path=f"/ui/jobs/{dev.job_id}")
    page.locator("#history tbody tr").first.wait_for()
    assert f"role {role}" in page.locator("#who-text").inner_text()
    for name in visible:
        assert page.get_by_role("button", name=name, exact=True).is_visible(), name
    for name in hidden:
        assert not page.get_by_role("button", name=name, exact=True).is_visible(), name
    page.goto(dev.base + "/ui/")
    job_row(page, dev).get_by_role("link", name=DEMO_JOB).wait_for()
    can_operate = role != "viewer"
    assert job_row(page, dev).get_by_role("switch").count() == int(can_operate)
    assert job_row(page, dev).get_by_role("button", name=f"Run {DEMO_JOB} now").count() == int(can_operate)
