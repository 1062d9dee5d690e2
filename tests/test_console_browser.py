"""The console end to end in a real headless Chromium (Debian's ``chromium``, driven by
Playwright; nothing downloads a browser): ``cachekit console`` runs as a user starts it,
in its own process, against a real Redis holding real MiniLM traffic.

Without a Chromium these tests skip, unless ``CACHEKIT_REQUIRE_BROWSER=1`` (CI sets it)
makes that a failure. ``CACHEKIT_CHROMIUM`` names another binary. With
``CACHEKIT_CONSOLE_SCREENSHOTS=<dir>`` the page screenshots are written there (the README's
are made that way: ``docs/console``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from cachekit import LLMCache
from cachekit._layout import encode_tenant
from cachekit._server import RedisServer
from tests.test_console import PAIRS, XSS_PARAPHRASE, _traffic

TOKEN = "browser-console-token-0123456789"
ACME = encode_tenant("acme")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machine's network is closed: without these Chromium keeps dialling Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    given = os.environ.get("CACHEKIT_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        message = "no Chromium found (apt-get install -y chromium, or set CACHEKIT_CHROMIUM)"
        if os.environ.get("CACHEKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("CACHEKIT_REQUIRE_BROWSER") == "1":
            pytest.fail("playwright is not installed (it is in the dev extra)")
        pytest.skip("playwright is not installed")
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    srv = RedisServer().start()
    yield srv
    srv.stop()


def _seed(url: str, embedder: Any) -> None:
    """The app's traffic: real MiniLM, the default verifier, every record sampled."""
    from cachekit.verify import default_verifier

    async def seed() -> None:
        cache = LLMCache.from_url(
            url,
            embedder=embedder,
            verifier=default_verifier(),
            background_stores=False,
            near_miss_sample=1.0,
            review_sample=1.0,
        )
        try:
            await _traffic(cache)
        finally:
            await cache.aclose()

    asyncio.run(seed())


