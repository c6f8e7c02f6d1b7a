"""The `cvaekit serve` page in a real browser: Playwright driving Debian's chromium against a
server on 127.0.0.1 that the test starts on a tiny run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cvaekit.testing.local import free_port, only_local

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="no chromium on this machine (Debian's package 'chromium'; .ci/run installs it)"),
]






@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import fashion_recipe

    from cvaekit.serving.page import launch
    from cvaekit.serving import load_runs
    from cvaekit.training import train

    recipe = fashion_recipe(tmp_path_factory.mktemp("browser"), epochs=1, limit=256)
    recipe["eval"]["limit"] = 128
    run = train(recipe, progress=False)
    port = free_port()
    page = launch(load_runs([str(run)], device="cpu"), host="127.0.0.1", port=port, block=False)
    yield f"http://127.0.0.1:{port}"
    page.close()


def test_type_a_word_see_the_grid_and_an_unknown_word_shows_its_error(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", only_local)
            page.goto(server)
            page.locator("#generate-text textarea").fill("sneaker")
            page.locator("#generate-button").click()
            image = page.locator("#generate-image img")
            expect(image).to_be_visible(timeout=20_000)
            size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert size == [8 * 30 + 2, 28 + 4]  # eight 28 px images in a row, 2 px gaps
            expect(page.locator("#generate-note")).to_contain_text("8 images in")
            expect(page.locator("#generate-download")).to_be_visible()

            page.locator("#generate-text textarea").fill("hat")
            page.locator("#generate-button").click()
            expect(page.get_by_text("'hat' is not a class this model knows")).to_be_visible(timeout=10_000)
        finally:
            browser.close()
