"""The page shells: served without a token (they hold no data), locked to this origin, escaping input."""

import re

import pytest

from api.ui.pages import PAGES


async def test_root_sends_the_browser_to_the_jobs_page(client):
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/ui/"


@pytest.mark.parametrize("path", [path.replace("{jobId}", "0" * 24) for path, *_ in PAGES])
async def test_every_page_is_html_locked_to_this_origin_with_no_inline_script(client, path):
    resp = await client.get(path)
    assert resp.status == 200 and resp.content_type == "text/html"
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    html = await resp.text()
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all('type="module"' in tag and "src=" in tag for tag in scripts)
    # Every script and stylesheet it loads is served by this process.
    for asset in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', html):
        assert (await client.get(asset)).status == 200


async def test_a_job_id_with_markup_is_escaped_in_the_page(client):
    resp = await client.get("/ui/jobs/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    html = await resp.text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


async def test_the_static_route_serves_nothing_outside_its_folder(client):
    for path in ("/ui/static/../pages.py", "/ui/static/%2e%2e/pages.py", "/ui/static/..%2fpages.py"):
        assert (await client.get(path)).status in (403, 404)
