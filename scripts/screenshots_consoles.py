"""Screenshots of the consoles (Debian's Chromium, zh-CN): 龙华街道's queue, one case, the
department's queue and the hotline's intake form.

    .venv/bin/python scripts/screenshots_consoles.py --base-url http://127.0.0.1:8000 \
        --out docs/screenshots --password-file var/demo_password --case LH-20261125-000073

Called by scripts/screenshots.sh after it loaded the demo queue (scripts/consoles_demo_load.py,
which prints the number of the case to show). Each page is photographed once its live feed is up
(a console whose feed is down shows a red banner: not what the documentation shows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS

# A point in 龙华街道 for the intake form's map click.
INTAKE_LON, INTAKE_LAT = 114.0305, 22.6696


def _page(browser: Browser, base_url: str, username: str, password: str, width: int) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click(".login-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def _wait_live(page: Page) -> None:
    page.wait_for_function(
        "window.cityopsConsole && window.cityopsConsole.feedStatus === 'live'", timeout=30_000
    )


def shoot(base_url: str, out: Path, password: str, case: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        page = _page(browser, base_url, "street", password, 1440)
        page.goto(f"{base_url}/command/street/440309001/", wait_until="networkidle")
        _wait_live(page)
        written.append(out / "console-street.png")
        page.screenshot(path=str(written[-1]))

        if case:
            page.goto(f"{base_url}/command/cases/{case}/", wait_until="networkidle")
            _wait_live(page)
            page.wait_for_function("window.cityopsConsole.mapReady === true", timeout=30_000)
            page.wait_for_selector("#case-photos .photo img")
            page.wait_for_timeout(600)  # the photos decode, the grid cell's outline arrives
            written.append(out / "console-case.png")
            page.screenshot(path=str(written[-1]), full_page=True)
        page.context.close()

        page = _page(browser, base_url, "dept", password, 1440)
        page.goto(f"{base_url}/command/department/", wait_until="networkidle")
        _wait_live(page)
        written.append(out / "console-department.png")
        page.screenshot(path=str(written[-1]))
        page.context.close()

        page = _page(browser, base_url, "district", password, 1440)
        page.goto(f"{base_url}/command/intake/", wait_until="networkidle")
        page.wait_for_function("window.cityopsIntake && window.cityopsIntake.ready")
        page.fill("#category-search", "井盖")
        page.select_option("#category-select", "01001")
        page.fill("textarea[name=description]", "人行道上供水井盖缺失，已有行人绊倒")
        page.fill("input[name=reporter_name]", "王先生")
        page.fill("input[name=reporter_phone]", "13912345678")
        page.fill("input[name=address]", "人民路 88 号门前")
        page.evaluate(
            "([lon, lat]) => window.cityopsIntake.map.setView([lat, lon], 15, {animate: false})",
            [INTAKE_LON, INTAKE_LAT],
        )
        box = page.locator("#intake-map").bounding_box()
        assert box is not None
        point = page.evaluate(
            "([lon, lat]) => window.cityopsIntake.map.latLngToContainerPoint([lat, lon])",
            [INTAKE_LON, INTAKE_LAT],
        )
        page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
        page.wait_for_selector("#point-readout[data-state=ok]")
        page.evaluate("window.scrollTo(0, 0)")
        written.append(out / "console-intake.png")
        page.screenshot(path=str(written[-1]), full_page=True)
        page.context.close()

        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--password-file", type=Path, default=Path("var/demo_password"))
    parser.add_argument("--case", default="", help="number of the case page to photograph")
    args = parser.parse_args(argv)
    password = args.password_file.read_text().strip()
    for path in shoot(args.base_url.rstrip("/"), args.out, password, args.case):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
