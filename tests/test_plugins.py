import json
import warnings

import pytest
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import DuplicateComponentError, UnknownComponentError
from cvaekit.plugins import load_registry
from cvaekit.plugins.registry import Registry

from plugin_factory import BROKEN_IMPORT, BROKEN_REGISTER, CLASHING, GOOD, write_plugin

runner = CliRunner()


def test_builtins_come_from_the_cvaekit_distribution_through_the_entry_point(registry):
    for kind, name in [("conditioner", "onehot"), ("encoder", "mlp"), ("decoder", "mlp"),
                       ("dataset", "fashion_mnist"), ("metric", "nelbo"), ("metric", "cond_accuracy")]:
        comp = registry.get(kind, name)
        assert comp.origin.startswith("cvaekit ")
        assert comp.summary


def test_unknown_component_lists_valid_names(registry):
    with pytest.raises(UnknownComponentError, match=r"Unknown encoder 'mpl'. Did you mean 'mlp'\?.*'mlp'"):
        registry.get("encoder", "mpl")


def test_duplicate_names_both_origins():
    reg = Registry()
    reg.add("encoder", "net", lambda: None, origin="first-pkg 1.0")
    with pytest.raises(DuplicateComponentError, match="first-pkg 1.0.*second-pkg 2.0"):
        reg.add("encoder", "net", lambda: None, origin="second-pkg 2.0")


def test_unknown_kind_is_rejected():
    with pytest.raises(UnknownComponentError, match="Valid kinds"):
        Registry().add("encodr", "x", lambda: None)


