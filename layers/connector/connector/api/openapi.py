"""Generate the OpenAPI document of the API from its code: ``docs/openapi.json``.

``python -m connector.api.openapi > docs/openapi.json`` regenerates it; ``--check`` compares it with the
committed file and exits 1 with a message when they differ (``tests/integration/test_api_openapi.py``
does the same in the test suite). The routes live in ``functions/api/app.py`` (the Lambda handler
module, outside the layer); it is imported by path, as the local stack's Lambda shim does.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[4]
APP_FILE = Path("functions/api/app.py")
DOCUMENT = Path("docs/openapi.json")


def load_api_module(root: Path = PROJECT_ROOT) -> ModuleType:
    """Import ``functions/api/app.py`` under ``root`` (a fresh module each call)."""
    path = root / APP_FILE
    spec = importlib.util.spec_from_file_location("connector_api_app_for_openapi", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the API module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def document(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The OpenAPI document as a dict: Powertools' ``get_openapi_json_schema`` of the API's resolver,
    tidied (each operation's responses in status-code order; component schemas no operation refers to,
    such as Powertools' default validation-error shapes the API replaces, left out)."""
    module = load_api_module(root)
    module.describe_api(module.app)
    doc = json.loads(module.app.get_openapi_json_schema())
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = dict(sorted(operation["responses"].items(), key=lambda item: item[0]))
    schemas = doc.get("components", {}).get("schemas", {})
    used = _referenced(doc.get("paths", {}), schemas)
    for name in [n for n in schemas if n not in used]:
        del schemas[name]
    return doc


def _referenced(paths: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """Names of the component schemas reachable from ``paths`` through ``$ref``."""
    prefix = "#/components/schemas/"
    seen: set[str] = set()
    stack: list[Any] = [paths]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix):] not in seen:
                name = ref[len(prefix):]
                seen.add(name)
                stack.append(schemas.get(name, {}))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return seen


def render(root: Path = PROJECT_ROOT) -> str:
    """The document as committed: 2-space indented JSON, keys in generation order, final newline."""
    return json.dumps(document(root), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: print the document (default), write it (``--output FILE``) or check it (``--check``)."""
    parser = argparse.ArgumentParser(prog="python -m connector.api.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the document to this file instead of stdout")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when {DOCUMENT} is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        committed = (PROJECT_ROOT / DOCUMENT).read_text() if (PROJECT_ROOT / DOCUMENT).exists() else ""
        if committed != text:
            print(f"{DOCUMENT} is not current: regenerate it with `python -m connector.api.openapi > {DOCUMENT}`", file=sys.stderr)
            return 1
        print(f"{DOCUMENT} is current")
        return 0
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
