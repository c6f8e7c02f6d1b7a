"""Import paths from before the engine moved into folders by stage (cvaekit 0.2), kept working:
`from cvaekit.runs import load_run` still imports. Each old module is an alias whose names
are those of the modules that now hold its contents; new code imports the new paths."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

MOVED = {
    "cvaekit.attention": ["cvaekit.core.attention"],
    "cvaekit.blame": ["cvaekit.training.blame"],
    "cvaekit.cache": ["cvaekit.caches.paths"],
    "cvaekit.checkpoint": ["cvaekit.store.checkpoint"],
    "cvaekit.comparison": ["cvaekit.evaluation.comparison"],
    "cvaekit.condition": ["cvaekit.core.condition"],
    "cvaekit.data": ["cvaekit.core.data"],
    "cvaekit.describe": ["cvaekit.recipe.describe", "cvaekit.recipe.reference"],
    "cvaekit.device": ["cvaekit.runtime.device"],
    "cvaekit.evaluate": ["cvaekit.evaluation.checkpoints", "cvaekit.evaluation.tables"],
    "cvaekit.figures": ["cvaekit.evaluation.figures"],
    "cvaekit.fit_prior": ["cvaekit.training.fit_prior", "cvaekit.training.codes"],
    "cvaekit.generate": ["cvaekit.serving.generate", "cvaekit.core.sampling"],
    "cvaekit.hookspecs": ["cvaekit.plugins.hookspecs"],
    "cvaekit.image_cache": ["cvaekit.caches.images"],
    "cvaekit.interrupts": ["cvaekit.runtime.interrupts"],
    "cvaekit.memory": ["cvaekit.training.memory"],
    "cvaekit.model": ["cvaekit.core.model", "cvaekit.assembly"],
    "cvaekit.optional": ["cvaekit.runtime.optional"],
    "cvaekit.page": ["cvaekit.serving.page"],
    "cvaekit.prepare": ["cvaekit.training.prepare"],
    "cvaekit.pretrained": ["cvaekit.caches.pretrained"],
    "cvaekit.prior": ["cvaekit.core.prior"],
    "cvaekit.processes": ["cvaekit.runtime.processes"],
    "cvaekit.progress_figures": ["cvaekit.evaluation.progress"],
    "cvaekit.registry": ["cvaekit.plugins.registry"],
    "cvaekit.resident": ["cvaekit.training.batches"],
    "cvaekit.runs": ["cvaekit.store.runs", "cvaekit.assembly"],
    "cvaekit.static_signature": ["cvaekit.recipe.signatures"],
    "cvaekit.sweep": ["cvaekit.training.sweep"],
    "cvaekit.tensorboard": ["cvaekit.components.loggers.tensorboard_log"],
    "cvaekit.training.tensorboard": ["cvaekit.components.loggers.tensorboard_log"],  # a logger since 0.x
    "cvaekit.text_cache": ["cvaekit.caches.text"],
    "cvaekit.threads": ["cvaekit.runtime.threads"],
}


class _Alias(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        targets = [importlib.import_module(name) for name in MOVED[module.__name__]]
        for target in reversed(targets):  # the first target's names win
            module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})
        module.__doc__ = f"Moved to {', '.join(MOVED[module.__name__])}; this path keeps working."
        module.__moved__ = True


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Alias())
        return None


class _Package(types.ModuleType):
    """`cvaekit` itself. Importing an old module whose name is now a public function
    (`cvaekit.generate`, `cvaekit.evaluate`, ...) does not replace the function as the
    package's attribute, as an imported submodule otherwise would."""

    def __setattr__(self, name: str, value) -> None:
        if getattr(value, "__moved__", False) and name in self.__dict__.get("__all__", ()):
            return
        super().__setattr__(name, value)


def install(package: types.ModuleType) -> None:
    package.__class__ = _Package
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
