"""Reading template.yaml: resources, functions, their events and environments."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation's short-form tags as their long forms."""


def _tag(name: str) -> Any:
    def construct(loader: _CfnLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _short, _long in {
    "!Ref": "Ref", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!Join": "Fn::Join",
    "!If": "Fn::If", "!Equals": "Fn::Equals", "!Select": "Fn::Select", "!Split": "Fn::Split",
    "!FindInMap": "Fn::FindInMap", "!GetAZs": "Fn::GetAZs", "!Not": "Fn::Not",
    "!And": "Fn::And", "!Or": "Fn::Or", "!ImportValue": "Fn::ImportValue",
    "!Base64": "Fn::Base64", "!Condition": "Condition",
}.items():  # fmt: skip
    _CfnLoader.add_constructor(_short, _tag(_long))


@dataclass(frozen=True)
class FunctionEvent:
    name: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    events: list[FunctionEvent] = field(default_factory=list)
    timeout: int = 3
    memory: int = 128


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]
    base_dir: Path = ROOT

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.body.get("Resources", {}))

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}

    def parameter_defaults(self) -> dict[str, Any]:
        return {k: v.get("Default") for k, v in self.body.get("Parameters", {}).items()}

    def functions(self) -> list[FunctionSpec]:
        glob = self.body.get("Globals", {}).get("Function", {})
        glob_env = glob.get("Environment", {}).get("Variables", {})
        specs = []
        for logical_id, res in self.of_type("AWS::Serverless::Function").items():
            props = res.get("Properties", {})
            env = {**glob_env, **props.get("Environment", {}).get("Variables", {})}
            events = [
                FunctionEvent(name, ev["Type"], ev.get("Properties", {}))
                for name, ev in props.get("Events", {}).items()
            ]
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    code_uri=self.base_dir / props.get("CodeUri", glob.get("CodeUri", ".")),
                    handler=props.get("Handler", glob.get("Handler", "app.lambda_handler")),
                    environment=env,
                    events=events,
                    timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
                    memory=int(props.get("MemorySize", glob.get("MemorySize", 128))),
                )
            )
        return specs

    def function(self, logical_id: str) -> FunctionSpec:
        for spec in self.functions():
            if spec.logical_id == logical_id:
                return spec
        raise KeyError(f"no function {logical_id} in template.yaml")


def parse_template(text: str, base_dir: Path = ROOT) -> Template:
    body = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    return Template(body, base_dir)


@cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    """The template, with CodeUri paths relative to the template's folder as in SAM."""
    return parse_template(path.read_text(), path.resolve().parent)
