"""The committed contract subsets: fresh, valid, and free of the vendors' prose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tools.derive_specs import derive, manifests, render, strip_prose

SUBSETS = sorted(p for m in manifests() for p in m.parent.glob("*.*api.json"))
OPENAPI_SUBSETS = [s for s in SUBSETS if s.name.endswith(".openapi.json")]


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.parent.name}/{p.name}" for p in paths]


@pytest.mark.parametrize("manifest", manifests(), ids=_ids(manifests()))
def test_committed_subset_matches_what_its_manifest_derives(
    manifest: Path, shared_specs: Path
) -> None:
    derived = derive(manifest, shared_specs)
    assert derived, f"{manifest} names no source"
    for path, text in derived.items():
        assert path.exists(), f"{path.name} is missing: run `make specs`"
        assert path.read_text() == text, f"{path.name} is stale: run `make specs`"


@pytest.mark.parametrize("subset", SUBSETS, ids=_ids(SUBSETS))
def test_subset_names_its_source_and_is_rendered_deterministically(subset: Path) -> None:
    text = subset.read_text()
    document = json.loads(text)
    origin = document["info"]["x-derived-from"]
    assert set(origin) == {"file", "title", "version", "sha256"}
    assert len(origin["sha256"]) == 64
    assert render(document) == text


@pytest.mark.parametrize("subset", OPENAPI_SUBSETS, ids=_ids(OPENAPI_SUBSETS))
def test_openapi_subset_is_a_valid_openapi_document(subset: Path) -> None:
    validate(json.loads(subset.read_text()))


def _annotations(node: Any, names: bool = False) -> Iterator[str]:
    """Every `description`/`summary` used as an annotation (not as a property name)."""
    if isinstance(node, list):
        for item in node:
            yield from _annotations(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if not names and key in ("description", "summary") and isinstance(value, str):
                if value:
                    yield value
            elif key in ("example", "examples", "enum", "default", "required"):
                continue
            else:
                yield from _annotations(value, names=key in ("properties", "schemas"))


@pytest.mark.parametrize("subset", SUBSETS, ids=_ids(SUBSETS))
def test_subset_carries_no_vendor_prose(subset: Path) -> None:
    assert list(_annotations(json.loads(subset.read_text()))) == []


def test_prose_is_stripped_but_names_and_examples_stay() -> None:
    document = {
        "description": "vendor words",
        "properties": {"description": {"type": "string", "description": "more words"}},
        "responses": {"200": {"description": "OK", "content": {}}},
        "example": {"description": "a value"},
    }
    assert strip_prose(document) == {
        "properties": {"description": {"type": "string"}},
        "responses": {"200": {"description": "", "content": {}}},
        "example": {"description": "a value"},
    }
