"""The dashboard in headless Chromium (Debian's, through Playwright), after a seeded run."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import pytest
from monitor_kit import ALL_DAY

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
KEY = "dashboard-admin-key"

pytestmark = pytest.mark.browser


def _require_browser() -> None:
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing:
        if os.environ.get("MEETGATE_TEST_SERVICES") == "1":
            pytest.fail(f"{missing}, and MEETGATE_TEST_SERVICES=1 requires the browser test")
        pytest.skip(missing)


class Served:
    """A gateway app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_dashboard_renders_the_seeded_run(deployment, world):
    _require_browser()
    from playwright.sync_api import sync_playwright

    from meetgate.gateway.app import create_app
    from meetgate.gateway.dashboard import hash_admin_key
    from meetgate.gateway.scope import StaticPolicyScope
    from meetgate.gateway.settings import GatewaySettings
    from meetgate_sandbox.fakes.meetings import InMemoryMeetings

    # the seeded run: meetings through the gateway against the sandbox, a refusal, a monitor pass
    with deployment.gateway() as gw:
        for user in world.app.pilot_users:
            assert gw.create("booking", user.upn) == 201
        assert gw.create("booking", world.app.pilot_users[0].upn) == 201
        assert gw.create("crm", world.app.other_users[0].upn) == 403
    deployment.monitor.thresholds = dataclasses.replace(ALL_DAY, policy_403=1)
    result = deployment.run()
    assert [a.rule for a in result.alerts] == ["failures_policy_403"]

    # the dashboard, served by a gateway over the same store
    settings = GatewaySettings(store_url="sqlite://", admin_key_sha256=hash_admin_key(KEY))
    scope = StaticPolicyScope(())
    app = create_app(settings, meetings=InMemoryMeetings(scope=scope), scope=scope, store=deployment.store)
    ARTIFACTS.mkdir(exist_ok=True)
    with Served(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            anonymous = browser.new_page()
            assert anonymous.request.get(f"{base}/admin/dashboard").status == 401
            page = browser.new_page(
                extra_http_headers={"X-Admin-Key": KEY}, viewport={"width": 1280, "height": 1100}
            )
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            response = page.goto(f"{base}/admin/dashboard")
            assert response is not None and response.status == 200
            assert response.headers["content-security-policy"].startswith("default-src 'none'")
            # the strict policy blocks nothing the page uses: its stylesheet (by hash) is applied
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(250, 250, 250)"
            from meetgate.gateway.dashboard import SEVERITY_COLOURS

            colour = SEVERITY_COLOURS[deployment.monitor.repo.alerts()[0]["severity"]]
            rgb = "rgb({}, {}, {})".format(*(int(colour[i : i + 2], 16) for i in (1, 3, 5)))
            severity = page.locator("#alerts tr.alert td").first
            assert severity.evaluate("td => getComputedStyle(td).color") == rgb  # a class, not style=
            assert not [m for m in console if "Content Security Policy" in m], console
            assert page.locator("#kpi-meetings b").inner_text() == "3"
            heights = page.locator("#meetings svg rect.bar").evaluate_all(
                "bars => bars.map(b => b.getBoundingClientRect().height)"
            )
            assert heights and max(heights) > 20  # drawn, scaled to the peak
            organizers = page.locator("#organizers svg rect.bar")
            assert organizers.count() == 2
            assert page.locator("#failures svg rect.bar[data-value='1']").count() >= 1
            assert page.locator("#alerts tr.alert").count() == len(deployment.monitor.repo.alerts())
            assert page.locator("#certificates td").first.inner_text().endswith("…")
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
