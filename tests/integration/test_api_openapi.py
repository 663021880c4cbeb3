"""``docs/openapi.json`` is generated from the code and must be current; it describes every route."""

from __future__ import annotations

import json

from connector.api import openapi

REGENERATE = "python -m connector.api.openapi > docs/openapi.json"


def test_committed_openapi_document_is_current():
    committed = (openapi.PROJECT_ROOT / openapi.DOCUMENT).read_text()
    assert committed == openapi.render(), f"docs/openapi.json is not current: the API's code changed. Regenerate it with `{REGENERATE}` and commit it."


def test_check_flag_reports_a_stale_document(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(openapi, "PROJECT_ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "openapi.json").write_text("{}\n")
    monkeypatch.setattr(openapi, "render", lambda root=None: '{"openapi": "3.1.0"}\n')
    assert openapi.main(["--check"]) == 1
    assert "not current" in capsys.readouterr().err


def test_every_operation_is_secured_and_documents_its_errors():
    doc = openapi.document()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]
    operations = [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]
    assert len(operations) == 20
    for method, path, op in operations:
        for code in ("401", "403", "422"):
            assert op["responses"][code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
        if "{" in path:
            assert "404" in op["responses"], (method, path)
    secret_fields = {name for schema in doc["components"]["schemas"].values() for name, prop in schema.get("properties", {}).items() if prop.get("writeOnly")}
    assert secret_fields == {"code", "password", "access_key"}
    json.dumps(doc)  # plain JSON
