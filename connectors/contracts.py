"""The wire checked against the vendor's own description: contract validation for connectors.

Each connector keeps a derived subset of its system's published description inside its package
(`connectors/<name>/spec/`, written by `tools/derive_specs.py`). A `Contract` loads one and
validates, with openapi-core, a request against the operation it calls and a response against
what that operation documents. Three uses:

- `watch(client, contract)`: every request a connector's httpx client sends and every answer it
  receives is checked; tests and the demo run every call through it.
- `enforce(app, contract, refuse)`: a simulator refuses a request that does not fit its operation
  with the status the operation documents for bad input, in the system's own error format.
- `MessageContract` / `payload_problems`: webhook payloads described by AsyncAPI, checked with
  jsonschema.

A simulator and its client are each checked against the description, never against each other,
so the two cannot agree by construction.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI, Request
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema_path import SchemaPath
from openapi_core.casting.schemas.factories import SchemaCastersFactory
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types import media_type_deserializers
from openapi_core.templating.paths.datatypes import PathOperationServer
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request import validators as request_validators
from openapi_core.validation.request.exceptions import MissingRequestBody
from openapi_core.validation.response import validators as response_validators
from openapi_core.validation.schemas.datatypes import FormatValidatorsDict
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from openapi_core.validation.schemas.validators import SchemaValidator
from openapi_core.validation.validators import BaseValidator
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from werkzeug.datastructures import Headers, ImmutableMultiDict

from connectors.asgi import add_http_middleware, read_body

# openapi-core checks no OAuth2 credentials (topi's and Deliverr's schemes) and warns at every
# request it validates; the simulators answer a missing or wrong token with 401 themselves.
warnings.filterwarnings(
    "ignore", "Unsupported scheme type", UserWarning, "openapi_core.security.providers"
)
# topi's description marks query parameters `allowEmptyValue`, which OpenAPI deprecates.
warnings.filterwarnings(
    "ignore", "Use of allowEmptyValue property is deprecated", DeprecationWarning, "openapi_core"
)

# The simulators' control routes (`connectors.simulation.CONTROL_PREFIX`): not the vendor's API.
_CONTROL_PREFIX = "/_sim"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

Refuse = Callable[[int, list[str]], Response]


class ContractViolation(AssertionError):
    """A request or an answer that does not fit the operation the vendor describes."""

    def __init__(self, direction: str, method: str, path: str, problems: Iterable[str]) -> None:
        self.direction = direction
        self.method = method
        self.path = path
        self.problems = list(problems)
        listed = "; ".join(self.problems)
        super().__init__(f"{direction} {method} {path} breaks the contract: {listed}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a contract: its method and path template as the description names them."""

    method: str
    path: str
    operation_id: str | None
    responses: frozenset[str]

    @property
    def bad_input_status(self) -> int:
        """What the operation documents for a request that does not fit: 400, else 422."""
        for status in ("400", "422"):
            if status in self.responses:
                return int(status)
        return 400


def _template_pattern(template: str) -> re.Pattern[str]:
    """The paths `template` names; each variable's value is one group, in template order."""
    parts = re.split(r"(\{[^}/]+\})", template)
    regex = "".join("([^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


def _variables(template: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\{([^}/]+)\}", template))


@dataclass(frozen=True, slots=True)
class _Route:
    """The operation a request calls, its path template as served (the server's path prefix
    and the operation's template), and the values of the template's variables."""

    operation: Operation
    path_pattern: str
    variables: dict[str, str]


class _WireRequest:
    """An HTTP request as openapi-core reads it (its `Request` protocol). It names the path
    template its operation matched (`SupportsPathPattern`), with the variables' values, so
    openapi-core finds the operation by the template, the same for every request to it."""

    def __init__(
        self,
        host_url: str,
        path: str,
        method: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes | None,
        route: _Route,
    ) -> None:
        self.host_url = host_url
        self.path = path
        self.path_pattern = route.path_pattern
        self.method = method.lower()
        self.body = body
        self.content_type = _content_type(headers)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
            path=dict(route.variables),
        )