@pytest.fixture(scope="module")
def seeded_url(server: RedisServer, minilm: Any) -> str:
    _seed(server.url, minilm)
    return server.url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def console_url(
    seeded_url: str, minilm: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``cachekit console`` in a fresh process (cold model), as a user starts it."""
    port = _free_port()
    log = tmp_path_factory.mktemp("console") / "console.log"
    env = {**os.environ, "CACHEKIT_CONSOLE_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cachekit", "console", "--redis-url", seeded_url,
             "--port", str(port), "--history-interval", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the console exited: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the console did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        # More traffic while it runs (now exact hits), between its snapshots (1 s apart):
        # the overview's chart has something to show.
        time.sleep(1.5)
        _seed(seeded_url, minilm)
        time.sleep(1.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert f"?token={TOKEN}" in log.read_text()  # the start-up line names the URL


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, console_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    dialogs: list[str] = []
    p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.dialogs = dialogs
    p.goto(f"{console_url}/?token={TOKEN}")
    yield p
    context.close()


def _shot(page: Any, name: str, tmp_path: Path) -> None:
    where = Path(os.environ.get("CACHEKIT_CONSOLE_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(where / f"{name}.png"), full_page=True)


def test_a_browser_without_the_token_is_refused(browser: Any, console_url: str) -> None:
    context = browser.new_context()
    p = context.new_page()
    response = p.goto(f"{console_url}/review")
    assert response.status == 401
    assert "needs its token" in p.content()
    assert "password" not in p.content()
    context.close()


def test_every_page_renders(page: Any, console_url: str, tmp_path: Path) -> None:
    expected = {
        "overview": ("/", "Per namespace and tenant"),
        "quality": ("/quality", "Similarity of what the cache served and refused"),
        "review": ("/review", "Keys:"),
        "explain": ("/explain", "Explain"),
        "actions": ("/actions", "Invalidate"),
    }
    for name, (path, text) in expected.items():
        response = page.goto(console_url + path)
        assert response.status == 200, name
        assert text in page.content(), name
        if name == "overview":
            assert page.locator("#rows tbody tr").count() == 2
            assert page.locator("svg.chart rect.s-exact").count() >= 1  # traffic over time
        if name == "quality":
            assert page.locator("svg.chart rect").count() >= 2
            assert page.locator("svg.chart .marker").count() == 1
        _shot(page, name, tmp_path)


def test_a_script_in_a_prompt_renders_as_text(page: Any, console_url: str) -> None:
    page.goto(f"{console_url}/review?kind=hit&tenant_token={ACME}")
    prompts = page.locator("pre.prompt", has_text="<script>alert('pwned')</script>")
    assert prompts.count() == 1
    assert prompts.first.inner_text() == XSS_PARAPHRASE
    page.wait_for_timeout(200)
    assert page.dialogs == []  # nothing ran
    assert page.evaluate("document.querySelectorAll('main script').length") == 0


def test_label_a_review_item_with_the_keyboard(
    page: Any, console_url: str, seeded_url: str, tmp_path: Path
) -> None:
    page.goto(f"{console_url}/review?kind=rejected&tenant_token={ACME}")
    first = page.locator("#queue .item").first
    item_id = first.get_attribute("data-id")
    assert item_id and item_id.startswith(f"support/{ACME}/")
    prompt = first.locator("pre.prompt").inner_text()
    page.keyboard.press("d")  # "different": the verifier was right to refuse it
    page.wait_for_selector(f'#queue .item[data-id="{item_id}"].label-different')
    assert first.locator(".label-state").inner_text() == "different"
    second = page.locator("#queue .item").nth(1)
    assert "current" in (second.get_attribute("class") or "")  # focus moved on
    _shot(page, "review-labelled", tmp_path)

    r = redis.Redis.from_url(seeded_url)
    try:
        stored = r.hgetall(f"ckl:{{support:{ACME}}}:labels")
    finally:
        r.close()
    label = json.loads(stored[item_id.rsplit("/", 1)[1].encode()])
    assert label["label"] == "different" and label["prompt"] == prompt

    export = page.request.get(f"{console_url}/labels.jsonl?tenant_token={ACME}")
    assert export.status == 200
    lines = [json.loads(x) for x in export.text().splitlines()]
    assert {"text_a": prompt, "label": 0}.items() <= lines[0].items()


def test_explain_a_pasted_request(page: Any, console_url: str) -> None:
    page.goto(f"{console_url}/explain")
    page.fill("input[name=namespace]", "support")
    page.fill("textarea[name=body]", json.dumps({"prompt": PAIRS[0][0]}))
    page.click("form.explain button[type=submit]")
    page.wait_for_selector("#verdict")
    assert "MISS" in page.inner_text("#verdict")  # the decorator's scope is not an HTTP path
    assert "manifest" in page.inner_text("#explanation")


def test_invalidate_a_tenant_from_the_actions_page(
    page: Any, console_url: str, seeded_url: str, tmp_path: Path
) -> None:
    r = redis.Redis.from_url(seeded_url)
    try:
        before = int(r.get(f"ck:{{support:{ACME}}}:gen") or 0)
        page.goto(f"{console_url}/actions")
        page.click(f'button.invalidate[data-target="support/{ACME}"]')
        page.wait_for_selector("#confirm")
        _shot(page, "confirm", tmp_path)
        page.fill("input[name=confirm]", "wrong")
        page.click("#confirm button[type=submit]")
        assert "Not confirmed" in page.content()
        assert int(r.get(f"ck:{{support:{ACME}}}:gen") or 0) == before
        page.goto(f"{console_url}/actions")
        page.click(f'button.invalidate[data-target="support/{ACME}"]')
        page.fill("input[name=confirm]", "support")
        page.click("#confirm button[type=submit]")
        page.wait_for_selector("#done")
        assert "Invalidated" in page.inner_text("#done")
        assert int(r.get(f"ck:{{support:{ACME}}}:gen") or 0) > before
    finally:
        r.close()
