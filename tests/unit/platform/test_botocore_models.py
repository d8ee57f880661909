"""The layer's botocore data (crm/botocore_data): what the installed botocore and today's code
give, every operation the code calls kept, each kept part equal to botocore's, and the shared
clients reading it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore import xform_name
from botocore.model import ServiceModel

from crm import aws
from crm_local import botocore_models as bm

_BUILTIN = botocore.session.get_session().get_component("data_loader")


def _ours(service: str) -> dict[str, Any]:
    version = _BUILTIN.determine_latest_version(service, "service-2")
    return json.loads((bm.TARGET / service / version / "service-2.json").read_text("utf-8"))  # type: ignore[no-any-return]


def test_files_are_what_botocore_and_the_code_give() -> None:
    """Fails after a botocore upgrade or a new call: `make botocore-models` writes them again."""
    expected = bm.expected_files()
    written = {
        str(p.relative_to(bm.TARGET)): p.read_bytes() for p in bm.TARGET.rglob("*") if p.is_file()
    }
    assert sorted(written) == sorted(expected)
    stale = [name for name, content in expected.items() if written[name] != content]
    assert not stale, f"regenerate with `make botocore-models`: {stale}"


def test_botocores_other_files_are_kept_with_their_data_as_it_is() -> None:
    """Rule sets, paginators, waiters, partitions, defaults: compact and uncompressed, each
    parses to what botocore's own file holds, in the same order (a rule set is an ordered
    list: the first rule that matches wins)."""
    builtin = Path(_BUILTIN.BUILTIN_DATA_PATH)
    copied = [p for p in bm.TARGET.rglob("*.json") if p.name.startswith(bm._COPIED_PREFIXES)]
    copied += [bm.TARGET / name for name in bm._COPIED_TOP]
    assert any(p.name.startswith("endpoint-rule-set-1.") for p in copied)
    for path in copied:
        rel = path.relative_to(bm.TARGET)
        theirs = builtin / rel
        gz = theirs.with_name(theirs.name + ".gz")
        raw = theirs.read_bytes() if theirs.exists() else gzip.decompress(gz.read_bytes())
        assert json.dumps(json.loads(path.read_bytes())) == json.dumps(json.loads(raw)), rel
        assert not path.with_name(path.name + ".gz").exists()
    assert not list(bm.TARGET.rglob("*.gz"))


def test_every_service_a_client_is_made_for_is_modeled() -> None:
    assert set(aws.SERVICES) <= set(aws.MODELED_SERVICES)
    for service in aws.MODELED_SERVICES:
        assert _ours(service)["operations"], service


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("dynamodb", "TransactWriteItems"),
        ("dynamodb", "Query"),
        ("sqs", "SendMessageBatch"),
        ("s3", "ListObjectsV2"),
        ("secretsmanager", "GetSecretValue"),
        ("kms", "GenerateDataKey"),
        ("events", "PutEvents"),
    ],
)
def test_operations_the_code_calls_are_kept(service: str, operation: str) -> None:
    assert xform_name(operation) in bm.called_names()
    assert operation in _ours(service)["operations"]


def test_operations_never_called_are_left_out() -> None:
    # The point of the cut: DynamoDB's backups and S3's bucket policies are never called.
    assert "CreateBackup" not in _ours("dynamodb")["operations"]
    assert "PutBucketPolicy" not in _ours("s3")["operations"]
    assert "create_backup" not in bm.called_names()


@pytest.mark.parametrize("service", aws.MODELED_SERVICES)
def test_kept_parts_equal_botocores(service: str) -> None:
    full = _BUILTIN.load_service_model(service, "service-2")
    ours = _ours(service)
    assert {k: v for k, v in ours.items() if k not in ("operations", "shapes")} == {
        k: v for k, v in full.items() if k not in ("operations", "shapes")
    }
    for name, operation in ours["operations"].items():
        assert operation == bm._undocumented(full["operations"][name]), name
    for name, shape in ours["shapes"].items():
        assert shape == bm._undocumented(full["shapes"][name]), name
    # Every shape a kept operation reaches, and every exception, is there.
    theirs, mine = ServiceModel(full, service), ServiceModel(ours, service)
    assert {s.name for s in mine.error_shapes} == {s.name for s in theirs.error_shapes}
    for name in ours["operations"]:
        op_theirs, op_mine = theirs.operation_model(name), mine.operation_model(name)
        for attr in ("input_shape", "output_shape"):
            a, b = getattr(op_theirs, attr), getattr(op_mine, attr)
            assert (a and _walk(a)) == (b and _walk(b)), (name, attr)


def _walk(shape: Any, seen: frozenset[str] = frozenset()) -> Any:
    """A shape's structure with every member resolved (recursion cut at a repeated shape)."""
    if shape.name in seen:
        return shape.name
    seen = seen | {shape.name}
    out: dict[str, Any] = {"type": shape.type_name, "serialization": shape.serialization}
    if shape.type_name == "structure":
        out["members"] = {k: _walk(v, seen) for k, v in shape.members.items()}
        out["required"] = shape.required_members
    elif shape.type_name == "list":
        out["member"] = _walk(shape.member, seen)
    elif shape.type_name == "map":
        out["key"], out["value"] = _walk(shape.key, seen), _walk(shape.value, seen)
    return out