class _WireResponse:
    """An HTTP response as openapi-core reads it (its `Response` protocol)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes | None) -> None:
        self.status_code = status
        self.headers = Headers(list(headers.items()))
        self.data = body
        self.content_type = _content_type(headers)


def _content_type(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.lower()
    return ""


def _schema_problem(error: SchemaError, where: str) -> str:
    location = where + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
    )
    return f"{location}: {error.message}"


def _describe(error: BaseException) -> list[str]:
    """Readable lines for one openapi-core error, down to each schema violation."""
    cause = error.__cause__
    where = {
        "InvalidRequestBody": "body",
        "InvalidData": "response body",
    }.get(type(error).__name__)
    name = getattr(error, "name", None)
    location = getattr(error, "location", None)
    if where is None and name is not None:
        where = f"{location} parameter {name!r}" if location else f"header {name!r}"
    if isinstance(cause, InvalidSchemaValue) and cause.schema_errors:
        return sorted(
            _schema_problem(e, where or "value") if isinstance(e, SchemaError) else str(e)
            for e in cause.schema_errors
        )
    if cause is not None and str(cause):
        if where is not None:
            return [f"{where}: {cause}"]
        text = str(error)
        return [text if str(cause) in text else f"{text}: {cause}"]
    return [str(error)]


@dataclass(frozen=True, slots=True)
class RequestCheck:
    """What a request check found: the operation (None when the contract has none), problems
    with the request itself, and problems with its credentials (which a server answers 401)."""

    operation: Operation | None
    problems: tuple[str, ...]
    security: tuple[str, ...]


class Contract:
    """A derived OpenAPI subset and the validation it allows."""

    def __init__(self, document: Mapping[str, Any], *, name: str = "") -> None:
        self.document = json.loads(json.dumps(document))
        self.name = name or str(self.document.get("info", {}).get("title", "contract"))
        version = "V30" if str(self.document.get("openapi", "")).startswith("3.0") else "V31"
        # The subset is not checked against the OpenAPI schema here: the contract tests do
        # that once, and doing it at every load would cost most of a second per process.
        spec = SchemaPath.from_dict(self.document, resolved_cache_maxsize=_RESOLVED_PATHS)
        # A vendor media type openapi-core does not know (topi's `application/vnd.goa.error`)
        # would reach the schema as raw bytes; its bodies are JSON, so they are read as such.
        extra = {
            media: _json_or_raw
            for media in _media_types(self.document)
            if media not in media_type_deserializers
        }
        self._security = _reusing(request_validators, f"{version}RequestSecurityValidator", spec)
        self._parameters = _reusing(
            request_validators, f"{version}RequestParametersValidator", spec
        )
        self._body = _reusing(
            request_validators,
            f"{version}RequestBodyValidator",
            spec,
            extra_media_type_deserializers=extra,
        )
        self._response = _reusing(
            response_validators,
            f"{version}ResponseValidator",
            spec,
            extra_media_type_deserializers=extra,
        )
        self._operations: list[tuple[re.Pattern[str], tuple[str, ...], Operation]] = []
        for template, item in self.document.get("paths", {}).items():
            for method in _METHODS:
                if method in item:
                    spec = item[method]
                    operation = Operation(
                        method.upper(),
                        template,
                        spec.get("operationId"),
                        frozenset(str(s) for s in spec.get("responses", {})),
                    )
                    self._operations.append(
                        (_template_pattern(template), _variables(template), operation)
                    )
        # Literal segments first, so `/orders/export` wins over `/orders/{id}`.
        self._operations.sort(key=lambda entry: entry[2].path.count("{"))
        servers = [s.get("url", "/") for s in self.document.get("servers", [])] or ["/"]
        self._servers = [_server_parts(url) for url in servers]

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """The contract in a derived subset file (JSON), loaded once per process."""
        return _load(str(Path(path).resolve()))

    @property
    def operations(self) -> list[Operation]:
        return [operation for _, _, operation in self._operations]

    @property
    def derived_from(self) -> Mapping[str, str]:
        """The source file, its title, version and sha256 (`info.x-derived-from`)."""
        return dict(self.document.get("info", {}).get("x-derived-from", {}))

    def operation(self, method: str, url: str) -> Operation | None:
        """The operation a request to `url` calls, or None when the contract has none."""
        found = self._route(method, urlsplit(url).path)
        return found.operation if found is not None else None

    def _route(self, method: str, path: str) -> _Route | None:
        prefix, api_path = self._split(path)
        method = method.upper()
        for pattern, names, operation in self._operations:
            if operation.method != method:
                continue
            matched = pattern.match(api_path)
            if matched:
                values = dict(zip(names, matched.groups(), strict=True))
                return _Route(operation, prefix + operation.path, values)
        return None

    def _split(self, path: str) -> tuple[str, str]:
        """`path` as (the server's path prefix, the path the description's templates name)."""
        for _, prefix in self._servers:
            if prefix and path.startswith(prefix):
                return prefix, path[len(prefix) :] or "/"
        return "", path

    def _host_for(self, path: str) -> str:
        for host, prefix in self._servers:
            if not prefix or path.startswith(prefix):
                return host
        return self._servers[0][0]

    def check_request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> RequestCheck:
        """Validate one request against the operation it calls."""
        parts = urlsplit(url)
        route = self._route(method, parts.path)
        if route is None:
            return RequestCheck(None, (f"no {method.upper()} {parts.path} in {self.name}",), ())
        host = self._host_for(parts.path)
        request = _WireRequest(host, parts.path, method, parts.query, headers, body or None, route)
        security = [line for e in self._security.iter_errors(request) for line in _describe(e)]
        problems = [line for e in self._parameters.iter_errors(request) for line in _describe(e)]
        problems.extend(
            line
            for error in self._body.iter_errors(request)
            if not isinstance(error, MissingRequestBody)  # an optional body left out
            for line in _describe(error)
        )
        return RequestCheck(route.operation, tuple(problems), tuple(security))

    def request_problems(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> list[str]:
        """Every way the request breaks the contract; empty when it fits its operation."""
        check = self.check_request(method, url, headers, body)
        return [*check.problems, *check.security]

    def response_problems(
        self,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> list[str]:
        """Every way the answer breaks what its operation documents; empty when it fits.

        A 5xx the operation does not document is not judged: servers and the proxies in
        front of them fail in ways no description lists, and a client must treat every such
        failure as transient whatever its body.
        """
        parts = urlsplit(url)
        route = self._route(method, parts.path)
        if route is None:
            return [f"no {method.upper()} {parts.path} in {self.name}"]
        operation = route.operation
        documented = str(status) in operation.responses or "default" in operation.responses
        if not documented and status >= 500:
            return []
        if not documented:
            return [
                f"{status} is not an answer {method.upper()} {operation.path} documents "
                f"(it documents {', '.join(sorted(operation.responses))})"
            ]
        if not self._documents_content(operation, str(status)):
            # "Successful operation, no content returned": nothing to validate but emptiness.
            return [f"documents no body, got {len(body)} bytes"] if body else []
        request = _WireRequest(
            self._host_for(parts.path), parts.path, method, parts.query, {}, None, route
        )
        response = _WireResponse(status, headers, body or None)
        return [
            line for e in self._response.iter_errors(request, response) for line in _describe(e)
        ]

    def _documents_content(self, operation: Operation, status: str) -> bool:
        spec = self.document["paths"][operation.path][operation.method.lower()]["responses"]
        answer = spec.get(status, spec.get("default", {}))
        while "$ref" in answer:
            answer = self._resolve(answer["$ref"])
        return bool(answer.get("content"))

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        resolved: Mapping[str, Any] = node
        return resolved

    def webhook_problems(self, name: str, body: bytes) -> list[str]:
        """Problems with a webhook body against the description's `webhooks[name]` (3.1)."""
        hook = self.document.get("webhooks", {}).get(name)
        if hook is None:
            return [f"no webhook {name!r} in {self.name}"]
        schema = hook["post"]["requestBody"]["content"]["application/json"]["schema"]
        return payload_problems(self.schema_document(schema), body)

    def schema_document(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """`schema` made self-contained: the contract's components travel with it, so its
        `#/components/...` references resolve."""
        return {**schema, "components": self.document.get("components", {})}

    def bad_input_status(self, method: str, url: str) -> int:
        operation = self.operation(method, url)
        return operation.bad_input_status if operation is not None else 400


# What openapi-core rebuilds at every request, kept instead. Everything it keeps depends on the
# description alone, never on a request, so every request is still validated in full by
# openapi-core; only the work of reading the description again is saved. All three hooks are
# openapi-core's own constructor parameters (`path_finder_cls`, `schema_validators_factory`,
# `schema_casters_factory`) and jsonschema-path's `resolved_cache_maxsize`.

# The openapi-core whose calls into its path finder and schema validator factory the reuse
# above was checked against (tests/contracts/test_reuse.py fails on any other version).
OPENAPI_CORE_VERSION = "0.23.1"

# Resolved description nodes kept per contract: more than the largest subset has.
_RESOLVED_PATHS = 65_536


class _OperationFinder(APICallPathFinder):
    """openapi-core's path finder, its answer kept per (method, URL). Requests name their
    path template (`_WireRequest.path_pattern`), so the URLs it sees are one per operation."""

    def __init__(self, spec: SchemaPath, base_url: str | None = None) -> None:
        super().__init__(spec, base_url=base_url)
        self._found: dict[tuple[str, str], PathOperationServer] = {}

    def find(self, method: str, name: str) -> PathOperationServer:
        key = (method, name)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = super().find(method, name)
        return found


class _ReusedSchemaValidators(SchemaValidatorsFactory):
    """openapi-core's schema validator factory, each validator built once per schema: it
    builds a jsonschema validator and copies a format checker at every call otherwise."""

    def __init__(self, factory: SchemaValidatorsFactory) -> None:
        super().__init__(factory.schema_validator_cls, factory.format_checker)
        self._factory = factory
        self._built: dict[tuple[Any, ...], SchemaValidator] = {}

    def create(
        self,
        spec: SchemaPath,
        schema: SchemaPath,
        format_validators: FormatValidatorsDict | None = None,
        extra_format_validators: FormatValidatorsDict | None = None,
        forbid_unspecified_additional_properties: bool = False,
        enforce_properties_required: bool = False,
    ) -> SchemaValidator:
        def build() -> SchemaValidator:
            return self._factory.create(
                spec,
                schema,
                format_validators=format_validators,
                extra_format_validators=extra_format_validators,
                forbid_unspecified_additional_properties=forbid_unspecified_additional_properties,
                enforce_properties_required=enforce_properties_required,
            )

        if schema.accessor is not spec.accessor:
            # A schema openapi-core built on the spot, not a node of this contract's
            # description: its path names nothing, so it is not kept.
            return build()
        # One factory serves one contract's validators, so a schema's path names it; the
        # format validators are keyed by what they hold (a dict built per call may reuse an id).
        key = (
            schema.parts,
            _frozen(format_validators),
            _frozen(extra_format_validators),
            forbid_unspecified_additional_properties,
            enforce_properties_required,
        )
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = build()
        return built


def _frozen(validators: FormatValidatorsDict | None) -> frozenset[Any] | None:
    """Format validators (name -> callable) as a cache key part."""
    return None if validators is None else frozenset(validators.items())


def _reusing(module: Any, name: str, spec: SchemaPath, **options: Any) -> Any:
    """openapi-core's validator `module.name` for `spec`, keeping what depends on the
    description alone (see `_OperationFinder`, `_ReusedSchemaValidators`)."""
    cls: type[BaseValidator] = getattr(module, name)
    schema_validators = _ReusedSchemaValidators(cls.schema_validators_factory)
    return cls(
        spec,
        path_finder_cls=_OperationFinder,
        schema_validators_factory=schema_validators,
        schema_casters_factory=SchemaCastersFactory(
            schema_validators, cls.schema_casters_factory.types_caster
        ),
        **options,
    )


def _media_types(node: Any) -> Iterator[str]:
    """Every media type named under a `content` key of `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "content" and isinstance(value, dict):
                yield from (str(media) for media in value)
            if key not in ("example", "examples"):
                yield from _media_types(value)
    elif isinstance(node, list):
        for item in node:
            yield from _media_types(item)


def _json_or_raw(value: bytes, **parameters: str) -> Any:
    """A body read as JSON, or left as it came when it is not JSON (then the schema says so)."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _server_parts(url: str) -> tuple[str, str]:
    """A server URL as (scheme://host, path prefix); variables take their first spelling."""
    url = re.sub(r"\{[^}]+\}", "x", url)
    if url.startswith("/"):
        return "https://contract.invalid", url.rstrip("/")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


@functools.cache
def _load(path: str) -> Contract:
    document = json.loads(Path(path).read_text())
    return Contract(document, name=Path(path).name)


def published_contract(connector: str) -> Contract | None:
    """The contract a connector package publishes as `connectors.<name>.spec.CONTRACT`, or
    None while it has none ready: the one place that decides which wires are checked."""
    try:
        module = importlib.import_module(f"connectors.{connector}.spec")
    except ModuleNotFoundError as exc:
        if exc.name in (f"connectors.{connector}", f"connectors.{connector}.spec"):
            return None
        raise
    contract = getattr(module, "CONTRACT", None)
    return contract if isinstance(contract, Contract) else None


# ---------------------------------------------------------------------------------------------
# Watching a client
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request a watched client sent and, once it came, the answer."""

    method: str
    url: str
    operation: Operation | None
    request_problems: tuple[str, ...]
    status: int | None = None
    response_problems: tuple[str, ...] = ()


@dataclass
class ContractLog:
    """What a watched client sent and received, and every problem found on the way."""

    contract: Contract
    exchanges: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def answered(self, method: str, url: str, status: int, problems: Iterable[str]) -> None:
        """Complete the latest unanswered exchange for this request with its answer."""
        with self._lock:
            for index in range(len(self.exchanges) - 1, -1, -1):
                seen = self.exchanges[index]
                if seen.status is None and seen.method == method and seen.url == url:
                    self.exchanges[index] = Exchange(
                        seen.method,
                        seen.url,
                        seen.operation,
                        seen.request_problems,
                        status,
                        tuple(problems),
                    )
                    return

    @property
    def problems(self) -> list[str]:
        """Every problem seen, each prefixed with its request."""
        with self._lock:
            return [
                f"{e.method} {urlsplit(e.url).path}: {problem}"
                for e in self.exchanges
                for problem in (*e.request_problems, *e.response_problems)
            ]

    def operations(self) -> set[tuple[str, str]]:
        """The (method, path template) of every operation exercised."""
        with self._lock:
            return {(e.operation.method, e.operation.path) for e in self.exchanges if e.operation}

    def statuses(self, method: str, path: str) -> set[int]:
        """The statuses seen for one operation."""
        with self._lock:
            return {
                e.status
                for e in self.exchanges
                if e.operation is not None
                and (e.operation.method, e.operation.path) == (method.upper(), path)
                and e.status is not None
            }


def watch(client: httpx.Client, contract: Contract, *, strict: bool = True) -> ContractLog:
    """Check every request `client` sends and every answer it receives against `contract`.

    Strict: a problem raises `ContractViolation` out of the call (a request before it is
    sent). Either way the returned log keeps every exchange and problem.
    """
    log = ContractLog(contract)

    def on_request(request: httpx.Request) -> None:
        body = request.read()
        url = str(request.url)
        check = contract.check_request(request.method, url, request.headers, body)
        problems = (*check.problems, *check.security)
        log.add(Exchange(request.method, url, check.operation, problems))
        if problems and strict:
            raise ContractViolation("request", request.method, request.url.path, problems)

    def on_response(response: httpx.Response) -> None:
        response.read()
        request = response.request
        url = str(request.url)
        problems = contract.response_problems(
            request.method, url, response.status_code, response.headers, response.content
        )
        log.answered(request.method, url, response.status_code, problems)
        if problems and strict:
            raise ContractViolation(
                f"{response.status_code} answer to", request.method, request.url.path, problems
            )

    hooks = client.event_hooks
    client.event_hooks = {
        "request": [*hooks.get("request", []), on_request],
        "response": [*hooks.get("response", []), on_response],
    }
    return log


# ---------------------------------------------------------------------------------------------
# Enforcing in a simulator
# ---------------------------------------------------------------------------------------------


def enforce(
    app: FastAPI,
    contract: Contract,
    refuse: Refuse,
    *,
    refusers: Mapping[str, Refuse] | None = None,
    exempt: Iterable[str] = (_CONTROL_PREFIX,),
) -> None:
    """Make `app` (a simulator) refuse requests that do not fit their operation, as the real
    API would: with the operation's bad-input status (400, else 422), built by `refuse` in the
    system's own error format, or by `refusers[path template]` for operations that answer in
    another format (an OAuth token endpoint).

    Requests to paths the contract does not have pass through (the app answers 404 or 405),
    and so do credential problems (the app's own authentication answers 401).
    """
    prefixes = tuple(exempt)
    special = dict(refusers or {})

    async def _enforce(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        path = request.url.path
        if path.startswith(prefixes):
            await inner(scope, receive, send)
            return
        raw = scope.get("raw_path")
        wire_path = raw.decode("latin-1") if isinstance(raw, bytes) else path
        query = request.url.query
        url = f"{request.url.scheme}://{request.url.netloc}{wire_path}" + (
            f"?{query}" if query else ""
        )
        operation = contract.operation(request.method, url)
        if operation is None:
            await inner(scope, receive, send)
            return
        body, receive = await read_body(receive)
        check = contract.check_request(request.method, url, request.headers, body)
        if check.problems:
            answer = special.get(operation.path, refuse)
            await answer(operation.bad_input_status, list(check.problems))(scope, receive, send)
            return
        await inner(scope, receive, send)

    add_http_middleware(app, _enforce)


# ---------------------------------------------------------------------------------------------
# Webhook payloads (AsyncAPI)
# ---------------------------------------------------------------------------------------------


def payload_problems(schema: Mapping[str, Any], body: bytes | str | Any) -> list[str]:
    """Every way `body` (raw JSON, or decoded) breaks the JSON Schema `schema`; references
    resolve inside `schema` itself (see `Contract.schema_document`, `MessageContract`)."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            return [f"not JSON: {exc}"]
    validator = Draft202012Validator(dict(schema), format_checker=FormatChecker())
    return sorted(_schema_problem(error, "payload") for error in validator.iter_errors(body))


class MessageContract:
    """A derived AsyncAPI subset: the payload schema of each message, by message name."""

    def __init__(self, document: Mapping[str, Any], *, name: str = "") -> None:
        self.document = json.loads(json.dumps(document))
        self.name = name or str(self.document.get("info", {}).get("title", "messages"))

    @classmethod
    def load(cls, path: str | Path) -> MessageContract:
        return cls(json.loads(Path(path).read_text()), name=Path(path).name)

    @property
    def messages(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.document.get("components", {}).get("messages", {})
        return found

    def message_for(self, field_name: str, value: str) -> str | None:
        """The message whose `field_name` (an `x-` extension such as `x-event-type`) is
        `value`, or None."""
        return next((name for name, m in self.messages.items() if m.get(field_name) == value), None)

    def payload_schema(self, message: str) -> dict[str, Any]:
        """The message's payload schema, self-contained."""
        payload = self.messages[message]["payload"]
        return {**payload, "components": self.document.get("components", {})}

    def payload_problems(self, message: str, body: bytes | str | Any) -> list[str]:
        if message not in self.messages:
            return [f"no message {message!r} in {self.name}"]
        return payload_problems(self.payload_schema(message), body)


def iter_examples(document: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every example a description carries, with where it sits: the raw material of contract
    tests that prove the wire models read what the vendor documents."""

    def walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{where}/{key}"
                if key == "example":
                    yield here, value
                elif key == "examples" and isinstance(value, dict):
                    for name, example in value.items():
                        if isinstance(example, dict) and "value" in example:
                            yield f"{here}/{name}", example["value"]
                else:
                    yield from walk(value, here)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, f"{where}/{index}")

    yield from walk(document, "#")
