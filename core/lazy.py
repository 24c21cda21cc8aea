"""Names a light module re-exports from heavier ones (which import torch), imported on
first use through the module's ``__getattr__`` (PEP 562)."""

from __future__ import annotations

import importlib


def lazy_exports(module_globals: dict, table: dict[str, str]):
    """The ``__getattr__`` of a module whose names in ``table`` (name -> module) are
    imported when first read, then kept in the module's globals."""

    def __getattr__(name: str):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {module_globals['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        module_globals[name] = value
        return value

    return __getattr__
