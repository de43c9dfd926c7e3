"""Fixtures of the browser tests: Debian's Chromium through Playwright, against pytest-django's
live server (a thread of this process, serving static files through the staticfiles finders).

No browser is ever downloaded: Playwright drives /usr/bin/chromium (Debian package `chromium`,
installed by `scripts/bootstrap.sh dev`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def _async_unsafe_allowed() -> Iterator[None]:
    """Playwright's sync API runs an event loop in this thread; Django refuses database calls
    from a thread with a running loop unless told the caller knows what it does. Set for the
    browser tests only, and restored afterwards."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_async_unsafe_allowed: None) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `scripts/bootstrap.sh dev` (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def plain_static_storage(settings: Any) -> None:
    """The manifest storage of the settings needs `collectstatic`; the live server serves static
    files from the finders instead, so templates must produce plain /static/ URLs."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


class PageRecorder:
    """A browser page that remembers every request it made and every script error."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def foreign_requests(self) -> list[str]:
        """Requests to anything but the live server (blob: and data: URLs are in-page)."""
        own = urlsplit(self.base_url).netloc
        foreign = []
        for url in self.requests:
            if url.startswith("data:"):
                continue
            target = url[len("blob:") :] if url.startswith("blob:") else url
            if urlsplit(target).netloc != own:
                foreign.append(url)
        return foreign


@pytest.fixture
def recorder(
    browser: Any, live_server: Any, committed_demo_geography: None, plain_static_storage: None
) -> Iterator[PageRecorder]:
    # zh-CN: the pages are shown in Simplified Chinese, as at the command centre.
    context = browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield PageRecorder(page, live_server.url)
    context.close()
