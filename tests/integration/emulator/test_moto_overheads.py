"""The emulator's cuts of moto's per-request overheads give moto's own answers: each one is
compared with the function it replaced, on the same input."""

from __future__ import annotations

import functools
import json
import string
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.backends import get_backend
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.sqs import models as sqs_models
from moto.sqs.models import SQSBackend

from crm_local.moto_server import MOTOS_OWN, install_patches


@pytest.fixture
def patched() -> Iterator[None]:
    install_patches()
    with mock_aws():
        yield


def test_the_list_of_motos_services_is_motos(patched: None) -> None:
    from moto import backends

    assert list(backends.list_of_moto_modules()) == list(
        MOTOS_OWN["backends.list_of_moto_modules"]()
    )
    assert "dynamodb" in backends.list_of_moto_modules()  # read more than once


def test_sqs_reads_the_same_clock(patched: None) -> None:
    clock: Any = getattr(sqs_models, "unix_time_millis")  # noqa: B009
    ours, theirs = clock(), MOTOS_OWN["sqs.unix_time_millis"]()
    assert abs(ours - theirs) < 50  # milliseconds since the epoch, both
    fixed = datetime(2026, 11, 23, 12, 0, 0, 123456)
    assert clock(fixed) == MOTOS_OWN["sqs.unix_time_millis"](fixed)


@pytest.mark.parametrize(
    "names",
    [
        ["All"],
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ["QueueArn", "QueueArn", "VisibilityTimeout"],
        ["RedrivePolicy"],  # not set: left out
        [],
    ],
)
def test_queue_attributes_are_motos(patched: None, names: list[str]) -> None:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    for n in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    time.sleep(0.15)  # past the counts' tenth of a second
    backend = get_backend("sqs")["123456789012"]["us-east-1"]
    ours = backend.get_queue_attributes("q", names)
    theirs = MOTOS_OWN["SQSBackend.get_queue_attributes"](backend, "q", names)
    assert ours == theirs
    assert dlq


def test_an_unknown_queue_attribute_is_refused_as_moto_refuses_it(patched: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    with pytest.raises(ClientError) as err:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Nonsense"])  # type: ignore[list-item]
    assert err.value.response["Error"]["Code"] == "InvalidAttributeName"


def item_of(attributes: dict[str, Any]) -> Any:
    return dynamo_type.Item(dynamo_type.DynamoType({"S": "p"}), None, attributes)


def motos_item_of(attributes: dict[str, Any]) -> Any:
    item = dynamo_type.Item.__new__(dynamo_type.Item)
    MOTOS_OWN["Item.__init__"](item, dynamo_type.DynamoType({"S": "p"}), None, attributes)
    return item


def test_an_item_is_built_as_moto_builds_it(patched: None) -> None:
    attributes = {
        "PK": {"S": "p"},
        "n": {"N": "1.5"},
        "m": {"M": {"l": {"L": [{"S": "x"}, {"NS": ["1", "2"]}, {"B": b"\x00"}]}}},
        "ss": {"SS": ["a", "b"]},
        "yes": {"BOOL": True},
    }
    ours, theirs = item_of(attributes), motos_item_of(attributes)
    assert type(ours.attrs) is type(theirs.attrs)
    assert list(ours.attrs.items()) == list(theirs.attrs.items())
    assert ours.to_json() == theirs.to_json()
    # every wrapper, at every level, of the same class with the same attributes
    for wire in (attributes, WIRE_ITEM):
        assert _tree(dict(item_of(wire).attrs)) == _tree(dict(motos_item_of(wire).attrs))


def test_a_value_moto_does_not_expect_is_wrapped_as_moto_wraps_it(patched: None) -> None:
    from crm_local.moto_overheads import _typed

    already = dynamo_type.DynamoType({"S": "x"})
    for odd in (already, {"S": "a", "N": "1"}, {"L": [already, {"N": "2"}]}):
        assert _tree(_typed(odd)) == _tree(dynamo_type.DynamoType(odd))


@pytest.mark.parametrize("size", [404_990, 405_000, 405_001, 500_000])
def test_the_item_size_limit_is_motos(patched: None, size: int) -> None:
    """The same limit at the same attribute: the last of three that together reach `size`."""
    attributes = {"PK": {"S": "p"}, "a": {"S": "x" * 1000}, "b": {"S": "y" * (size - 1006)}}

    def outcome(build: Any) -> str:
        try:
            build(attributes)
        except ItemSizeTooLarge:
            return "too large"
        return "stored"

    assert outcome(item_of) == outcome(motos_item_of)


def test_a_too_large_item_is_refused_through_the_api(patched: None) -> None:
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ClientError) as err:
        ddb.put_item(TableName="t", Item={"PK": {"S": "p"}, "v": {"S": "x" * 410_000}})
    assert "Item size has exceeded the maximum allowed size" in str(err.value)


