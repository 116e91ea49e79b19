"""Real-browser helpers for the tests (Playwright driving Debian's chromium).

Never downloads a browser (no ``playwright install``): the binary is ``$CALLCENTER_CHROMIUM`` or
``chromium`` on PATH (Debian's package). Pages are driven as a person would — type into the sign-in
form, click buttons — and waited on by selector, never by evaluating strings in the page (the
daemon's Content-Security-Policy forbids eval, which Playwright's ``wait_for_function`` needs).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["ARTIFACTS", "CHROMIUM_ARGS", "chromium", "chromium_path", "sign_in", "watch_errors"]

ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots (gitignored)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TV = {"width": 1920, "height": 1080}


def chromium_path() -> str | None:
    """The chromium binary to drive, or None when the host has none."""
    env = os.environ.get("CALLCENTER_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless chromium (Playwright's async API); closed on exit."""
    from playwright.async_api import async_playwright
    path = chromium_path()
    if path is None:
        raise FileNotFoundError("no chromium (apt-get install chromium, or set CALLCENTER_CHROMIUM)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


# What the browser itself logs for a failed request (an expected 4xx, the daemon down): not script errors.
_NETWORK = ("Failed to load resource", "WebSocket connection to")


def watch_errors(page: Any) -> list[str]:
    """Uncaught script errors and console errors of ``page`` (a list that fills as they happen),
    except the browser's own notes on failed requests."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    page.on("console", lambda m: errors.append(f"{page.url}: console: {m.text}")
            if m.type == "error" and not m.text.startswith(_NETWORK) else None)
    return errors


async def sign_in(browser: Any, base: str, login: str, password: str, next_path: str | None = None,
                  viewport: dict[str, int] = TV) -> tuple[Any, list[str]]:
    """A fresh browser context signed in through the sign-in form; returns (page, its script errors),
    the page on ``next_path`` (or where the role lands) with its live stream connected."""
    ctx = await browser.new_context(viewport=viewport)
    page = await ctx.new_page()
    errors = watch_errors(page)
    url = f"{base}/ui/login.html" + (f"?next={quote(next_path, safe='')}" if next_path else "")
    await page.goto(url)
    await page.fill("#login-name", login)
    await page.fill("#password", password)
    await page.click("#submit")
    await page.wait_for_url(lambda u: "/ui/login.html" not in u, timeout=10_000)
    await page.wait_for_selector('#conn[data-state="live"]', timeout=10_000)
    return page, errors
