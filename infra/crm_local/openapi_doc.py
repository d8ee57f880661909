"""`make openapi`: write the API's OpenAPI document to docs/openapi.json (checked by a test)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crm_local.runtime import load_module
from crm_local.template import ROOT, load_template

DOC_PATH = ROOT / "docs" / "openapi.json"


def current_openapi() -> dict[str, Any]:
    module = load_module(load_template().function("ApiFunction"))
    doc: dict[str, Any] = module._openapi()
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, default=DOC_PATH)
    args = parser.parse_args()
    args.write.write_text(render(current_openapi()))
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