BUS_EVENT: Any = {
    "id": "e1", "time": "2026-12-06T10:00:00Z", "version": "0", "account": "123456789012",
    "detail-type": "ProfileUpdated", "source": "crm.profiles", "region": "us-east-1",
    "resources": [], "detail": {"customer_id": "c1", "changes": ["tier"], "n": 3},
    "ingestion-time": "2026-12-06T10:00:01Z",
}  # fmt: skip


@pytest.mark.parametrize(
    ("template", "paths"),
    [
        ('{"who": "<who>", "what": "<what>", "n": <n>}',
         {"who": "$.detail.customer_id", "what": "$.detail-type", "n": "$.detail.n"}),
        ('"<missing>"', {"missing": "$.detail.nowhere"}),
    ],
)  # fmt: skip
def test_event_targets_get_what_moto_makes_of_them(
    patched: None, monkeypatch: pytest.MonkeyPatch, template: str, paths: dict[str, str]
) -> None:
    import jsonpath_ng.ext
    from moto.events.utils import EventTemplateParser

    twice = [EventTemplateParser.parse(template, paths, BUS_EVENT) for _ in range(2)]
    monkeypatch.setattr(jsonpath_ng.ext, "parse", MOTOS_OWN["jsonpath_ng.ext.parse"])
    assert twice == [EventTemplateParser.parse(template, paths, BUS_EVENT)] * 2


