"""Derive each connector's contract subset from the vendors' published descriptions.

Every connector with a `connectors/<name>/spec/manifest.json` names its sources (files in the
shared `specs/` folder), the operations its client calls and its simulator serves, and any
extra schemas. This tool writes, beside the manifest, `<name>.openapi.json` (and
`<name>.asyncapi.json` where the manifest names an AsyncAPI source): only those operations and
the components they reference, transitively, with every `description` and `summary` removed so
no vendor prose is copied, and `info.x-derived-from` naming the source and its sha256.

A source that is not valid OpenAPI as published (ABOUT YOU's, rebuilt by hand) may be mended by
the manifest's `patches` (JSON Patch operations, each with its reason, recorded in the subset),
and `keep_extensions` keeps only the `x-` annotations named there (its author's notes are
prose). A manifest without them derives exactly as before.

    python -m tools.derive_specs [--specs ../shared/specs] [--check]

Output is deterministic (sorted keys, two-space indent), so a stale subset shows as a diff and
`--check` fails on it.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONNECTORS = ROOT / "connectors"
DEFAULT_SPECS = ROOT.parent / "shared" / "specs"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# Keys whose value maps names to objects: a key inside is a name, never an annotation, so a
# property called `description` survives while an annotation called `description` does not.
_NAME_MAPS = frozenset(
    {
        "properties",
        "patternProperties",
        "dependentSchemas",
        "$defs",
        "definitions",
        "schemas",
        "responses",
        "parameters",
        "requestBodies",
        "headers",
        "securitySchemes",
        "links",
        "callbacks",
        "content",
        "encoding",
        "paths",
        "webhooks",
        "messages",
        "channels",
        "operations",
        "examples",
        "variables",
    }
)
# Values kept verbatim: data, not document structure.
_VERBATIM = frozenset({"example", "examples", "default", "enum", "const", "value", "required"})
_PROSE = frozenset({"description", "summary", "externalDocs"})


class ManifestError(ValueError):
    """A manifest that names something its source does not have."""


def _json_ready(value: Any) -> Any:
    """YAML's extras turned into JSON: dates to ISO strings, non-string keys to strings."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def load_source(path: Path) -> tuple[dict[str, Any], str]:
    """A description file (YAML or JSON) as data, and the sha256 of its bytes."""
    raw = path.read_bytes()
    data = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
    if not isinstance(data, dict):
        raise ManifestError(f"{path.name} is not a description document")
    return _json_ready(data), hashlib.sha256(raw).hexdigest()


