"""Screenshots of the grid worker's phone pages (/m/) at 360×740, with Debian's Chromium.

    .venv/bin/python scripts/screenshots_mobile.py --base-url http://127.0.0.1:8000 \
        --out docs/screenshots --username gridworker --password-file var/demo_password \
        --lon 114.03 --lat 22.67

Called by scripts/screenshots.sh after it stored the demo users and a few cases for the grid
worker. The phone's position comes from the browser context's geolocation (the page asks
navigator.geolocation, as on a phone); the photo is a JPEG drawn here.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS


def _photo(folder: Path) -> Path:
    image = Image.new("RGB", (1200, 900), "#7d8b99")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 600, 1200, 900), fill="#5b5f63")  # the pavement
    draw.ellipse((380, 420, 820, 760), fill="#3d4a3b")  # a heap of rubbish bags
    draw.ellipse((470, 380, 700, 560), fill="#2f3b2e")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    path = folder / "scene.jpg"
    path.write_bytes(buffer.getvalue())
    return path


def _sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next=/m/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click(".login-form button[type=submit]")
    page.wait_for_url(f"{base_url}/m/")


def shoot(
    base_url: str, out: Path, username: str, password: str, lon: float, lat: float
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as folder:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context: Any = browser.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
            permissions=["geolocation"],
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        _sign_in(page, base_url, username, password)
        page.wait_for_selector("#geo[data-state=ok]")
        page.wait_for_function("!document.getElementById('geo-grid').textContent.includes('…')")

        page.click("#category-button")
        page.locator("#picker-list details[data-group='01'] summary").click()
        written.append(out / "mobile-picker.png")
        page.screenshot(path=str(written[-1]))
        page.fill("#picker-search", "垃圾")
        written.append(out / "mobile-picker-search.png")
        page.screenshot(path=str(written[-1]))
        page.click("#picker-list .m-option[data-code='06010']")

        page.fill("#description-input", "和平路东侧人行道堆放生活垃圾约 1 立方米，已影响通行。")
        page.set_input_files("#photo-input", str(_photo(Path(folder))))
        page.wait_for_selector("#photo-previews img")
        page.evaluate("window.scrollTo(0, 0)")
        written.append(out / "mobile-report.png")
        page.screenshot(path=str(written[-1]))
        page.locator("#report-submit").scroll_into_view_if_needed()
        written.append(out / "mobile-report-photo.png")
        page.screenshot(path=str(written[-1]))

        # Offline: the report waits on the phone, visibly pending.
        context.set_offline(True)
        page.wait_for_selector("#m-net[data-state=offline]")
        page.click("#report-submit")
        page.wait_for_selector("#outbox-list .m-entry[data-state=pending]")
        page.evaluate("window.scrollTo(0, 0)")
        written.append(out / "mobile-pending.png")
        page.screenshot(path=str(written[-1]))

        context.set_offline(False)
        page.wait_for_selector("#delivered-list [data-number]")
        page.goto(f"{base_url}/m/tasks/")
        page.wait_for_selector("#task-list")
        page.wait_for_timeout(1500)  # the live feed's status settles
        written.append(out / "mobile-tasks.png")
        page.screenshot(path=str(written[-1]))

        # 共享我的位置 switched on: the position goes to the command centres' maps.
        page.locator(".m-switch").click()
        page.wait_for_selector("#m-share[data-state=on]")
        written.append(out / "mobile-share.png")
        page.screenshot(path=str(written[-1]))

        page.locator(".m-task a").first.click()
        page.wait_for_selector(".m-case")
        written.append(out / "mobile-task.png")
        page.screenshot(path=str(written[-1]))

        # The same phone in English (the language switch in the header).
        page.goto(f"{base_url}/m/")
        page.click("#m-menu summary")
        page.click(".lang-switch button[value=en]")
        page.wait_for_selector("html[lang=en]")
        page.wait_for_selector("#geo[data-state=ok]")
        written.append(out / "mobile-report-en.png")
        page.screenshot(path=str(written[-1]))
        page.click("#m-menu summary")
        written.append(out / "mobile-menu-en.png")
        page.screenshot(path=str(written[-1]))
        page.click(".lang-switch button[value=zh-hans]")
        page.wait_for_selector("html[lang=zh-Hans]")
        context.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--username", default="gridworker")
    parser.add_argument("--password-file", type=Path, default=Path("var/demo_password"))
    parser.add_argument("--lon", type=float, required=True)
    parser.add_argument("--lat", type=float, required=True)
    args = parser.parse_args(argv)
    password = args.password_file.read_text().strip()
    base = args.base_url.rstrip("/")
    for path in shoot(base, args.out, args.username, password, args.lon, args.lat):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
