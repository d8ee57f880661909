"""The emulator's moto server keeps connections open and answers what werkzeug's own handler
answers: the same requests sent to both (one moto, two servers) get the same status, headers
(but the connection's, the date and the request id) and body."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from crm_local.moto_server import LocalMotoServer

VARYING = {"date", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "connection",
           "last-modified", "x-amz-crc32"}  # fmt: skip


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    ours = LocalMotoServer()
    ours.start()
    theirs = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), True,
                         request_handler=MotoRequestHandler)  # fmt: skip
    thread = threading.Thread(target=theirs.serve_forever, daemon=True)
    thread.start()
    try:
        yield ours.endpoint, f"http://127.0.0.1:{theirs.server_port}"
    finally:
        theirs.shutdown()
        ours.stop()


def _exchange(connection: http.client.HTTPConnection, request: tuple[Any, ...]) -> Any:
    method, path, headers, body = request
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = re.sub(rb"<RequestId>[^<]*</RequestId>", b"", response.read())
    kept = {k.lower(): v for k, v in response.getheaders() if k.lower() not in VARYING}
    return response.status, kept, data, response.getheader("Connection")


def _json(target: str, body: str) -> tuple[Any, ...]:
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target,
               "Authorization": "AWS4-HMAC-SHA256 Credential=local/20261206/us-east-1/dynamodb/"
                                "aws4_request, SignedHeaders=host, Signature=x"}  # fmt: skip
    return ("POST", "/", headers, body.encode())


def test_both_servers_answer_the_same_and_ours_keeps_the_connection(
    servers: tuple[str, str],
) -> None:
    ours_url, theirs_url = servers
    ddb = boto3.client("dynamodb", endpoint_url=ours_url)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t", Item={"PK": {"S": "p"}, "big": {"S": "见" * 100_000}})
    s3 = boto3.client("s3", endpoint_url=ours_url)
    s3.create_bucket(Bucket="bucket-one")
    s3.put_object(Bucket="bucket-one", Key="k", Body=b"x" * 70_000, ACL="public-read")
    requests = [
        _json("DynamoDB_20120810.GetItem", '{"TableName": "t", "Key": {"PK": {"S": "p"}}}'),
        _json("DynamoDB_20120810.GetItem", '{"TableName": "t", "Key": {"PK": {"S": "none"}}}'),
        _json("DynamoDB_20120810.DescribeTable", '{"TableName": "missing"}'),  # a 400
        _json("DynamoDB_20120810.ListTables", "{}"),
        ("GET", "/bucket-one/k", {"Host": "127.0.0.1"}, None),
        ("HEAD", "/bucket-one/k", {"Host": "127.0.0.1"}, None),
        ("GET", "/bucket-one/missing", {"Host": "127.0.0.1"}, None),  # a 404
    ]
    ours = http.client.HTTPConnection(ours_url.removeprefix("http://"), timeout=30)
    statuses: list[int] = []
    ports: set[int] = set()
    for request in requests:
        theirs = http.client.HTTPConnection(theirs_url.removeprefix("http://"), timeout=30)
        status, headers, body, connection = _exchange(ours, request)
        assert (status, headers, body) == _exchange(theirs, request)[:3], request[:2]
        statuses.append(status)
        assert ours.sock is not None
        ports.add(ours.sock.getsockname()[1])
        assert connection is None  # not "close": the next request reuses it
        theirs.close()
    assert statuses == [200, 200, 400, 200, 200, 200, 404]
    # An upload that asks first (S3's `Expect: 100-continue`) is stored, on the same connection.
    upload = ("PUT", "/bucket-one/k2", {"Host": "127.0.0.1", "Expect": "100-continue"}, b"y" * 999)
    status, _, _, connection = _exchange(ours, upload)
    assert (status, connection) == (200, None)
    assert ours.sock is not None
    ports.add(ours.sock.getsockname()[1])
    assert len(ports) == 1  # one connection carried every request
    ours.close()
    assert s3.get_object(Bucket="bucket-one", Key="k2")["Body"].read() == b"y" * 999


def test_a_chunked_upload_is_served_and_closes_the_connection(servers: tuple[str, str]) -> None:
    ours_url, _ = servers
    boto3.client("s3", endpoint_url=ours_url).create_bucket(Bucket="bucket-two")
    connection = http.client.HTTPConnection(ours_url.removeprefix("http://"), timeout=30)
    connection.request("PUT", "/bucket-two/k", body=iter([b"abc", b"def"]),
                       headers={"Host": "127.0.0.1"}, encode_chunked=True)  # fmt: skip
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    assert response.getheader("Connection") == "close"
    got = boto3.client("s3", endpoint_url=ours_url).get_object(Bucket="bucket-two", Key="k")
    assert got["Body"].read() == b"abcdef"
