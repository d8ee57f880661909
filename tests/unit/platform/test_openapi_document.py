"""The OpenAPI document gives every status an operation can answer with."""

from __future__ import annotations

from crm_local.openapi_doc import current_openapi


def test_operations_with_query_parameters_document_the_400_of_a_bad_one() -> None:
    operations = [op for item in current_openapi()["paths"].values() for op in item.values()]
    with_query = [
        op for op in operations if any(p["in"] == "query" for p in op.get("parameters", []))
    ]
    assert len(with_query) >= 3
    for op in with_query:
        assert "400" in op["responses"], op["operationId"]
        assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
