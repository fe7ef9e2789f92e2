"""Fixtures of the browser tests: a live server per test, one Chromium per session, page factories.

Tests marked ``browser`` are skipped, with the reason, when ``/usr/bin/chromium`` or the ``playwright`` package
is missing (``make browser`` installs Chromium; ``playwright`` is in the ``test`` extra).
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from kernel.settings import Settings
from tests.pages.kit import CHROMIUM, camera_args, show_to_camera
from tests.pages.live import LiveServer, live_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (make browser, or apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing (pip install -e '.[test]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake camera's clip; blank until a test shows it a QR code (``kit.show_to_camera``)."""
    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, format="PNG")
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    show_to_camera(path, buf.getvalue())
    return path


@pytest.fixture(scope="session")
def browser(camera_file: Path) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=camera_args(camera_file)
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with live_server(make_settings) as live:
        yield live


@pytest.fixture
def open_page(browser: Browser, server: LiveServer) -> Iterator[Callable[..., Page]]:
    """``open_page(path, device, lang)``: a new context (device profile, Accept-Language) with one page."""
    contexts: list[BrowserContext] = []

    def factory(path: str, device: dict[str, Any], lang: str = "en") -> Page:
        context = browser.new_context(
            base_url=server.base_url,
            locale="zh-CN" if lang == "zh-CN" else "en-GB",
            extra_http_headers={"Accept-Language": f"{lang},{lang.split('-', maxsplit=1)[0]};q=0.9"},
            permissions=["camera"],
            accept_downloads=True,
            **device,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(path)
        return page

    yield factory
    for context in contexts:
        context.close()
