"""Finding where apps declare their automations, so they are registered in every process.

An app declares code-first workflows and ``@on_event`` handlers in its ``workflows`` module, or
in an ``automations`` package (its ``__init__`` and every module in it, as the developer guide
lays them out). :func:`discover_automations` imports all of them once; ``AutomateCoreConfig``
calls it at app ready, so a process that saves models knows, for example, how early a
negative ``offset_minutes`` must start, without having imported those modules itself.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from django.apps import apps
from django.utils.module_loading import autodiscover_modules, module_has_submodule

MODULE = "workflows"
PACKAGE = "automations"

_discovered = False


def discover_automations() -> None:
    """Import every app's ``workflows`` module and ``automations`` package (with its modules),
    once per process. An import error propagates, as Django's admin autodiscovery does."""
    global _discovered
    if _discovered:
        return
    _discovered = True  # a discovered module that starts the engine does not recurse
    try:
        autodiscover_modules(MODULE)
        for app_config in apps.get_app_configs():
            if module_has_submodule(app_config.module, PACKAGE):
                _import_package(f"{app_config.name}.{PACKAGE}")
    except BaseException:
        _discovered = False
        raise


def _import_package(name: str) -> None:
    package = import_module(name)
    for module in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=f"{name}."):
        import_module(module.name)
