from tests.harness import Suite


def test_create_and_read(suite: Suite) -> None:
    created = suite.call(
        "POST",
        "/customers",
        {
            "identities": [{"channel": "app", "external_id": "u-1"}],
            "attributes": {"name": "张三", "phone": "13812345678"},
        },
    )
    print(created)
    assert created.status == 201
    cid = created.body["customer_id"]
    read = suite.call("GET", f"/customers/{cid}", role="marketer")
    print(read)
    assert read.body["attributes"]["phone"] == "138****5678"
