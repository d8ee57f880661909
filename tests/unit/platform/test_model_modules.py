"""How the package's pydantic models are written, for what defining one costs a cold start
(docs/architecture.md, "Cold starts"):

- a module that defines models keeps its annotations evaluated (no `from __future__ import
  annotations`): pydantic turns each string annotation into a `typing.ForwardRef`, which
  compiles it, and evaluates it, when the class is defined (~2.5 ms for 250 fields);
- an empty list, dict or set default is written `Field(default=[])`: pydantic copies an
  unhashable default for each instance, and a builtin `default_factory` costs its
  `inspect.signature` when the schema is built (the first one compiles the `tokenize`
  module's regular expressions).

The walk that finds the models imports every module of the package, as nothing else does: it
also checks that a family's interface names none of its own modules."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from pydantic import BaseModel

import crm

FUTURE = "from __future__ import annotations"


def _package_models() -> list[type[BaseModel]]:
    for info in pkgutil.walk_packages(crm.__path__, "crm."):
        importlib.import_module(info.name)
    found: list[type[BaseModel]] = []
    stack: list[type[BaseModel]] = [BaseModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.split(".")[0] == "crm":
                found.append(sub)
    return found


MODELS = _package_models()


def test_every_family_defines_models_here() -> None:
    # The walk saw the package: a broken walk would pass the checks below on nothing.
    families = {m.__module__.split(".")[1] for m in MODELS}
    assert {"profiles", "segments", "campaigns", "tickets", "privacy", "analytics"} <= families
    assert len(MODELS) > 200


@pytest.mark.parametrize("module", sorted({m.__module__ for m in MODELS}))
def test_a_module_with_models_keeps_its_annotations_evaluated(module: str) -> None:
    source = Path(importlib.import_module(module).__file__ or "").read_text(encoding="utf-8")
    assert FUTURE not in source.splitlines(), module


def test_no_model_field_has_a_builtin_default_factory() -> None:
    builtin = {list, dict, set}
    found = sorted(
        f"{model.__module__}:{model.__qualname__}.{name}"
        for model in MODELS
        for name, field in model.model_fields.items()
        if field.default_factory in builtin
    )
    assert found == []


def test_an_empty_default_is_copied_for_each_instance() -> None:
    from crm.profiles.records import ProfileRecord

    def record(customer_id: str) -> ProfileRecord:
        at = "2026-11-23T00:00:00Z"
        return ProfileRecord.model_validate(
            {"customer_id": customer_id, "created_at": at, "updated_at": at}
        )

    first = record("c-1")
    first.merged_from.append("c-0")
    first.consent.clear()
    assert record("c-2").merged_from == []
    assert ProfileRecord.model_fields["merged_from"].default == []


@pytest.mark.parametrize(
    "family", ["profiles", "segments", "campaigns", "tickets", "privacy", "analytics", "timers"]
)
def test_no_name_of_a_familys_interface_is_one_of_its_modules(family: str) -> None:
    # Importing a submodule sets the package's attribute of that name: the module then
    # shadowed the interface's function of the same name (`crm.tickets.aftersales_routes`),
    # once anything had imported the module (this file's walk did: the API's app got a module).
    package = importlib.import_module(f"crm.{family}")
    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    assert set(getattr(package, "__all__", ())) & modules == set()
