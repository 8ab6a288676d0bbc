"""The derive tool's patches and extension filter, which a description that is not valid OpenAPI
as published (ABOUT YOU's rebuilt reference) needs; a manifest without them derives as before."""

from __future__ import annotations

from typing import Any

import pytest

from tools.derive_specs import ManifestError, apply_patches, keep_extensions

SOURCE: dict[str, Any] = {
    "paths": {"/a/b": {"get": {"x-rate-limit": "200/min (page); 50/min (table)"}}},
    "components": {
        "schemas": {
            "Order": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "gone": {"type": "integer"}},
            }
        }
    },
    "webhooks": {"order.created": {"payload": {"$ref": "#/components/schemas/Order"}}},
}


def test_patches_add_replace_and_remove_each_with_its_reason() -> None:
    patched = apply_patches(
        SOURCE,
        [
            {
                "op": "replace",
                "path": "/components/schemas/Order/properties/key",
                "value": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "why": "nullable",
            },
            {"op": "remove", "path": "/components/schemas/Order/properties/gone", "why": "w"},
            {
                "op": "replace",
                "path": "/paths/~1a~1b/get/x-rate-limit",
                "value": "50/min",
                "why": "the lower",
            },
            {
                "op": "add",
                "path": "/paths/~1a~1b/get/responses",
                "value": {"200": {"content": {}}, "429": {"$ref": "#/components/responses/R"}},
                "why": "answers",
            },
            {
                "op": "add",
                "path": "/components/schemas/Order/example",
                "value": {"key": "k"},
                "why": "the page's example",
            },
        ],
    )
    order = patched["components"]["schemas"]["Order"]
    assert order["properties"] == {
        "key": {"anyOf": [{"type": "string"}, {"type": "null"}], "x-derived-note": "nullable"}
    }
    assert order["example"] == {"key": "k"}  # data takes no note
    get = patched["paths"]["/a/b"]["get"]
    assert get["x-rate-limit"] == "50/min"
    assert get["responses"] == {
        "200": {"content": {}, "x-derived-note": "answers"},
        "429": {"$ref": "#/components/responses/R"},  # a reference takes no extension
    }
    assert "gone" in SOURCE["components"]["schemas"]["Order"]["properties"]  # source untouched


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "add", "path": "/components/schemas/Order", "value": {}, "why": "exists"},
        {"op": "replace", "path": "/components/schemas/Nope", "value": {}, "why": "missing"},
        {"op": "remove", "path": "/nowhere/at/all", "why": "missing parent"},
        {"op": "move", "path": "/components", "why": "unknown op"},
        {"op": "add", "path": "/components/schemas/New", "value": {}},
    ],
)
def test_a_patch_that_does_not_apply_cleanly_is_refused(patch: dict[str, Any]) -> None:
    with pytest.raises(ManifestError):
        apply_patches(SOURCE, [patch])


def test_only_the_kept_extensions_and_the_tools_own_stay() -> None:
    document = {
        "info": {"x-derived-from": {"file": "f"}, "x-docs-root": "https://..."},
        "components": {
            "schemas": {
                "x-named": {
                    "type": "string",
                    "x-confidence": "doc",
                    "x-note": "the author's words",
                    "example": {"x-data": 1},
                }
            }
        },
    }
    assert keep_extensions(document, frozenset({"x-confidence"})) == {
        "info": {"x-derived-from": {"file": "f"}},
        "components": {
            "schemas": {
                "x-named": {"type": "string", "x-confidence": "doc", "example": {"x-data": 1}}
            }
        },
    }
