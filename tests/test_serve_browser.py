"""The `cvaekit serve` page in a real browser: Playwright driving Debian's chromium against a
server on 127.0.0.1 that the test starts on a tiny run (with a long name, so the run
drop-down has to show a long one whole)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cvaekit.testing.local import free_port, only_local

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LONG_NAME = "tiny_fashion_with_a_run_name_long_enough_to_need_the_whole_width"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="no chromium on this machine (Debian's package 'chromium'; .ci/run installs it)"),
]

# The element at the centre of a grid's first and last image (of its first row): the picture
# itself when nothing (a label badge, a button) covers it. Cells are 2 px gaps + the image size.
ON_TOP = """(img, [size, per_row]) => {
    const box = img.getBoundingClientRect(), cell = box.width / img.naturalWidth * (size + 2);
    const at = i => document.elementFromPoint(box.left + cell * (i + 0.5), box.top + cell / 2);
    return [at(0) === img, at(per_row - 1) === img];
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import fashion_recipe

    from cvaekit.serving.page import launch
    from cvaekit.serving import load_runs
    from cvaekit.training import train

    recipe = fashion_recipe(tmp_path_factory.mktemp("browser"), epochs=1, limit=256)
    recipe["eval"]["limit"] = 128
    recipe["name"] = LONG_NAME
    run = train(recipe, progress=False)
    port = free_port()
    page = launch(load_runs([str(run)], device="cpu"), host="127.0.0.1", port=port, block=False)
    yield f"http://127.0.0.1:{port}"
    page.close()


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", only_local)
            page.goto(server)
            yield page
        finally:
            browser.close()


def generate(page, text: str, n: str = "8", temperature: str = "1") -> None:
    page.locator("#generate-text textarea").fill(text)
    page.locator("#generate-n input").fill(n)
    page.locator("#generate-temperature input").fill(temperature)
    page.locator("#generate-button").click()


def test_type_a_word_see_the_grid_and_an_unknown_word_shows_its_error(page):
    from playwright.sync_api import expect

    generate(page, "sneaker")
    image = page.locator("#generate-image img")
    expect(image).to_be_visible(timeout=20_000)
    size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [8 * 30 + 2, 28 + 4]  # eight 28 px images in a row, 2 px gaps
    expect(page.locator("#generate-note")).to_contain_text("8 images in")
    expect(page.locator("#generate-download")).to_be_visible()

    generate(page, "hat")
    error = page.locator("#generate-note [role=alert]")
    expect(error).to_contain_text("'hat' is not a class this model knows", timeout=10_000)


def test_an_error_replaces_the_last_picture_and_the_last_error_and_a_good_picture_clears_it(page):
    from playwright.sync_api import expect

    note, error = page.locator("#generate-note"), page.locator("#generate-note [role=alert]")
    generate(page, "sneaker")
    expect(note).to_contain_text("8 images in", timeout=20_000)

    generate(page, "hat")
    expect(error).to_contain_text("'hat' is not a class", timeout=10_000)
    expect(note).not_to_contain_text("images in")  # the earlier success's note is gone...
    expect(page.locator("#generate-image img")).to_have_count(0)  # ...and so are its picture
    expect(page.locator("#generate-download")).to_be_hidden()  # and its download

    generate(page, "cap")
    expect(error).to_contain_text("'cap' is not a class", timeout=10_000)
    expect(error).to_have_count(1)
    expect(note).not_to_contain_text("'hat'")  # the new error replaced the old one
    expect(page.locator("[data-testid=toast-body]")).to_have_count(0)  # no toasts piling up

    generate(page, "bag")
    expect(note).to_contain_text("8 images in", timeout=20_000)
    expect(error).to_have_count(0)  # the good picture cleared the error
    expect(page.locator("#generate-image img")).to_be_visible()


def test_out_of_range_numbers_are_refused_with_the_range_not_clamped(page):
    from playwright.sync_api import expect

    error = page.locator("#generate-note [role=alert]")
    generate(page, "bag", n="500")
    expect(error).to_contain_text("number of images must be a whole number from 1 to 64; got 500", timeout=10_000)
    expect(page.locator("#generate-n input")).to_have_value("500")  # left as typed, not moved to 64
    generate(page, "bag", temperature="-1")
    expect(error).to_contain_text("temperature must be a number from 0 to 2", timeout=10_000)
    expect(error).to_contain_text("got -1")
    generate(page, "bag", n="64", temperature="2")  # the ends of the ranges are fine
    expect(page.locator("#generate-note")).to_contain_text("64 images in", timeout=20_000)

    page.get_by_role("tab", name="Walk the latent space").click()
    page.locator("#walk-text-a textarea").fill("bag")
    page.locator("#walk-text-b textarea").fill("sneaker")
    page.locator("#walk-steps input").fill("100")
    page.locator("#walk-button").click()
    expect(page.locator("#walk-note [role=alert]")).to_contain_text("from 2 to 64; got 100", timeout=10_000)


def test_the_run_name_shows_whole_and_nothing_covers_the_pictures(page):
    from playwright.sync_api import expect

    for tab, picker in (("Generate", "#generate-run"), ("Walk the latent space", "#walk-run")):
        page.get_by_role("tab", name=tab).click()
        shown = page.locator(f"{picker} input")
        assert shown.input_value().startswith(LONG_NAME)
        assert shown.evaluate("e => e.scrollWidth <= e.clientWidth"), f"{tab}: the run's name is cut"

    page.get_by_role("tab", name="Generate").click()
    generate(page, "sneaker")
    image = page.locator("#generate-image img")
    expect(image).to_be_visible(timeout=20_000)
    page.wait_for_timeout(500)  # the image fades in
    assert image.evaluate(ON_TOP, [28, 8]) == [True, True]  # no 'Samples' badge, no button on it

    page.get_by_role("tab", name="Walk the latent space").click()
    page.locator("#walk-text-a textarea").fill("sneaker")
    page.locator("#walk-text-b textarea").fill("ankle boot")
    page.locator("#walk-steps input").fill("8")
    page.locator("#walk-button").click()
    strip = page.locator("#walk-image img")
    expect(strip).to_be_visible(timeout=20_000)
    expect(page.locator("#walk-note")).to_contain_text("From 'sneaker' to 'ankle boot' at seed 0, in 8 steps")
    page.wait_for_timeout(500)
    assert strip.evaluate(ON_TOP, [28, 8]) == [True, True]
    width, natural, column = strip.evaluate(
        "img => [img.getBoundingClientRect().width, img.naturalWidth,"
        " img.closest('#walk-image').getBoundingClientRect().width]")
    assert natural == 8 * 30 + 2 and width >= 0.9 * column and width >= 3 * natural  # the strip fills its column
