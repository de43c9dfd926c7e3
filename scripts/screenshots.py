"""Take the documentation screenshots of a running CityOps server with Debian's Chromium.

    .venv/bin/python scripts/screenshots.py --base-url http://127.0.0.1:8000 \
        --out docs/screenshots --username admin --password-file var/demo_password

Called by scripts/screenshots.sh, which starts a throw-away server first. Never downloads a
browser: it drives /usr/bin/chromium (Debian package `chromium`). Pages are shown in Simplified
Chinese (the browser asks for zh-CN), as a command centre would see them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS

# A point in 龙华街道, near Longhua station: the map screenshots show its lookup in the panel.
SAMPLE_LON, SAMPLE_LAT = 114.0305, 22.6696


def _wait_for_map(page: Page) -> None:
    page.wait_for_function("window.cityopsMap && window.cityopsMap.ready", timeout=30_000)


def _click_lonlat(page: Page, lon: float, lat: float) -> None:
    point = page.evaluate(
        """([lon, lat]) => {
            const p = window.cityopsMap.map.latLngToContainerPoint([lat, lon]);
            const box = document.getElementById('map').getBoundingClientRect();
            return {x: box.left + p.x, y: box.top + p.y};
        }""",
        [lon, lat],
    )
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function(
        "document.getElementById('locate-output').dataset.state === 'ok'", timeout=15_000
    )
    page.wait_for_timeout(400)  # the highlighted cell's outline arrives with a second request


def shoot(base_url: str, out: Path, username: str, password: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context_args: dict[str, Any] = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai"}

        context = browser.new_context(viewport={"width": 1280, "height": 800}, **context_args)
        page = context.new_page()
        page.goto(f"{base_url}/", wait_until="networkidle")
        written.append(out / "home.png")
        page.screenshot(path=str(written[-1]), full_page=True)
        context.close()

        context = browser.new_context(viewport={"width": 1920, "height": 1080}, **context_args)
        page = context.new_page()
        page.goto(f"{base_url}/map/", wait_until="networkidle")
        _wait_for_map(page)
        _click_lonlat(page, SAMPLE_LON, SAMPLE_LAT)
        written.append(out / "map-district.png")
        page.screenshot(path=str(written[-1]))
        context.close()

        context = browser.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            **context_args,
        )
        page = context.new_page()
        page.goto(f"{base_url}/map/", wait_until="networkidle")
        _wait_for_map(page)
        _click_lonlat(page, SAMPLE_LON, SAMPLE_LAT)
        written.append(out / "map-mobile.png")
        page.screenshot(path=str(written[-1]))
        context.close()

        context = browser.new_context(viewport={"width": 1440, "height": 900}, **context_args)
        # The admin's navigation sidebar starts collapsed, leaving the width to the tables.
        context.add_init_script(
            "window.localStorage.setItem('django.admin.navSidebarIsOpen', 'false')"
        )
        page = context.new_page()
        page.goto(f"{base_url}/admin/login/?next=/admin/gridmap/generation/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/gridmap/generation/")
        # screenshots.sh stores a draft with deliberate errors; validate it with the admin action.
        draft = page.locator("#result_list tbody tr", has_text="草稿示例")
        if draft.count():
            draft.locator("input.action-select").check()
            page.select_option("select[name=action]", "validate")
            page.click("button[name=index]")
            page.wait_for_selector("ul.messagelist")
            written.append(out / "admin-generations.png")
            page.screenshot(path=str(written[-1]))
            page.locator("#result_list tbody tr", has_text="草稿示例").locator("a").first.click()
        else:
            page.locator("#result_list tbody tr a").first.click()
        page.wait_for_selector("[data-testid=validation-report]")
        written.append(out / "admin-generation.png")
        page.screenshot(path=str(written[-1]), full_page=True)
        context.close()

        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password-file", type=Path, default=Path("var/demo_password"))
    args = parser.parse_args(argv)
    password = args.password_file.read_text().strip()
    for path in shoot(args.base_url.rstrip("/"), args.out, args.username, password):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
