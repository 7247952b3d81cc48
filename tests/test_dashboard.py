"""The dashboard in a real browser: Debian's chromium, headless, opens the one-time link that
``POST /dashboard/login`` gives the admin, and the rendered DOM (``--dump-dom``) shows the keys and models of
the usage just made, with the numbers the usage report gives. ``DASHBOARD_SCREENSHOT=PATH`` also saves a
screenshot of that page (docs/dashboard.png was made so)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.teams import ADMIN, keys_file, post, report_totals

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="chromium is not installed (Debian: apt-get install chromium)")


class Tables(HTMLParser):
    """The rows of each table of a page, by the table's id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.current = self.tables.setdefault(dict(attrs).get("id", ""), [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None and self.current:
            self.current[-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def browse(url: str, profile: Path, *options: str) -> str:
    assert CHROMIUM, "chromium is required in CI"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile}", *options, url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def login(proxy, key: str = ADMIN) -> httpx.Response:
    return httpx.post(proxy.url + "/dashboard/login", headers={"x-api-key": key}, timeout=30)


@pytest.fixture
def team_proxy(make_proxy, gemini, tmp_path):
    secrets = keys_file(tmp_path / "keys.yaml", alice={}, bob={})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(tmp_path / "keys.yaml"))
    for key, model in ((secrets["alice"], "claude-sonnet-4-6"), (secrets["alice"], "claude-haiku-4-5"),
                       (secrets["bob"], "claude-sonnet-4-6")):
        assert post(proxy, key, model=model).status_code == 200
    return proxy, secrets


def test_only_the_admin_gets_a_link_and_a_link_works_once(team_proxy):
    proxy, secrets = team_proxy
    assert httpx.post(proxy.url + "/dashboard/login").status_code == 401
    assert login(proxy, secrets["alice"]).status_code == 403
    assert httpx.get(proxy.url + "/dashboard").status_code == 401
    link = login(proxy).json()["url"]
    assert link.startswith("/dashboard/open/") and ADMIN not in link
    with httpx.Client(base_url=proxy.url) as browser:
        opened = browser.get(link)
        assert opened.status_code == 303 and opened.headers["location"] == "/dashboard"
        cookie = opened.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ADMIN not in cookie
        assert browser.get("/dashboard").status_code == 200
    assert httpx.get(proxy.url + link).status_code == 401  # used
    assert httpx.get(proxy.url + "/dashboard", cookies={"gemini_proxy_dashboard": "session.9999999999.x.y"}
                     ).status_code == 401


@needs_chromium
def test_the_dashboard_in_chromium_shows_the_usage_report_numbers(team_proxy, tmp_path):
    proxy, _ = team_proxy
    dom = browse(proxy.url + login(proxy).json()["url"], tmp_path / "profile", "--dump-dom")
    tables = Tables()
    tables.feed(dom)
    by_key = {row[0]: row for row in tables.tables["by-key"][1:]}
    by_model = {row[0]: row for row in tables.tables["by-model"][1:]}
    assert set(by_key) == {"alice", "bob"}
    assert {"gemini/gemini-3.1-pro-preview", "gemini/gemini-3.8-flash"} <= set(by_model)
    report = report_totals(proxy, **{"group_by[]": ["api_key_id", "model"]})
    for name in ("alice", "bob"):
        sums = [s for (key, _), s in report.items() if key == name]
        assert int(by_key[name][1].replace(",", "")) == sum(s["input_tokens"] for s in sums)
        assert int(by_key[name][4].replace(",", "")) == sum(s["output_tokens"] for s in sums)
    for model, row in by_model.items():
        sums = [s for (_, m), s in report.items() if m == model]
        assert int(row[4].replace(",", "")) == sum(s["output_tokens"] for s in sums)
    assert re.search(r"<svg[^>]*aria-label=\"tokens by key\"", dom) and "<script" not in dom
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        browse(proxy.url + login(proxy).json()["url"], tmp_path / "profile2", "--window-size=1000,1900",
               f"--screenshot={os.environ['DASHBOARD_SCREENSHOT']}")


def test_the_dashboard_command_prints_a_one_time_link(team_proxy):
    proxy, _ = team_proxy
    done = subprocess.run([sys.executable, "-m", "service.cli", "dashboard", "--url", proxy.url], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PROXY_API_KEY": ADMIN})
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith(proxy.url + "/dashboard/open/") and ADMIN not in link
    assert httpx.get(link, follow_redirects=True).status_code == 200  # to the page, with the cookie
