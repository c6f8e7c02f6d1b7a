import json

import pytest
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import DuplicateComponentError, UnknownComponentError
from cvaekit.plugins import PluginWarning, load_registry
from cvaekit.registry import Registry

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


def test_failing_plugins_are_reported_and_the_rest_still_load(tmp_path, monkeypatch):
    write_plugin(tmp_path, "broken-import", "0.1", "broken_import", BROKEN_IMPORT)
    write_plugin(tmp_path, "broken-register", "0.2", "broken_register", BROKEN_REGISTER)
    write_plugin(tmp_path, "fake-plugin", "1.2.3", "fake_plugin", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning) as caught:
        reg = load_registry()
    messages = " ".join(str(w.message) for w in caught)
    assert "broken-import 0.1" in messages and "this_module_does_not_exist" in messages
    assert "boom while registering" in messages
    assert ("conditioner", "half_done") not in reg.components  # nothing half-registered
    assert reg.get("conditioner", "doubler").origin == "fake-plugin 1.2.3"
    assert {f.origin for f in reg.failures} == {"broken-import 0.1", "broken-register 0.2"}


def test_clashing_plugin_names_both_origins(tmp_path, monkeypatch):
    write_plugin(tmp_path, "clashing-plugin", "3.0", "clashing_plugin", CLASHING)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match=r"encoder 'mlp'.*cvaekit .*clashing-plugin 3.0"):
        reg = load_registry()
    assert reg.get("encoder", "mlp").origin.startswith("cvaekit ")


def test_list_components_table_json_and_kind_filter(tmp_path, monkeypatch):
    write_plugin(tmp_path, "broken-import", "0.1", "broken_import", BROKEN_IMPORT)
    write_plugin(tmp_path, "fake-plugin", "1.2.3", "fake_plugin", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="broken-import 0.1"):
        result = runner.invoke(app, ["list-components"], terminal_width=200)
    assert result.exit_code == 0
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
