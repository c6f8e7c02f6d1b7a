"""Install a fake plugin distribution into a folder on sys.path, as pip would: a module
plus a dist-info with METADATA and an entry point in the group `cvaekit`."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_plugin(folder: Path, dist: str, version: str, module: str, source: str) -> None:
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{dist.replace('-', '_')}-{version}.dist-info"  # as pip names it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[cvaekit]\n{module} = {module}\n")


GOOD = """
    import torch
    from cvaekit import hookimpl

    class Doubler(torch.nn.Module):
        '''Two times the one-hot label: a conditioner from a third party.'''
        def __init__(self, *, data, scale: float = 2.0):
            super().__init__()
            self.dim = len(data.classes)
            self.scale = scale
        def parse(self, texts):
            return torch.tensor([self_classes.index(t) for t in texts])
        def forward(self, labels):
            return torch.nn.functional.one_hot(labels, self.dim).float() * self.scale

    @hookimpl
    def cvaekit_register(registry):
        registry.add("conditioner", "doubler", Doubler)
"""

BROKEN_IMPORT = """
    import this_module_does_not_exist
"""

BROKEN_REGISTER = """
    from cvaekit import hookimpl

    @hookimpl
    def cvaekit_register(registry):
        registry.add("conditioner", "half_done", object)
        raise RuntimeError("boom while registering")
"""

CLASHING = """
    from cvaekit import hookimpl

    @hookimpl
    def cvaekit_register(registry):
        registry.add("encoder", "mlp", lambda **kw: None, summary="another mlp")
        registry.add("encoder", "mlp_too", lambda **kw: None, summary="a free name")
"""
