"""Screenshots of the district wall screen at 1920×1080 and 3840×2160 (Debian's Chromium).

    .venv/bin/python scripts/screenshots_wall.py --base-url http://127.0.0.1:8000 \
        --wall-path "/command/wall/?token=cw_…" --out docs/screenshots

Called by scripts/screenshots.sh after it loaded the wall's demo day (scripts/wall_demo_load.py)
and issued a screen token (command_issue_screen_token). The wall is opened as a kiosk would open
it — through the token's address — and photographed once its map, figures and live feed are up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS

SIZES = [("wall-1920x1080.png", 1920, 1080), ("wall-3840x2160.png", 3840, 2160)]


def _wait_for_wall(page: Page) -> None:
    page.wait_for_function(
        "window.cityopsWall && window.cityopsWall.ready && window.cityopsWall.boundaries",
        timeout=60_000,
    )
    # A wall whose live feed is down shows a red banner: not what the documentation shows.
    page.wait_for_function("window.cityopsWall.status === 'live'", timeout=30_000)
    page.wait_for_timeout(1500)  # chart animations and the marker clusters settle


def shoot(base_url: str, wall_path: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, width, height in SIZES:
            context = browser.new_context(
                viewport={"width": width, "height": height},
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
            )
            page = context.new_page()
            page.goto(base_url + wall_path, wait_until="networkidle")
            _wait_for_wall(page)
            mismatches = page.evaluate("window.cityopsWall.mismatches")
            if mismatches:
                print(f"warning: the wall's figures differ from the server's: {mismatches}")
            written.append(out / name)
            page.screenshot(path=str(written[-1]))
            context.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--wall-path", required=True, help="/command/wall/?token=… (one token)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    for path in shoot(args.base_url.rstrip("/"), args.wall_path, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
