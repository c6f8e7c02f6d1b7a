"""Screenshots of the `cvaekit serve` page's three tabs for docs/serve.md, from one browser session.

    python docs/serve_screenshots.py runs/quickstart-<stamp>@4 runs/quickstart-<stamp>@8 runs/quickstart-<stamp> \\
        --text sneaker --walk sneaker "ankle boot"

starts the page on 127.0.0.1 for the given runs (Generate and Walk show the last one), drives it with Playwright and Debian's
chromium (/usr/bin/chromium; nothing else is reached), and writes docs/images/serve-generate.png,
serve-compare.png and serve-walk.png.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from cvaekit.page import launch
from cvaekit.serving import load_runs
from cvaekit.testing.local import free_port, only_local

HERE = Path(__file__).resolve().parent






def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (RUN@EPOCH for a checkpoint)")
    parser.add_argument("--text", default="sneaker", help="the text for Generate and Compare")
    parser.add_argument("--walk", nargs=2, default=["sneaker", "ankle boot"], metavar=("FROM", "TO"))
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    port = free_port()
    runs = load_runs(args.runs)
    server = launch(runs, port=port, block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", only_local)
            page.goto(f"http://127.0.0.1:{port}")

            def shoot(name: str, image: str) -> None:
                expect(page.locator(f"{image} img")).to_be_visible(timeout=60_000)
                page.wait_for_timeout(500)  # let the image finish fading in
                path = args.out / f"serve-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"Wrote {path}")

            def choose_last_run(picker: str) -> None:  # Generate and Walk show the last run named
                page.locator(f"{picker} input").click()
                page.get_by_role("option", name=runs[-1].label, exact=True).click()

            choose_last_run("#generate-run")
            page.locator("#generate-text textarea").fill(args.text)
            page.locator("#generate-button").click()
            shoot("generate", "#generate-image")

            page.get_by_role("tab", name="Compare runs").click()
            page.locator("#compare-text textarea").fill(args.text)
            page.locator("#compare-button").click()
            shoot("compare", "#compare-image")

            page.get_by_role("tab", name="Walk the latent space").click()
            choose_last_run("#walk-run")
            page.locator("#walk-text-a textarea").fill(args.walk[0])
            page.locator("#walk-text-b textarea").fill(args.walk[1])
            page.locator("#walk-button").click()
            shoot("walk", "#walk-image")
            browser.close()
    finally:
        server.close()


if __name__ == "__main__":
    main()