def test_third_party_entry_point_registers_with_its_distribution(tmp_path, monkeypatch):
    write_plugin(tmp_path, "fake-plugin", "1.2.3", "fake_plugin", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = load_registry()
    comp = reg.get("conditioner", "doubler")
    assert comp.origin == "fake-plugin 1.2.3"
    assert comp.summary == "Two times the one-hot label: a conditioner from a third party."
    assert reg.get("encoder", "mlp").origin.startswith("cvaekit ")


def test_failing_plugins_are_reported_and_the_rest_still_load(tmp_path, monkeypatch, capsys):
    write_plugin(tmp_path, "broken-import", "0.1", "broken_import", BROKEN_IMPORT)
    write_plugin(tmp_path, "broken-register", "0.2", "broken_register", BROKEN_REGISTER)
    write_plugin(tmp_path, "fake-plugin", "1.2.3", "fake_plugin", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a line of its own, not a warning pointing at cvaekit's source
        reg = load_registry()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert ("cvaekit: plugin 'broken_import' from broken-import 0.1 was not loaded: "
            "ModuleNotFoundError: No module named 'this_module_does_not_exist' "
            "(the whole error: python -c \"import broken_import\")") in lines
    assert "boom while registering" in lines[1]
    assert ("conditioner", "half_done") not in reg.components  # nothing half-registered
    assert reg.get("conditioner", "doubler").origin == "fake-plugin 1.2.3"
    assert {f.origin for f in reg.failures} == {"broken-import 0.1", "broken-register 0.2"}


def test_a_name_clashing_with_a_builtin_says_so_and_the_plugins_other_components_load(tmp_path, monkeypatch, capsys):
    write_plugin(tmp_path, "clashing-plugin", "3.0", "clashing_plugin", CLASHING)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = load_registry()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    err = lines[0]
    assert err.startswith("cvaekit: plugin 'clashing_plugin' from clashing-plugin 3.0: Its encoder 'mlp' was not "
                          "registered: the name is taken by the cvaekit built-in encoder 'mlp' (cvaekit ")
    assert ("rename the plugin's component, e.g. 'mlp_clashing_plugin'. Its other components were loaded: "
            "encoder 'mlp_too'. `cvaekit list-components --kind encoder` shows which package holds each name.") in err
    assert "was not loaded" not in err and "python -c" not in err
    assert reg.get("encoder", "mlp").origin.startswith("cvaekit ")
    assert reg.get("encoder", "mlp_too").origin == "clashing-plugin 3.0"
    assert [(f.plugin, f.partial) for f in reg.failures] == [("clashing_plugin", True)]
    shown = runner.invoke(app, ["list-components", "--kind", "encoder"], terminal_width=200).output
    assert "name taken" in shown and "clashing-plugin 3.0" in shown and "mlp_too" in shown


def test_two_plugins_with_one_name_name_each_other_and_what_loaded(tmp_path, monkeypatch, capsys):
    write_plugin(tmp_path, "first-pkg", "1.0", "first_pkg", CLASHING.replace('"mlp"', '"shared"'))
    write_plugin(tmp_path, "second-pkg", "2.0", "second_pkg", CLASHING.replace('"mlp"', '"shared"')
                 .replace('"mlp_too"', '"own"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = load_registry()
    err = " ".join(capsys.readouterr().err.split())
    assert ("cvaekit: plugin 'second_pkg' from second-pkg 2.0: Its encoder 'shared' was not registered: the name "
            "is taken by the encoder 'shared' of first-pkg 1.0, loaded first; uninstall one of the two packages "
            "or rename one of the components. Its other components were loaded: encoder 'own'.") in err
    assert reg.get("encoder", "shared").origin == "first-pkg 1.0" and reg.get("encoder", "own").origin == "second-pkg 2.0"


def test_unknown_component_names_the_plugins_that_failed_to_load(tmp_path, monkeypatch):
    write_plugin(tmp_path, "broken-import", "0.1", "broken_import", BROKEN_IMPORT)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownComponentError, match=r"Unknown conditioner 'char_cnn'.*"
                                                    r"plugin 'broken_import' from broken-import 0.1 failed to load"):
        load_registry().get("conditioner", "char_cnn")


def test_list_components_table_json_and_kind_filter(tmp_path, monkeypatch):
    write_plugin(tmp_path, "broken-import", "0.1", "broken_import", BROKEN_IMPORT)
    write_plugin(tmp_path, "fake-plugin", "1.2.3", "fake_plugin", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = runner.invoke(app, ["list-components"], terminal_width=200)
    assert result.exit_code == 0
    assert result.output.count("cvaekit: plugin 'broken_import' from broken-import 0.1 was not loaded") == 1
    assert "doubler" in result.output and "fake-plugin 1.2.3" in result.output
    assert "failed" in result.output and "broken-import" in result.output

    result = runner.invoke(app, ["list-components", "--json", "--kind", "conditioner"])
    data = json.loads(result.stdout)
    assert {c["kind"] for c in data["components"]} == {"conditioner"}
    assert {"kind": "conditioner", "name": "doubler", "origin": "fake-plugin 1.2.3",
            "summary": "Two times the one-hot label: a conditioner from a third party."} in data["components"]
    assert data["failed_plugins"][0]["origin"] == "broken-import 0.1"


def test_list_components_rejects_unknown_kind():
    result = runner.invoke(app, ["list-components", "--kind", "encoders"])
    assert result.exit_code == 2
    assert "Did you mean 'encoder'" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("cvaekit ")


def test_builtins_are_registered_lazily_with_their_docstrings_first_sentence(registry):
    from cvaekit.plugins.registry import _first_sentence

    for comp in registry.of_kind():
        if comp.origin.startswith("cvaekit ") and isinstance(comp.target, str):
            assert comp.given_summary == _first_sentence(comp.factory.__doc__), comp.name


def test_listing_components_imports_no_torch():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import sys; from cvaekit.plugins import load_registry; r = load_registry(); "
            "rows = [(c.kind, c.name, c.origin, c.summary) for c in r.of_kind()]; "
            "assert len(rows) > 20 and not r.failures, r.failures; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    path = os.pathsep.join([str(root), str(root / "plugins/cvaekit-bagofwords/src"), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": path}, check=True).stdout
    assert out.strip() == "[]"


def test_a_component_by_import_path_is_imported_on_first_use(tmp_path, monkeypatch):
    import sys

    from cvaekit.errors import ComponentError

    (tmp_path / "lazy_part.py").write_text('def make(*, data):\n    """A lazily imported conditioner."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    comp = reg.add("conditioner", "lazy", "lazy_part:make", summary="given")
    assert "lazy_part" not in sys.modules and comp.summary == "given"
    assert comp.factory.__name__ == "make" and "lazy_part" in sys.modules
    missing = reg.add("conditioner", "gone", "no_such_module_here:make")
    with pytest.raises(ComponentError, match=r"conditioner 'gone' .* could not be imported from "
                                             r"'no_such_module_here:make'.*python -c \"import no_such_module_here\""):
        missing.summary
    with pytest.raises(TypeError, match="import path"):
        reg.add("conditioner", "bad", "not a path")
