"""The web console in a real browser (Debian's chromium driven by Playwright), against a real
controller and agents: one-time links, the fleet as each operator may see it, running a command,
markup that stays text, and requests from another site.

The fleet CA is not in the browser's trust store here, so the browser contexts accept the
controller's certificate as an operator's browser would once the CA is trusted (docs/console.md).
"""

from __future__ import annotations

import http.server
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import launch, screenshot
from playwright.sync_api import expect

from harness import Agent, Controller, create_user, login, start_fleet

pytestmark = pytest.mark.slow

WEB_READER = """
name: console-web-reader
description: may see the console web hosts, and nothing else
allow:
  - actions: [hosts.read]
    hosts: role=cweb
"""
DONE = "#summary[data-done='1']"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("console-agents"),
        {"cweb-1": {"role": "cweb"}, "cweb-2": {"role": "cweb"}, "cdb-1": {"role": "cdb"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def link(controller: Controller, profile: Path | None = None) -> str:
    url = controller.opsctl("console", "--no-browser", profile=profile).stdout.strip()
    assert url.startswith("https://") and "/login?t=" in url, url
    return url


def signed_in(browser: Any, url: str) -> Any:
    """A new browser (context) signed in with *url*; its page is on the fleet page."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(url)
    assert page.url.endswith("/fleet"), page.url
    return page


def fleet_names(page: Any) -> list[str]:
    return sorted(page.locator("#hosts tbody tr").evaluate_all("rows => rows.map(r => r.dataset.host)"))


def test_a_link_signs_in_once_and_shows_the_fleet_until_sign_out(
    module_controller: Controller, fleet: dict[str, Agent], browser: Any
) -> None:
    url = link(module_controller)
    page = signed_in(browser, url)
    assert fleet_names(page) == ["cdb-1", "cweb-1", "cweb-2"]
    assert page.inner_text("#operator") == "admin"
    screenshot(page, "fleet")

    # The same selectors as the CLI filter the list; a bad one says what is wrong.
    page.fill("input[name=selector]", "role=cweb")
    page.click("form.filter button")
    assert fleet_names(page) == ["cweb-1", "cweb-2"]
    page.fill("input[name=selector]", "role=")
    page.click("form.filter button")
    assert "selector" in page.inner_text("#error") and fleet_names(page) == []

    page.fill("input[name=selector]", "")
    page.click("form.filter button")
    page.click("#hosts >> text=cweb-1")
    assert page.inner_text("#host-name") == "cweb-1"
    assert "role=cweb" in page.inner_text("#tags") and "Agent" in page.inner_text("#inventory")
    screenshot(page, "host")

    # The link was used: another browser cannot sign in with it.
    other = browser.new_context(ignore_https_errors=True).new_page()
    response = other.goto(url)
    assert response.status == 401 and "used already" in other.inner_text("#message")

    # Every page is an audited operator call as the session's operator.
    events = module_controller.opsctl_json("audit", "list", "--action", "hosts.show")
    assert any(e["actor"] == "operator:admin" and e["target"] for e in events)

    page.click("header form.logout button")
    assert "signed out" in page.inner_text("#message")
    # Signing in, the refused second use and signing out are audited (the refusal by address).
    logins = module_controller.opsctl_json("audit", "list", "--action", "console.login")
    assert {(e["actor"], e["outcome"]) for e in logins} >= {("operator:admin", "ok"), ("console:127.0.0.1", "refused")}
    refused = next(e for e in logins if e["outcome"] == "refused")
    assert "used already" in refused["details_json"]
    logouts = module_controller.opsctl_json("audit", "list", "--action", "console.logout")
    assert [e["actor"] for e in logouts] == ["operator:admin"]
    response = page.goto(url.split("/login")[0] + "/fleet")
    assert response.status == 401 and "opsctl console" in page.inner_text("#message")
    page.context.close()
    other.context.close()


def test_an_expired_link_is_refused(module_controller: Controller, fleet: dict[str, Agent], browser: Any) -> None:
    url = link(module_controller)
    # Time passes (the link lives two minutes): what the clock would do, done to the stored link.
    with sqlite3.connect(module_controller.state_dir / "fleetops.db") as db:
        db.execute("UPDATE console_links SET expires_at = '2000-01-01 00:00:00.000000' WHERE used_at IS NULL")
    page = browser.new_context(ignore_https_errors=True).new_page()
    response = page.goto(url)
    assert response.status == 401 and "expired" in page.inner_text("#message")
    assert "opsctl console" in page.inner_text("#message")
    page.context.close()


def test_a_restricted_operator_sees_only_their_hosts(
    module_controller: Controller, fleet: dict[str, Agent], browser: Any, tmp_path: Path
) -> None:
    controller = module_controller
    role_file = tmp_path / "role.yaml"
    role_file.write_text(WEB_READER)
    controller.opsctl("admin", "role", "create", "console-web-reader", "--file", str(role_file))
    profile = tmp_path / "wanda"
    login(controller, profile, create_user(controller, "wanda", "console-web-reader"))

    page = signed_in(browser, link(controller, profile))
    assert fleet_names(page) == ["cweb-1", "cweb-2"]
    base = page.url.rsplit("/fleet", 1)[0]
    # A host of hers: its page (sessions are listed only where she may start them: none).
    page.goto(f"{base}/hosts/cweb-1")
    assert page.inner_text("#host-name") == "cweb-1" and page.inner_text("#host-patches") == "not scanned"
    assert page.inner_text("#host-sessions tbody") == "none"
    # A host she may not see is, for opsctl run list --host, one that does not exist.
    hidden = controller.opsctl("run", "list", "--host", "cdb-1", profile=profile, check=False)
    assert hidden.returncode == 3 and "no such host: cdb-1" in hidden.stderr
    response = page.goto(f"{base}/hosts/cdb-1")
    assert response.status == 403 and "the host is outside your access" in page.inner_text("#message")
    # Running a command needs command.run: refused, audited, and nothing runs.
    before = len(controller.opsctl_json("run", "list"))
    csrf = page.locator("header input[name=csrf]").get_attribute("value")
    response = page.context.request.post(
        f"{base}/commands", form={"selector": "role=cweb", "script": "true", "csrf": csrf}, max_redirects=0
    )
    assert response.status == 403 and "wanda may not run commands" in response.text(), response.text()
    assert len(controller.opsctl_json("run", "list")) == before
    refused = controller.opsctl_json("audit", "list", "--action", "command.run", "--outcome", "denied")
    assert refused[-1]["actor"] == "operator:wanda"
    page.context.close()


def test_a_command_on_two_hosts_shows_both_results_and_markup_stays_text(
    module_controller: Controller, fleet: dict[str, Agent], browser: Any
) -> None:
    page = signed_in(browser, link(module_controller))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    base = page.url.rsplit("/fleet", 1)[0]
    page.goto(f"{base}/commands")
    screenshot(page, "commands")
    page.fill("#selector", "role=cweb")
    page.fill("#script", "printf '%s\\n' '<script>alert(1)</script><b id=bold>bold</b>' \"$FLEETOPS_HOST_NAME\"")
    page.click("#run")
    page.wait_for_selector(DONE, timeout=30_000)
    groups = page.locator("section.group")
    assert groups.count() == 2  # each host printed its own name: two groups of one
    text = page.inner_text("#results")
    assert "cweb-1" in text and "cweb-2" in text and "2 success" in text
    assert page.locator("pre.stdout").first.inner_text().startswith("<script>alert(1)</script><b id=bold>")
    assert page.locator("#bold").count() == 0 and dialogs == []
    screenshot(page, "command")

    # One host's full output.
    command_id = page.inner_text("#command-id")
    page.click("section.group a.host >> nth=0")
    assert "<b id=bold>bold</b>" in page.inner_text("#stdout")
    screenshot(page, "output")
    runs = module_controller.opsctl_json("run", "show", command_id)
    assert runs["command"]["created_by"] == "operator:admin"
    # The host's page lists the commands sent to it (as opsctl run list --host does).
    page.goto(f"{base}/hosts/cweb-1")
    assert command_id in page.inner_text("#host-commands")
    page.goto(f"{base}/hosts/cdb-1")
    assert command_id not in page.inner_text("#host-commands")
    assert command_id in {c["id"] for c in module_controller.opsctl_json("run", "list", "--host", "cweb-2")}
    assert command_id not in {c["id"] for c in module_controller.opsctl_json("run", "list", "--host", "cdb-1")}
    unknown = module_controller.opsctl("run", "list", "--host", "nowhere", check=False)
    assert unknown.returncode == 3 and "no such host: nowhere" in unknown.stderr
    page.context.close()


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another site: a page whose form posts a command to the console as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        body = (
            "<html><body><form id=f method=post action='" + self.target + "/commands'>"
            "<input name=selector value='role=cweb'><input name=script value='touch /tmp/pwned'>"
            "<input name=csrf value=guess></form><script>document.getElementById('f').submit()</script>"
            "</body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_cross_site_form_post_is_refused(
    module_controller: Controller, fleet: dict[str, Agent], browser: Any
) -> None:
    page = signed_in(browser, link(module_controller))
    base = page.url.rsplit("/fleet", 1)[0]
    before = len(module_controller.opsctl_json("run", "list"))

    _Attacker.target = base
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with page.expect_navigation(url=f"{base}/commands"):
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        # The strict cookie is not sent from another site: the console sees no session.
        assert "not signed in" in page.inner_text("#message")
    finally:
        server.shutdown()
        server.server_close()

    # Even with the session cookie (a request made in the signed-in browser) and the right form
    # token, another Origin is refused.
    page.goto(f"{base}/commands")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    response = page.context.request.post(
        f"{base}/commands",
        form={"selector": "role=cweb", "script": "true", "csrf": csrf},
        headers={"Origin": "https://evil.example"},
        max_redirects=0,
    )
    assert response.status == 403 and "another site" in response.text()
    # And without the token, from the console's own origin.
    response = page.context.request.post(
        f"{base}/commands", form={"selector": "role=cweb", "script": "true"}, max_redirects=0
    )
    assert response.status == 403 and "form token" in response.text()
    assert len(module_controller.opsctl_json("run", "list")) == before
    page.context.close()


def wait_for_text(page: Any, text: str | re.Pattern[str], where: str = "#terminal .xterm-rows") -> None:
    """Until *where* shows *text* (a locator: the console's CSP refuses the eval of wait_for_function)."""
    expect(page.locator(where)).to_contain_text(text, timeout=20_000)


def terminal_size(page: Any, label: str) -> tuple[int, int]:
    """(rows, cols) as the host's terminal reports them (stty size)."""
    page.keyboard.type(f"echo {label}-$(stty size | tr ' ' x)\n")
    pattern = re.compile(label + r"-(\d+)x(\d+)")
    wait_for_text(page, pattern)
    found = pattern.search(page.locator("#terminal .xterm-rows").inner_text())
    assert found is not None
    return int(found.group(1)), int(found.group(2))


def test_a_terminal_in_the_browser_is_a_recorded_session_replayed_in_the_page(
    module_controller: Controller, fleet: dict[str, Agent], browser: Any
) -> None:
    page = signed_in(browser, link(module_controller))
    base = page.url.rsplit("/fleet", 1)[0]
    page.goto(f"{base}/hosts/cweb-1")
    page.click("#open-terminal")
    page.wait_for_selector("#term-status[data-state='active']")
    session_id = page.get_attribute("#terminal", "data-session")
    page.click("#terminal")
    page.keyboard.type("echo hello-$((6*7))\n")
    wait_for_text(page, "hello-42")

    # The window's size reaches the host's terminal, and follows a resize of the browser.
    before = terminal_size(page, "first")
    page.set_viewport_size({"width": 900, "height": 600})
    after = terminal_size(page, "second")
    assert after[0] < before[0] and after[1] < before[1], (before, after)
    # Ctrl-C interrupts what runs, as in any terminal.
    # (once the command runs, so that the Ctrl-C reaches it and not the shell still starting it)
    page.keyboard.type("sh -c 'echo running-$((1+1)); exec sleep 30'\n")
    wait_for_text(page, "running-2")
    page.keyboard.press("Control+C")
    page.keyboard.type("echo after-$?\n")
    wait_for_text(page, "after-130")
    screenshot(page, "terminal")
    page.keyboard.type("exit 3\n")
    page.wait_for_selector("#term-status[data-state='ended']")
    assert page.get_attribute("#terminal", "data-exit-code") == "3"
    assert "exit code 3" in page.inner_text("#term-status")

    # Recorded like opsctl session: listed with its exit code, and replayed in the page.
    shown = module_controller.opsctl_json("session", "show", session_id)
    assert shown["operator"] == "operator:admin" and shown["host_name"] == "cweb-1" and shown["exit_code"] == 3
    page.goto(f"{base}/sessions")
    assert page.locator(f"#sessions tr[data-session='{session_id}']").count() == 1
    page.goto(f"{base}/sessions/{session_id}")
    wait_for_text(page, "hello-42", "#player")
    screenshot(page, "replay")
    page.click(".speed-button[data-speed='4']")
    assert page.get_attribute("#player", "data-speed") == "4"
    wait_for_text(page, "after-130", "#player")  # played again, faster, to the end
    page.context.close()


def test_the_audit_page_filters_events_shows_one_and_verifies_the_chain(
    module_controller: Controller, fleet: dict[str, Agent], browser: Any
) -> None:
    module_controller.opsctl("run", "--target", "role=cweb", "--", "true")
    page = signed_in(browser, link(module_controller))
    base = page.url.rsplit("/fleet", 1)[0]
    page.goto(f"{base}/audit")
    page.fill("input[name=action]", "command.run")
    page.click("#audit-filter button")
    rows = page.locator("#events tbody tr[data-event]")
    assert rows.count() >= 1
    actions = rows.locator("td:nth-child(4)").all_inner_texts()
    assert set(actions) == {"command.run"}
    screenshot(page, "audit")
    rows.first.locator("a").click()
    assert "command.run" in page.inner_text("#event")
    assert "role=cweb" in page.inner_text("#details")  # the run's target, from the event's details
    assert page.locator("section.group").count() >= 1  # the command's per-host results
    page.goto(f"{base}/audit?since=yesterday-ish")
    assert "bad since" in page.inner_text("#error")
    page.goto(f"{base}/audit/verify")
    assert "The chain is intact" in page.inner_text("#verdict")
    page.goto(f"{base}/patching")
    assert page.locator("#patch-hosts tbody tr").count() == 3
    screenshot(page, "patching")
    page.goto(f"{base}/windows")
    screenshot(page, "windows")
    page.context.close()