def strip_prose(node: Any, *, names: str | None = None) -> Any:
    """`node` without `description`/`summary` annotations; names and data are kept.

    `names` is the key of a mapping from names to objects (`properties`, `responses`...).
    """
    if isinstance(node, list):
        return [strip_prose(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names is not None:
        named = {key: strip_prose(value) for key, value in node.items()}
        if names == "responses":
            # OpenAPI requires a description on every response object; an empty one says
            # nothing, so none of the vendor's words are carried over.
            for value in named.values():
                if isinstance(value, dict) and "$ref" not in value:
                    value["description"] = ""
        return named
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _PROSE and not isinstance(value, dict | list) or key == "externalDocs":
            continue
        if key == "examples" and isinstance(value, dict):
            # OpenAPI's named examples: drop their summaries, keep each value as it is.
            out[key] = {
                name: {k: v for k, v in example.items() if k not in _PROSE}
                if isinstance(example, dict)
                else example
                for name, example in value.items()
            }
        elif key in _VERBATIM:
            out[key] = copy.deepcopy(value)
        else:
            out[key] = strip_prose(value, names=key if key in _NAME_MAPS else None)
    return out


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for key, value in node.items():
            if key not in ("example", "examples"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _pointer(document: Mapping[str, Any], ref: str) -> tuple[str, ...]:
    if not ref.startswith("#/"):
        raise ManifestError(f"only local references are supported, not {ref!r}")
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/"))
    node: Any = document
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            raise ManifestError(f"reference {ref!r} does not resolve")
        node = node[part]
    return parts


def _copy_components(
    source: Mapping[str, Any], target: dict[str, Any], roots: Iterable[Any]
) -> None:
    """Copy into `target` every component that `roots` reference, and what those reference."""
    pending = [ref for root in roots for ref in _refs(root)]
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts = _pointer(source, ref)
        if parts[0] != "components" or len(parts) < 3:
            raise ManifestError(f"reference {ref!r} is not to a component")
        node: Any = source
        for part in parts:
            node = node[part]
        kind, name = parts[1], parts[2]
        whole = source["components"][kind][name]
        target.setdefault("components", {}).setdefault(kind, {})[name] = whole
        pending.extend(_refs(whole))


def _provenance(path: Path, document: Mapping[str, Any], sha: str) -> dict[str, str]:
    info = document.get("info", {})
    return {
        "file": path.name,
        "title": str(info.get("title", "")),
        "version": str(info.get("version", "")),
        "sha256": sha,
    }


def derive_openapi(manifest: Mapping[str, Any], specs: Path) -> dict[str, Any]:
    """The OpenAPI subset the manifest's `openapi` section asks for."""
    section = manifest["openapi"]
    path = specs / section["source"]
    source, sha = load_source(path)
    patches = section.get("patches", [])
    source = apply_patches(source, patches)
    subset: dict[str, Any] = {
        "openapi": source["openapi"],
        "info": {
            "title": source["info"]["title"],
            "version": source["info"]["version"],
            "x-derived-from": _provenance(path, source, sha),
        },
    }
    for key in ("servers", "security"):
        if key in source:
            subset[key] = copy.deepcopy(source[key])
    paths: dict[str, Any] = {}
    for entry in section["operations"]:
        method, template = entry["method"].lower(), entry["path"]
        item = source.get("paths", {}).get(template)
        if item is None or method not in item:
            raise ManifestError(f"{path.name} has no operation {method.upper()} {template}")
        kept = paths.setdefault(template, {})
        for shared in ("parameters", "servers"):
            if shared in item:
                kept[shared] = copy.deepcopy(item[shared])
        operation = copy.deepcopy(item[method])
        operation.pop("tags", None)
        kept[method] = operation
    subset["paths"] = paths
    webhooks = {}
    for name in section.get("webhooks", []):
        if name not in source.get("webhooks", {}):
            raise ManifestError(f"{path.name} has no webhook {name!r}")
        hook = copy.deepcopy(source["webhooks"][name])
        for operation in hook.values():
            if isinstance(operation, dict):
                operation.pop("tags", None)
        webhooks[name] = hook
    if webhooks:
        subset["webhooks"] = webhooks
    for added in section.get("added_responses", []):
        _add_response(source, paths, added)
    roots: list[Any] = [paths, webhooks]
    roots.extend({"$ref": f"#/components/schemas/{name}"} for name in section.get("schemas", []))
    _copy_components(source, subset, roots)
    schemes = {name for req in _security_requirements(subset) for name in req}
    for name in sorted(schemes):
        scheme = source["components"]["securitySchemes"][name]
        subset.setdefault("components", {}).setdefault("securitySchemes", {})[name] = scheme
    if patches:
        subset["info"]["x-derived-patches"] = [
            {"op": p["op"], "path": p["path"], "why": p["why"]} for p in patches
        ]
    if "keep_extensions" in section:
        subset = keep_extensions(subset, frozenset(section["keep_extensions"]))
    return strip_prose(subset)  # type: ignore[no-any-return]


def apply_patches(
    source: Mapping[str, Any], patches: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """`source` with the manifest's patches applied, for a description that is not valid
    OpenAPI as published (shorthand answers, payloads outside a request body) or leaves out
    what a wire plainly carries.

    Each patch is a JSON Patch operation (`add`, `replace` or `remove` at a JSON pointer) with a
    `why`. An object a patch puts in (but a reference) carries it as `x-derived-note`; the subset
    lists every patch under `info.x-derived-patches`, so a reader can tell the vendor's
    document from the decisions taken on top of it.
    """
    document: dict[str, Any] = copy.deepcopy(dict(source))
    for patch in patches:
        op, pointer, why = patch["op"], patch["path"], patch.get("why")
        if not why:
            raise ManifestError(f"patch {op} {pointer} gives no reason")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
        parent: Any = document
        for part in parts[:-1]:
            if not isinstance(parent, dict) or part not in parent:
                raise ManifestError(f"patch {op} {pointer}: no {part!r} on the way")
            parent = parent[part]
        last = parts[-1]
        if not isinstance(parent, dict):
            raise ManifestError(f"patch {op} {pointer}: not inside an object")
        exists = last in parent
        if op == "remove" or op == "replace":
            if not exists:
                raise ManifestError(f"patch {op} {pointer}: nothing there")
        elif op == "add":
            if exists:
                raise ManifestError(f"patch add {pointer}: already there (use replace)")
        else:
            raise ManifestError(f"patch {pointer}: unknown op {op!r}")
        if op == "remove":
            del parent[last]
            continue
        value = copy.deepcopy(patch["value"])
        # A map of names (responses, properties) notes each entry; a reference and data (an
        # example, an enum) take no note.
        targets = [] if last in _VERBATIM else value.values() if last in _NAME_MAPS else [value]
        for target in targets:
            if isinstance(target, dict) and "$ref" not in target:
                target["x-derived-note"] = why
        parent[last] = value
    return document


# Extensions the tool itself writes; a manifest's `keep_extensions` never drops them.
_OWN_EXTENSIONS = frozenset(
    {"x-derived-from", "x-derived-note", "x-derived-patches", "x-added-responses"}
)


def keep_extensions(node: Any, keep: frozenset[str], *, names: bool = False) -> Any:
    """`node` without `x-` annotations other than those in `keep`: a description rebuilt by
    hand carries its author's notes in extensions, which are prose and stay out."""
    if isinstance(node, list):
        return [keep_extensions(item, keep) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if not names and key.startswith("x-") and key not in keep | _OWN_EXTENSIONS:
            continue
        if key in _VERBATIM:
            out[key] = value
        else:
            out[key] = keep_extensions(value, keep, names=key in _NAME_MAPS and not names)
    return out


def _security_requirements(subset: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from subset.get("security", [])
    for item in subset["paths"].values():
        for method in HTTP_METHODS:
            yield from item.get(method, {}).get("security", [])


def _add_response(
    source: Mapping[str, Any], paths: dict[str, Any], added: Mapping[str, Any]
) -> None:
    """Give operations an answer their source omits, documented elsewhere by the vendor.

    The manifest says which answer (a component response of the same source), to which
    operations ("*" for every one, less any in "except"), and why; the operation records it under
    `x-added-responses` so a reader can tell the vendor's words from ours.
    """
    status, response = str(added["status"]), added["response"]
    if response not in source.get("components", {}).get("responses", {}):
        raise ManifestError(f"no component response {response!r} to add")
    targets, excepted = added["operations"], added.get("except", [])
    for template, item in paths.items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            entry = {"method": method.upper(), "path": template}
            if operation is None or entry in excepted:
                continue
            if targets != "*" and entry not in targets:
                continue
            responses = operation.setdefault("responses", {})
            if status in responses:
                continue
            responses[status] = {"$ref": f"#/components/responses/{response}"}
            operation.setdefault("x-added-responses", {})[status] = added["why"]


def derive_asyncapi(
    manifest: Mapping[str, Any], specs: Path, openapi: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The AsyncAPI subset: the named messages, their payload schemas, and for schemas the
    AsyncAPI document only sketches, the full schema from the OpenAPI source it points to."""
    section = manifest["asyncapi"]
    path = specs / section["source"]
    source, sha = load_source(path)
    info = {
        "title": source["info"]["title"],
        "version": source["info"]["version"],
        "x-derived-from": _provenance(path, source, sha),
    }
    subset: dict[str, Any] = {"asyncapi": source["asyncapi"], "info": info}
    messages = {}
    for name in section["messages"]:
        message = source.get("components", {}).get("messages", {}).get(name)
        if message is None:
            raise ManifestError(f"{path.name} has no message {name!r}")
        messages[name] = copy.deepcopy(message)
    subset["components"] = {"messages": messages}
    _copy_components(source, subset, [messages])
    replaced = section.get("schemas_from_openapi", [])
    if replaced:
        if openapi is None:
            raise ManifestError("schemas_from_openapi needs an openapi section")
        full_path = specs / manifest["openapi"]["source"]
        full, full_sha = load_source(full_path)
        info["x-schemas-from"] = _provenance(full_path, full, full_sha) | {"schemas": replaced}
        schemas = subset["components"].setdefault("schemas", {})
        for name in replaced:
            if name not in full.get("components", {}).get("schemas", {}):
                raise ManifestError(f"{full_path.name} has no schema {name!r}")
            schemas[name] = copy.deepcopy(full["components"]["schemas"][name])
        _copy_components(full, subset, [schemas[name] for name in replaced])
    return strip_prose(subset)  # type: ignore[no-any-return]


# -- an index of schemas and operations, where the vendor publishes no OpenAPI document ----------

# The index's scalar type names (a generated client's) as JSON Schema.
_INDEX_SCALARS: dict[str, dict[str, Any]] = {
    "String": {"type": "string"},
    "Float": {"type": "number"},
    "Integer": {"type": "integer"},
    "Boolean": {"type": "boolean"},
    "Time": {"type": "string", "format": "date-time"},
    "Date": {"type": "string", "format": "date"},
    "Object": {},
}
_INDEX_QUERY_TYPES = {"limit": {"type": "integer"}, "offset": {"type": "integer"}}


def _index_type(name: str) -> dict[str, Any]:
    """One index type (`String`, `Array<X>`, `Hash<String, X>`, a schema name) as JSON Schema."""
    if name in _INDEX_SCALARS:
        return dict(_INDEX_SCALARS[name])
    if name.startswith("Array<") and name.endswith(">"):
        return {"type": "array", "items": _index_type(name[6:-1])}
    if name.startswith("Hash<") and name.endswith(">"):
        value = name[5:-1].split(",", 1)[1].strip()
        return {"type": "object", "additionalProperties": _index_type(value)}
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _index_schema(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """An index schema as JSON Schema: an enum; a `Maybe*` wrapper (one `allOf` member) as that
    member or null; an object with its required flags (extra properties allowed: later
    versions add fields)."""
    if entry["kind"] == "enum":
        values = list(entry["enum"])
        kinds = {"integer" if isinstance(v, int) else "string" for v in values}
        return {"type": kinds.pop() if len(kinds) == 1 else sorted(kinds), "enum": values}
    parents = list(entry.get("allOf", []))
    if name.startswith("Maybe") and len(parents) == 1:
        return _nullable({"$ref": f"#/components/schemas/{parents[0]}"})
    properties: dict[str, Any] = {}
    required: list[str] = []
    for prop, spec in entry.get("properties", {}).items():
        schema = _index_type(spec["type"])
        properties[prop] = _nullable(schema) if spec.get("nullable") else schema
        if spec.get("required"):
            required.append(prop)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _index_params(template: str, operation: Mapping[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{([^}]+)\}", template)
    ]
    params.extend(
        {"name": name, "in": "query", "schema": _INDEX_QUERY_TYPES.get(name, {"type": "string"})}
        for name in operation["query"]
    )
    return params


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def derive_index(manifest: Mapping[str, Any], specs: Path) -> dict[str, Any]:
    """An OpenAPI 3.1 subset built from an index of a generated client's schemas and
    operations (the manifest's `index` section), for a vendor whose description is published
    only through such a client.

    The index names each operation's path (under a fixed version, replaced by `version_prefix`
    with a `{version}` segment), its body schema and what it returns, but no status codes: the
    manifest gives each operation's success status (`success`, else 200) and the error answers
    every operation may give (`errors`: status to schema, `application/problem+json`); an
    error schema the index lacks (`added_errors`) is built from `problem_like` with its status
    left open, and recorded with the manifest's reason.
    """
    section = manifest["index"]
    path = specs / section["source"]
    source, sha = load_source(path)
    schemas: Mapping[str, Any] = source["schemas"]
    by_snake = {_snake(name): name for name in schemas}
    wanted = {(o["method"].upper(), o["path"]): o for o in section["operations"]}
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for operation in source["operations"]:
        template = operation["path"].replace(section["source_prefix"], section["version_prefix"])
        key = (operation["method"].upper(), template)
        if key in wanted:
            found[key] = operation
    if missing := set(wanted) - set(found):
        raise ManifestError(f"{path.name} has no operation(s) {sorted(missing)}")
    components: dict[str, Any] = {}
    problem = "application/problem+json"
    errors = dict(section.get("errors", {}))
    added = dict(section.get("added_errors", {}))
    for status, why in sorted(added.items()):
        like = _index_schema(section["problem_like"], schemas[section["problem_like"]])
        like["properties"]["status"] = {"type": "integer"}
        like["x-derived-note"] = why
        components[f"Problem{status}"] = like
        errors[status] = f"Problem{status}"
    paths: dict[str, Any] = {}
    for (method, template), operation in sorted(found.items()):
        entry = wanted[(method, template)]
        answer: dict[str, Any] = {"description": ""}
        returns = operation["returns"]
        if returns:
            answer["content"] = {"application/json": {"schema": _index_type(returns)}}
        responses: dict[str, Any] = {str(entry.get("success", 200)): answer}
        for status, schema in sorted(errors.items()):
            responses[status] = {
                "description": "",
                "content": {problem: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
            }
        spec: dict[str, Any] = {
            "operationId": operation["operation"],
            "parameters": _index_params(template, operation),
            "responses": responses,
        }
        if operation["body_param"]:
            body = by_snake.get(operation["body_param"])
            if body is None:
                raise ManifestError(f"no schema for body {operation['body_param']!r}")
            spec["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _index_type(body)}},
            }
        paths.setdefault(template, {})[method.lower()] = spec
    roots: list[Any] = [paths, components]
    roots.extend({"$ref": f"#/components/schemas/{name}"} for name in section.get("schemas", []))
    pending = [ref for root in roots for ref in _refs(root)]
    while pending:
        name = pending.pop().rsplit("/", 1)[1]
        if name in components:
            continue
        if name not in schemas:
            raise ManifestError(f"{path.name} has no schema {name!r}")
        components[name] = _index_schema(name, schemas[name])
        pending.extend(_refs(components[name]))
    provenance = source.get("_provenance", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": section["title"],
            "version": str(provenance.get("spec_version_embedded", "")),
            "x-derived-from": {
                "file": path.name,
                "title": section["title"],
                "version": str(provenance.get("spec_version_embedded", "")),
                "sha256": sha,
            },
        },
        "servers": [{"url": section["server"]}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def manifests() -> list[Path]:
    return sorted(CONNECTORS.glob("*/spec/manifest.json"))


def derive(manifest_path: Path, specs: Path) -> dict[Path, str]:
    """Every file one manifest derives, by path, rendered."""
    manifest = json.loads(manifest_path.read_text())
    name = manifest_path.parent.parent.name
    out: dict[Path, str] = {}
    openapi = None
    if "openapi" in manifest:
        openapi = derive_openapi(manifest, specs)
        out[manifest_path.parent / f"{name}.openapi.json"] = render(openapi)
    if "index" in manifest:
        out[manifest_path.parent / f"{name}.openapi.json"] = render(derive_index(manifest, specs))
    if "asyncapi" in manifest:
        asyncapi = derive_asyncapi(manifest, specs, openapi)
        out[manifest_path.parent / f"{name}.asyncapi.json"] = render(asyncapi)
    return out


def stale(specs: Path) -> list[Path]:
    """Committed subsets that differ from what their manifest derives now."""
    return [
        path
        for manifest in manifests()
        for path, text in derive(manifest, specs).items()
        if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS)
    parser.add_argument("--check", action="store_true", help="fail when a subset is stale")
    args = parser.parse_args(argv)
    if not args.specs.is_dir():
        sys.stderr.write(f"no specs folder at {args.specs}\n")
        return 2
    if args.check:
        outdated = stale(args.specs)
        for path in outdated:
            sys.stderr.write(f"stale: {path.relative_to(ROOT)}\n")
        return 1 if outdated else 0
    for manifest in manifests():
        for path, text in derive(manifest, args.specs).items():
            path.write_text(text)
            sys.stderr.write(f"wrote {path.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
