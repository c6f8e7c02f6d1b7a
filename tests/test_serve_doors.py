"""The serve page's doors: where it listens, the password it asks for, and the page's limits
holding through its HTTP API as well as in the form."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import CvaekitError
from cvaekit.serving.doors import is_local, open_warning, read_auth

runner = CliRunner()


def test_only_loopback_addresses_are_this_machine_only():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]"):
        assert is_local(host), host
    for host in ("0.0.0.0", "::", "192.168.1.4", "myhost"):
        assert not is_local(host), host
    assert open_warning("127.0.0.1", None) is None
    assert "--auth USER:PASSWORD" in open_warning("0.0.0.0", None) and "no password" in open_warning("0.0.0.0", None)
    assert "asks for a user and password" in open_warning("0.0.0.0", [("a", "b")])


def test_auth_from_the_option_or_a_file(tmp_path):
    assert read_auth() is None
    assert read_auth("ann:s3:cret") == [("ann", "s3:cret")]  # the password may hold colons
    users = tmp_path / "users"
    users.write_text("# who may use the page\nann:one\n\n bob :two\r\n")
    assert read_auth(auth_file=users) == [("ann", "one"), ("bob", "two")]
    for bad, message in ((("ann", None), "--auth is not USER:PASSWORD"), ((":pw", None), "is not USER:PASSWORD"),
                         (("ann:", None), "is not USER:PASSWORD"), (("a:b", users), "not both"),
                         ((None, tmp_path), "it is not a file"), ((None, tmp_path / "none"), "Cannot read")):
        with pytest.raises(CvaekitError, match=message):
            read_auth(*bad)
    users.write_text("# nobody\n")
    with pytest.raises(CvaekitError, match="holds no USER:PASSWORD line"):
        read_auth(auth_file=users)
    users.write_text("ann:one\nbob\n")
    with pytest.raises(CvaekitError, match="Line 2 of --auth-file"):
        read_auth(auth_file=users)


@pytest.fixture
def launched(monkeypatch):
    from cvaekit.serving import page

    calls = []
    monkeypatch.setattr(page, "launch", lambda runs, **kwargs: calls.append(kwargs))
    monkeypatch.setattr("cvaekit.serving.service.load_runs", lambda *a, **k: [])
    return calls


def test_serve_listens_on_this_machine_unless_told_and_then_says_so(launched, tmp_path):
    quiet = runner.invoke(app, ["serve", "RUN"])
    assert quiet.exit_code == 0 and "Warning" not in quiet.output
    assert launched[-1] == {"host": "127.0.0.1", "port": 7860, "auth": None}
    opened = runner.invoke(app, ["serve", "RUN", "--host", "0.0.0.0"])
    said = " ".join(opened.output.split())
    assert opened.exit_code == 0 and "Warning: The page listens on 0.0.0.0" in said and "--auth USER:PASSWORD" in said
    (tmp_path / "users").write_text("ann:one\n")
    shut = runner.invoke(app, ["serve", "RUN", "--host", "0.0.0.0", "--auth-file", str(tmp_path / "users")])
    assert shut.exit_code == 0 and "asks for a user and password" in " ".join(shut.output.split())
    assert launched[-1]["auth"] == [("ann", "one")]


def test_bad_doors_are_refused_before_any_run_loads(monkeypatch):
    def no_loading(*a, **k):
        raise AssertionError("runs loaded before the options were checked")

    monkeypatch.setattr("cvaekit.serving.service.load_runs", no_loading)
    for argv, message in ((["--auth", "ann"], "--auth is not USER:PASSWORD"), (["--port", "0"], "1 to 65535"),
                          (["--host", ""], "not an address"), (["--auth", "a:b", "--auth-file", "x"], "not both")):
        result = runner.invoke(app, ["serve", "RUN", *argv])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


@pytest.mark.slow  # starts the page and calls it through gradio_client: seconds
def test_the_page_limits_hold_through_the_http_api_behind_a_password(tmp_path):
    from conftest import fashion_recipe
    from gradio_client import Client

    from cvaekit.serving.page import launch
    from cvaekit.serving.service import MAX_IMAGES, MAX_TEXT_CHARS, load_runs
    from cvaekit.testing.local import free_port

    recipe = fashion_recipe(tmp_path, epochs=1, limit=256)
    recipe["eval"]["limit"] = 64
    runs = load_runs([str(train_quietly(recipe))], device="cpu")
    port = free_port()
    page = launch(runs, port=port, block=False, auth=[("ann", "one")])
    try:
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(Exception):  # noqa: B017  (gradio_client's own error for a login refused)
            Client(url, verbose=False).predict(runs[0].label, "bag", 2, 1.0, 0, api_name="/generate")
        client = Client(url, auth=("ann", "one"), verbose=False)
        image, download, note = client.predict(runs[0].label, "bag", 2, 1.0, 0, api_name="/generate")
        assert image.endswith(".png") and download is None and "2 images in" in note
        label, walk = runs[0].label, "From one seed to another (fixed text)"
        for args, api, message in (
            ((label, "x" * (MAX_TEXT_CHARS + 1), 2, 1.0, 0), "/generate", f"up to {MAX_TEXT_CHARS:,}"),
            ((label, "bag", MAX_IMAGES + 1, 1.0, 0), "/generate", f"from 1 to {MAX_IMAGES}"),
            ((label, "bag", 10**9, 1.0, 0), "/generate", f"from 1 to {MAX_IMAGES}"),
            (("bag", 10**6, 1.0, 0), "/compare", f"from 1 to {MAX_IMAGES}"),
            ((label, "bag", 2, 50.0, 0), "/generate", "temperature must be a number from 0 to 2"),
            ((label, walk, "bag", "", 0, 1, 1000, 1.0), "/walk", "from 2 to 64"),
        ):
            with pytest.raises(Exception, match=message) as refused:
                client.predict(*args, api_name=api)
            assert "Traceback" not in str(refused.value)
        assert client.predict(label, "coat", 1, 1.0, 0, api_name="/generate")[2].startswith("1 images in")
    finally:
        page.close()


def train_quietly(recipe):
    from cvaekit.training import train

    return train(recipe, progress=False)