def test_the_endpoint_data_keeps_these_services_in_every_partition() -> None:
    full = _BUILTIN.load_data("endpoints")
    ours = json.loads((bm.TARGET / "endpoints.json").read_text("utf-8"))
    assert [p["partition"] for p in ours["partitions"]] == [
        p["partition"] for p in full["partitions"]
    ]
    for mine, theirs in zip(ours["partitions"], full["partitions"], strict=True):
        assert {k: v for k, v in mine.items() if k != "services"} == {
            k: v for k, v in theirs.items() if k != "services"
        }
        for name, service in mine["services"].items():
            assert service == theirs["services"][name]
    assert {"dynamodb", "s3", "sqs", "kms", "secretsmanager", "events"} <= set(
        ours["partitions"][0]["services"]
    )


def test_shared_clients_read_the_layers_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws.reset_clients()
    try:
        client = aws.client_for("dynamodb")
        loader = aws._session().get_component("data_loader")
        assert loader.search_paths[0] == str(bm.TARGET)
        assert all(
            not Path(p).is_relative_to(Path(_BUILTIN.BUILTIN_DATA_PATH))
            for p in loader.search_paths
        )
        assert hasattr(client, "transact_write_items")
        assert not hasattr(client, "create_backup")
        # The endpoint rules are resolved as with botocore's own data (no custom endpoint).
        assert client.meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
        s3 = aws.s3()
        assert s3.meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"
    finally:
        aws.reset_clients()


def test_another_botocore_reads_its_own_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lambda runtime's boto3 may be another version than the folder was written from."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setattr(botocore, "__version__", "0.0.1")
    aws.reset_clients()
    try:
        client = aws.client_for("dynamodb")
        loader = aws._session().get_component("data_loader")
        assert str(bm.TARGET) not in loader.search_paths
        assert hasattr(client, "create_backup")  # botocore's whole model
    finally:
        aws.reset_clients()


def _pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip().strip('",')
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    return pins


def test_the_layer_and_the_project_pin_the_botocore_the_data_was_cut_from() -> None:
    """In Lambda the cut data is read only under the botocore it was cut from: the layer
    bundles that version (the runtime's own would fall back to botocore's full data)."""
    root = Path(__file__).resolve().parents[3]
    written = (bm.TARGET / "botocore-version.txt").read_text("utf-8").strip()
    layer = _pins((root / "layers" / "crm" / "requirements.txt").read_text("utf-8"))
    project = _pins((root / "pyproject.toml").read_text("utf-8"))
    assert layer["botocore"] == project["botocore"] == written
    assert layer["boto3"] == project["boto3"]
    assert botocore.__version__ == written  # what make install put in this environment