def test_a_rules_queue_target_receives_motos_message(patched: None) -> None:
    """moto's default transformer (eight paths) on the events moto itself builds."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="r", EventPattern='{"source": ["crm.profiles"]}')
    events.put_targets(Rule="r", Targets=[{"Id": "t", "Arn": arn}])
    for n in range(3):  # compiled once, found three times
        detail = {"customer_id": f"c{n}", "n": n}
        events.put_events(Entries=[{"Source": "crm.profiles", "DetailType": "ProfileUpdated",
                                    "Detail": json.dumps(detail)}])  # fmt: skip
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    bodies = sorted((json.loads(m["Body"]) for m in got), key=lambda b: b["detail"]["n"])
    assert [b["detail"] for b in bodies] == [{"customer_id": f"c{n}", "n": n} for n in range(3)]
    assert {b["source"] for b in bodies} == {"crm.profiles"}
    assert {b["detail-type"] for b in bodies} == {"ProfileUpdated"}


@pytest.mark.parametrize(
    ("options", "alphabet"),
    [
        ({"length": 52}, string.ascii_letters + string.digits),
        ({"length": 8, "include_digits": False}, string.ascii_letters),
        ({"length": 30, "lower_case": True}, string.ascii_lowercase + string.digits),
    ],
)
def test_random_strings_are_drawn_as_moto_draws_them(
    patched: None, options: dict[str, Any], alphabet: str
) -> None:
    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.moto_random import MotoRandom

    assert MotoRandom.get_random_string is not MOTOS_OWN["MotoRandom.get_random_string"]
    drawn = [mock_random.get_random_string(**options) for _ in range(200)]
    theirs = [MOTOS_OWN["MotoRandom.get_random_string"](mock_random, **options) for _ in range(200)]
    for strings in (drawn, theirs):
        assert {len(s) for s in strings} == {options["length"]}
        assert set("".join(strings)) <= set(alphabet)
    assert len(set(drawn)) == 200  # random
    assert len(set("".join(drawn))) > len(alphabet) * 0.8  # the whole alphabet, not a part
    mock_random.seed(7)
    again = mock_random.get_random_string(**options)
    mock_random.seed(7)
    assert mock_random.get_random_string(**options) == again  # a seeded moto repeats itself


def test_receipt_handles_are_motos_and_delete_their_message(patched: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
    theirs = MOTOS_OWN["sqs.generate_receipt_handle"]()
    handles = [m["ReceiptHandle"] for m in received]
    for handle in [*handles, theirs]:
        assert len(handle) == 185
        assert set(handle) <= set(string.ascii_lowercase)
    assert len(set(handles)) == 3
    for handle in handles:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    time.sleep(0.15)  # past the counts' tenth of a second
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        attrs["ApproximateNumberOfMessages"]
        == attrs["ApproximateNumberOfMessagesNotVisible"]
        == "0"
    )


def test_a_delete_batch_deletes_and_refuses_what_moto_does(patched: None) -> None:
    """Valid, repeated, unknown, already deleted and superseded handles, on two queues alike:
    one deleted by the emulator's DeleteMessageBatch, the other by moto's own."""
    sqs = boto3.client("sqs")
    backend = get_backend("sqs")["123456789012"]["us-east-1"]
    answers, left = [], []
    for name in ("ours", "theirs"):
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        for n in range(8):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        handles = {m["Body"]: m["ReceiptHandle"] for m in first}
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        handles |= {f"again-{m['Body']}": m["ReceiptHandle"] for m in again}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handles["again-0"])
        entries = [
            {"Id": "a", "ReceiptHandle": handles["1"]},  # an older handle of a message
            {"Id": "b", "ReceiptHandle": handles["again-2"]},
            {"Id": "c", "ReceiptHandle": "not-a-handle"},
            {"Id": "d", "ReceiptHandle": handles["again-2"]},  # the same one again
            {"Id": "e", "ReceiptHandle": handles["0"]},  # deleted before
            {"Id": "f", "ReceiptHandle": handles["again-1"]},  # its message deleted by "a"
        ]
        delete = backend.delete_message_batch
        if name == "theirs":
            delete = functools.partial(MOTOS_OWN["SQSBackend.delete_message_batch"], backend)
        answers.append(delete(name, entries))
        time.sleep(0.15)  # all visible again
        rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        left.append(sorted(m["Body"] for m in rest))
    assert SQSBackend.delete_message_batch is not MOTOS_OWN["SQSBackend.delete_message_batch"]
    assert answers[0] == answers[1]
    assert answers[0][0] == ["a", "b", "d", "e", "f"]
    assert [e["Id"] for e in answers[0][1]] == ["c"]
    assert left[0] == left[1] == ["3", "4", "5", "6", "7"]


# Condition expressions as the functions write them, and a few of moto's harder cases.
CONDITIONS: list[tuple[str, dict[str, str] | None, dict[str, Any] | None]] = [
    ("attribute_not_exists(PK)", None, None),
    ("attribute_exists(#pk) AND #v = :v", {"#pk": "PK", "#v": "version"}, {":v": {"N": "3"}}),
    ("#s IN (:a, :b) OR size(#t) > :n", {"#s": "status", "#t": "tags"},
     {":a": {"S": "open"}, ":b": {"S": "done"}, ":n": {"N": "1"}}),
    ("NOT (points BETWEEN :lo AND :hi)", None, {":lo": {"N": "1"}, ":hi": {"N": "10"}}),
    ("begins_with(SK, :p) AND contains(#l, :x)", {"#l": "labels"},
     {":p": {"S": "EVT#"}, ":x": {"S": "vip"}}),
    ("m.deep[0] = :t", None, {":t": {"BOOL": True}}),
    ("m.deep[0] = :t", None, {":t": {"N": "1"}}),
    ("m.deep[0] = :t", None, {":t": {"S": "1"}}),  # the line above's value, another type
    ("attribute_type(b, :ty) AND b <> :b", None, {":ty": {"S": "B"}, ":b": {"B": b"\x00\x01"}}),
]  # fmt: skip
ITEMS: list[dict[str, Any]] = [
    {"PK": {"S": "C#1"}, "SK": {"S": "EVT#1"}, "version": {"N": "3"}, "status": {"S": "open"},
     "tags": {"L": [{"S": "a"}, {"S": "b"}]}, "points": {"N": "12"},
     "labels": {"SS": ["vip", "new"]}, "m": {"M": {"deep": {"L": [{"BOOL": True}]}}},
     "b": {"B": b"\x00"}},
    {"PK": {"S": "C#2"}, "SK": {"S": "PROFILE"}, "version": {"N": "4"}, "points": {"N": "5"},
     "m": {"M": {"deep": {"L": [{"N": "1"}]}}}},
]  # fmt: skip


def _parsed(parse: Any, expr: str, names: Any, values: Any) -> tuple[Any, ...]:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parser = ConditionExpressionParser(expr, names, values)
    parser.expr_attr_names_found.append("found before")  # what was found before stays first
    op = parse(parser)
    items = [dynamo_type.Item(dynamo_type.DynamoType(i["PK"]), None, i) for i in ITEMS]
    return (_tree(op), [_evaluated(op, item) for item in items], parser.expr_attr_names_found,
            parser.expr_attr_values_found)  # fmt: skip


def _tree(node: Any) -> Any:
    """An Op or operand as plain values: its class and its attributes, all the way down."""
    if isinstance(node, list | tuple):
        return [_tree(n) for n in node]
    if isinstance(node, dict):
        return {k: _tree(v) for k, v in node.items()}
    if hasattr(node, "__dict__"):
        return (type(node).__name__, {k: _tree(v) for k, v in vars(node).items()})
    return node


def _evaluated(op: Any, item: Any) -> Any:
    try:
        return op.expr(item)
    except ValueError as exc:  # moto's answer for some items (size() of a missing attribute)
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize(("expr", "names", "values"), CONDITIONS)
def test_a_remembered_condition_is_motos_parse(
    patched: None, expr: str, names: Any, values: Any
) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    ours = ConditionExpressionParser.parse
    theirs = MOTOS_OWN["ConditionExpressionParser.parse"]
    assert ours is not theirs
    expected = _parsed(theirs, expr, names, values)
    assert _parsed(ours, expr, names, values) == expected  # parsed, then remembered
    assert _parsed(ours, expr, names, values) == expected  # the remembered answer
    assert expected[2][0] == "found before"


def test_conditions_that_differ_in_a_value_or_its_type_are_parsed_apart(patched: None) -> None:
    evaluated = [_parsed(MOTOS_OWN["ConditionExpressionParser.parse"], *c) for c in CONDITIONS]
    from moto.dynamodb.comparisons import ConditionExpressionParser

    for _ in range(2):
        assert [_parsed(ConditionExpressionParser.parse, *c) for c in CONDITIONS] == evaluated
    # {"N": "1"} and {"S": "1"} under one expression: different answers for one item
    assert evaluated[6][1] == [True, True]  # moto compares True and 1 equal: its answer
    assert evaluated[7][1] == [False, False]


@pytest.mark.parametrize(
    ("expr", "names", "values"),
    [
        ("attribute_not_exists(#pk)", {}, None),  # a name not given
        ("#v = :v", {"#v": "version"}, {}),  # a value not given
        ("a = = b", None, None),  # malformed
        ("size = :n", None, {":n": {"N": "1"}}),  # a reserved word
    ],
)
def test_a_refused_condition_is_refused_each_time_as_moto_refuses_it(
    patched: None, expr: str, names: Any, values: Any
) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    with pytest.raises(Exception) as theirs:  # noqa: PT011 - moto's own error, whichever
        MOTOS_OWN["ConditionExpressionParser.parse"](ConditionExpressionParser(expr, names, values))
    for _ in range(2):
        with pytest.raises(type(theirs.value)) as ours:
            ConditionExpressionParser(expr, names, values).parse()
        assert str(ours.value) == str(theirs.value)


def test_a_transaction_checks_its_conditions_as_moto_does(patched: None) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
    )

    def put(pk: str) -> Any:
        return {"Put": {"TableName": "t", "Item": {"PK": {"S": pk}},
                        "ConditionExpression": "attribute_not_exists(PK)"}}  # fmt: skip

    client.transact_write_items(TransactItems=[put("a"), put("b")])
    with pytest.raises(ClientError) as err:  # the remembered condition, now false for "a"
        client.transact_write_items(TransactItems=[put("c"), put("a")])
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert sorted(i["PK"]["S"] for i in client.scan(TableName="t")["Items"]) == ["a", "b"]
    with pytest.raises(ClientError) as unused:  # moto's validation reads what the parse found
        client.put_item(TableName="t", Item={"PK": {"S": "d"}},
                        ConditionExpression="attribute_not_exists(PK)",
                        ExpressionAttributeNames={"#unused": "x"})  # fmt: skip
    assert "unused" in str(unused.value)


WIRE_ITEM: dict[str, Any] = {
    "PK": {"S": "C#1"}, "SK": {"S": "PROFILE"}, "n": {"N": "12.50"}, "flag": {"BOOL": False},
    "none": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]},
    "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"deep": {"L": [{"S": "x"}, {"B": b"\x03"}, {"M": {"k": {"N": "7"}}}]},
                "bin": {"B": b"\x04"}, "t": {"BOOL": True}}},
    "l": {"L": [{"NULL": True}, {"SS": ["z"]}, {"L": []}, {"M": {}}]},
}  # fmt: skip


def test_dynamodb_answers_are_converted_as_moto_converts_them(patched: None) -> None:
    from moto.dynamodb import responses as dynamodb_responses
    from moto.dynamodb.models.utilities import dynamo_to_dict

    ours = getattr(dynamodb_responses, "dynamo_to_dict")  # noqa: B009 - not exported
    assert ours is not dynamo_to_dict
    item = dynamo_type.Item(dynamo_type.DynamoType(WIRE_ITEM["PK"]), None, WIRE_ITEM)
    answers: list[Any] = [
        {"Items": [item.to_json()["Attributes"], item.attrs], "Count": 2,
         "LastEvaluatedKey": {"PK": item.attrs["PK"]}},
        {"Item": item.to_json()["Attributes"]},
        item,  # an object with to_json
        {"Table": {"CreationDateTime": datetime(2026, 12, 7, 3, 0), "Size": 3.5, "B": b"\x00"}},
        [dynamo_type.DynamoType(v) for v in WIRE_ITEM.values()],
        {"Responses": {"t": [item.attrs]}, "UnprocessedKeys": {}},
    ]  # fmt: skip
    for answer in answers:
        assert ours(answer) == dynamo_to_dict(answer)
    assert not hasattr(item.attrs, "to_json")  # an item's attributes are walked as a dict
    binary = ours(answers[0])["Items"][1]
    assert binary["b"] == {"B": b"\x00\xff"}  # raw bytes for the serializer, as moto gives
    assert binary["m"]["M"]["deep"]["L"][1] == {"B": b"\x03"}


def test_a_scan_answers_what_moto_answers(patched: None) -> None:
    from moto.dynamodb import responses as dynamodb_responses

    client: Any = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
    )
    for n in range(3):
        client.put_item(TableName="t", Item={**WIRE_ITEM, "PK": {"S": f"C#{n}"}})
    ours = client.scan(TableName="t")
    got = client.get_item(TableName="t", Key={"PK": {"S": "C#1"}})
    with pytest.MonkeyPatch.context() as motos:
        motos.setattr(dynamodb_responses, "dynamo_to_dict",
                      MOTOS_OWN["dynamodb.responses.dynamo_to_dict"])  # fmt: skip
        theirs = client.scan(TableName="t")
        got_theirs = client.get_item(TableName="t", Key={"PK": {"S": "C#1"}})
    for answer in (ours, theirs, got, got_theirs):
        answer.pop("ResponseMetadata")
    assert ours == theirs
    assert got == got_theirs
    assert got["Item"]["bs"] == {"BS": [b"\x01", b"\x02"]}


def test_a_condition_is_remembered_by_the_values_it_names(patched: None) -> None:
    """A transaction item's values include its update's: they vary where the condition's do
    not. The answer depends on the values the expression names, and only on them."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    theirs = MOTOS_OWN["ConditionExpressionParser.parse"]
    expr, names = "attribute_exists(PK) AND #v = :v", {"#v": "version"}
    asked = [
        {":v": {"N": "3"}, ":points": {"N": "10"}},
        {":v": {"N": "3"}, ":points": {"N": "99"}},  # another update, the same condition
        {":v": {"N": "4"}, ":points": {"N": "99"}},  # another condition
        {":points": {"N": "99"}, ":v": {"N": "4"}, ":v2": {"N": "3"}},
    ]
    answers = [_parsed(theirs, expr, names, values) for values in asked]
    assert answers[0][1] == [True, False]  # version 3: the first item only
    assert answers[2][1] == [False, True]
    for _ in range(2):
        ours = [_parsed(ConditionExpressionParser.parse, expr, names, v) for v in asked]
        assert ours == answers
    with pytest.raises(KeyError):  # a value it names and the request lacks: refused, each time
        ConditionExpressionParser(expr, names, {":points": {"N": "10"}}).parse()


def test_past_its_bound_the_memory_starts_again_with_the_same_answers(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    from crm_local import moto_overheads

    monkeypatch.setattr(moto_overheads, "PARSES_REMEMBERED", 2)
    expected = [_parsed(MOTOS_OWN["ConditionExpressionParser.parse"], *c) for c in CONDITIONS]
    for _ in range(3):  # 8 conditions through a memory of 2, three times
        assert [_parsed(ConditionExpressionParser.parse, *c) for c in CONDITIONS] == expected
