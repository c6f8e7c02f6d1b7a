"""No command line ends in a traceback: a seeded sample of fuzzed lines through every command
(`cvaekit.testing.cli_fuzz`; `benchmarks/cli_fuzz.py` runs many more), and the bugs it and
users found, each a clear error naming what is wrong."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.testing.cli_fuzz import (
    COMMANDS,
    Places,
    command_lines,
    run_line,
    tiny_recipe,
)
from cvaekit.training import train

runner = CliRunner()


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-fuzz")
    return Places.make(root / "places", train(tiny_recipe(root / "runs"), progress=False))


@pytest.fixture
def no_serving(monkeypatch):
    """`serve` checks everything, then would launch: here it records instead."""
    from cvaekit.serving import page

    launched = []
    monkeypatch.setattr(page, "launch", lambda *a, **k: launched.append(k))
    return launched


def commands_of(typer_app, prefix=()):
    found = set()
    for command in typer_app.registered_commands:
        found.add((*prefix, command.name))
    for group in typer_app.registered_groups:
        found.add((*prefix, group.name))
        found |= commands_of(group.typer_instance, (*prefix, group.name))
    return found


def test_the_fuzz_knows_every_command():
    assert commands_of(app) == set(COMMANDS)


def test_fuzzed_command_lines_end_in_a_message_never_a_traceback(places, no_serving):
    outcomes = {}
    for argv in command_lines(places, 40, seed=7):
        kind, result = run_line(runner, app, argv, timeout=4)  # a working line that trains: cut short
        assert kind != "traceback", f"cvaekit {' '.join(argv)[:300]}\n{result.exception!r}\n{result.output[-1500:]}"
        outcomes[kind] = outcomes.get(kind, 0) + 1
    assert outcomes.get("clean", 0) >= 20  # most lines have something wrong, and say so


@pytest.mark.parametrize(("argv", "message"), [
    (["generate", "{run}", "apple", "-n", "0"], "must be 1 or more; got 0"),
    (["generate", "{run}", "apple", "-n", "-3"], "must be 1 or more; got -3"),
    (["generate", "{run}", "sneaker", "-n", "99999999999999999999999"], "must be from 1 to 256"),
    (["evaluate", "{run}", "--device", "tpu"], "--device is 'tpu', not a device torch knows. Use 'auto'"),
    (["evaluate", "{run}", "--device", "meta"], "not a device cvaekit runs on"),
    (["fit-prior", "{run}", "--device", "cuda:x"], "not a device torch knows"),
    (["fit-prior", "{run}", "--lr", "inf"], "'lr' must be a number above 0, got inf"),
    (["fit-prior", "{run}", "--lr", "1e308", "--epochs", "1", "--draws", "1", "-q"], "Lower --lr"),
    (["prepare", "{recipe}", "--device", "tpu"], "--device is 'tpu'"),
    (["export", "{run}", "{file}"], "is a file; an export is a folder"),
    (["export", "{run}", "{file}/x"], "file.txt' is a file"),
    (["serve", "{run}", "--auth", "nopassword"], "--auth is not USER:PASSWORD"),
    (["serve", "{run}", "--auth-file", "{missing}"], "Cannot read --auth-file"),
    (["serve", "{run}", "--port", "70000"], "use a number from 1 to 65535"),
    (["serve", "{run}", "--host", "not a host"], "is not an address to listen on"),
])
def test_the_bugs_found_are_clear_errors(places, no_serving, argv, message):
    result = runner.invoke(app, [places.fill(a) for a in argv])
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split()), result.output
    assert not no_serving
