"""A family's public interface, loaded name by name.

A family's `__init__` names what other families may import. When it imported every module
behind those names, reading one name loaded the whole family: the API's first unmasked profile
read (the privacy audit trail's AuditLog) loaded the privacy executor, its deadlines, the
tickets family and the timers, ~70 ms of a cold start. The `__init__` instead maps each public
name to its module (`lazy`), and a module is imported when one of its names is first read;
type checkers and import-linter read the same imports under TYPE_CHECKING.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy(package: str, where: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """The module `__getattr__` of a package whose public names live in the modules `where`
    gives (PEP 562)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later reads find it without coming here
        return value

    return __getattr__
