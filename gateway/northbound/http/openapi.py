"""The OpenAPI 3.1 document, generated from the pydantic models the routes themselves use.

A route module declares each route as an :class:`Operation` (method, path, handler, and its
query, body and response models) and registers it with :func:`add`. ``add`` wires the route
into aiohttp (role guard, then query/body validation), and keeps the declaration in the
application's registry; ``GET /api/openapi.json`` turns the registry into the document with
pydantic's JSON schema, so the document cannot drift from what the handlers validate and
return. Routes added directly on the router (older modules) are listed too, with their path
parameters and a generic JSON answer.

``GET /api/docs`` renders the document as a plain HTML page on the server: no script, no
CDN, no inline style, so it works under a strict Content-Security-Policy.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import to_json

from gateway.northbound.http.auth import public, require_role
from gateway.northbound.http.errors import error
from gateway.services.accounts.users import Role

API_TITLE = "RefineryIQ Edge API"
API_VERSION = "1.0"
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"
HTML = "text/html"
EVENT_STREAM = "text/event-stream"
# Statuses any API route may answer besides its own (bodies {"detail": ...}).
COMMON_ERRORS = {400: "invalid parameter or body (the detail names the field)",
                 503: "the service behind the route is not running"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)

QUERY_KEY: web.RequestKey[BaseModel | None] = web.RequestKey("validated_query", object)
BODY_KEY: web.RequestKey[BaseModel | None] = web.RequestKey("validated_body", object)


class ErrorBody(BaseModel):
    """Every error answer: ``{"detail": "<reason>"}``."""

    detail: str


class QueryModel(BaseModel):
    """Base of query-parameter models: unknown parameters are ignored, values come as text."""

    model_config = ConfigDict(extra="ignore")


class BodyModel(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo is an error, not a no-op)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Operation:
    """One documented route: what it takes, what it answers, who may call it."""

    method: str
    path: str
    handler: Handler
    summary: str
    response: Any = None  # a model, list[Model], ... ; None: any JSON
    query: type[QueryModel] | None = None
    body: type[BaseModel] | None = None
    role: Role | None = None
    content_type: str = JSON
    status: int = 200
    tag: str = "gateway"
    errors: dict[int, str] = field(default_factory=dict)
    description: str = ""


OPERATIONS_KEY: web.AppKey[list[Operation]] = web.AppKey("openapi_operations", list)


# --------------------------------------------------------------------------- validation


def _field_error(exc: ValidationError, where: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or where
    return f"{loc}: {err['msg'].removeprefix('Value error, ')}"


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``; :class:`InvalidInput` naming the first bad parameter."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise InvalidInput(400, _field_error(exc, "query")) from None


async def parse_json_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model``; :class:`InvalidInput` naming the first bad field."""
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput(400, "body: not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(422, _field_error(exc, "body")) from None


class InvalidInput(Exception):
    """Input refused with ``status`` and a reason naming the field."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def query_of(request: web.Request) -> Any:
    """The validated query model of this request (see :func:`add`)."""
    return request[QUERY_KEY]


def body_of(request: web.Request) -> Any:
    """The validated body model of this request (see :func:`add`)."""
    return request[BODY_KEY]


def respond(value: Any, status: int = 200) -> web.Response:
    """A JSON answer from models (and lists/dicts of them), encoded by pydantic's serializer
    in one pass: the same JSON as ``model_dump(mode="json")``, without the dicts in between."""
    return web.Response(body=to_json(value), status=status, content_type=JSON, charset="utf-8")


def _validating(op: Operation) -> Handler:
    @functools.wraps(op.handler)
    async def validated(request: web.Request) -> web.StreamResponse:
        try:
            request[QUERY_KEY] = parse_query(request, op.query) if op.query else None
            request[BODY_KEY] = await parse_json_body(request, op.body) if op.body else None
        except InvalidInput as exc:
            return error(exc.status, exc.detail)
        try:
            return await op.handler(request)
        except InvalidInput as exc:
            return error(exc.status, exc.detail)
    return validated


def add(app: web.Application, op: Operation) -> None:
    """Register ``op`` on the router (guarded by its role, inputs validated) and document it."""
    handler = _validating(op)
    if op.role is not None:
        handler = require_role(op.role)(handler)
    app.router.add_route(op.method, op.path, handler)
    if OPERATIONS_KEY not in app:
        app[OPERATIONS_KEY] = []
    app[OPERATIONS_KEY].append(op)


# --------------------------------------------------------------------------- the document


class _Schemas:
    """JSON schemas of the models, their definitions collected under components."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, annotation: Any, mode: str = "serialization") -> dict[str, Any]:
        schema = TypeAdapter(annotation).json_schema(ref_template=REF_TEMPLATE, mode=mode)
        self.components.update(schema.pop("$defs", {}))
        if schema.get("title") and "$ref" not in schema and schema.get("type") == "object":
            name = schema["title"]
            self.components[name] = schema
            return {"$ref": REF_TEMPLATE.format(model=name)}
        return schema


def _path_params(path: str) -> list[str]:
    return [re.split(r"[:}]", p)[0] for p in re.findall(r"\{([^}]+)\}", path)]


def _openapi_path(path: str) -> str:
    """aiohttp's ``{key:.+}`` as OpenAPI's ``{key}``."""
    return re.sub(r"\{([^}:]+):[^}]+\}", r"{\1}", path)


def _query_parameters(model: type[QueryModel], schemas: _Schemas) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="validation")
    schemas.components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": {k: v for k, v in prop.items() if k != "description"}}
        if prop.get("description"):
            param["description"] = prop["description"]
        out.append(param)
    return out


def _error_response() -> dict[str, Any]:
    return {"content": {JSON: {"schema": {"$ref": REF_TEMPLATE.format(model="ErrorBody")}}}}


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in _path_params(op.path)]
    if op.query is not None:
        params += _query_parameters(op.query, schemas)
    if op.content_type == JSON:
        schema = schemas.of(op.response) if op.response is not None else {}
    else:
        schema = {"type": "string"}
    doc: dict[str, Any] = {
        "summary": op.summary, "tags": [op.tag],
        "operationId": f"{op.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', op.path).strip('_')}",
        "responses": {str(op.status): {"description": "success",
                                       "content": {op.content_type: {"schema": schema}}}},
    }
    if op.description:
        doc["description"] = op.description
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": True,
                              "content": {JSON: {"schema": schemas.of(op.body, "validation")}}}
    errors = dict(COMMON_ERRORS) if (op.query or op.body or _path_params(op.path)) else {}
    if op.body is not None:
        errors[422] = "the body does not match its schema (the detail names the field)"
    errors.update(op.errors)
    if op.role is not None:
        errors[401] = "no valid bearer token"
        errors[403] = f"needs the {op.role.label} role or higher"
        doc["security"] = [{"bearer": []}]
        doc["x-required-role"] = op.role.label
    for status, text in sorted(errors.items()):
        doc["responses"][str(status)] = {"description": text, **_error_response()}
    return doc


def _undeclared(app: web.Application, declared: set[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "OPTIONS", "*"):
            continue
        path = resource.canonical
        if (route.method, path) not in declared:
            out.append((route.method, path))
    return out


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app``."""
    schemas = _Schemas()
    schemas.of(ErrorBody)
    paths: dict[str, dict[str, Any]] = {}
    ops = app.get(OPERATIONS_KEY, [])
    for op in ops:
        paths.setdefault(_openapi_path(op.path), {})[op.method.lower()] = _operation(op, schemas)
    declared = {(op.method, op.path) for op in ops}
    for method, path in _undeclared(app, declared):
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in _path_params(path)]
        doc: dict[str, Any] = {"summary": f"{method} {path}", "tags": ["other"],
                               "responses": {"200": {"description": "success"}}}
        if params:
            doc["parameters"] = params
        paths.setdefault(_openapi_path(path), {}).setdefault(method.lower(), doc)
    return {
        "openapi": "3.1.0",
        "info": {"title": API_TITLE, "version": API_VERSION,
                 "description": "Every error body is {\"detail\": \"<reason>\"}. Writes need a "
                                "bearer token from POST /api/auth/login."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.components.items())),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "bearerFormat": "JWT"}}},
    }


# --------------------------------------------------------------------------- docs page


def _schema_text(schema: Any) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False)


def render_docs(doc: dict[str, Any]) -> str:
    """The document as a static HTML listing: paths, methods, parameters, schemas."""
    e = html.escape
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{e(doc['info']['title'])}</title></head><body>",
             f"<h1>{e(doc['info']['title'])} {e(doc['info']['version'])}</h1>",
             f"<p>{e(doc['info']['description'])}</p>",
             f"<p>Machine-readable: <a href=\"{OPENAPI_PATH}\">{OPENAPI_PATH}</a></p>",
             "<h2>Paths</h2>"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h3 id=\"{e(op.get('operationId', method + path))}\">"
                         f"<code>{e(method.upper())} {e(path)}</code></h3>")
            parts.append(f"<p>{e(op.get('summary', ''))}</p>")
            if op.get("description"):
                parts.append(f"<p>{e(op['description'])}</p>")
            if op.get("x-required-role"):
                parts.append(f"<p>Role: {e(op['x-required-role'])} or higher</p>")
            if op.get("parameters"):
                parts.append("<table><tr><th>name</th><th>in</th><th>required</th>"
                             "<th>schema</th></tr>")
                for p in op["parameters"]:
                    parts.append(f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                                 f"<td>{'yes' if p.get('required') else 'no'}</td>"
                                 f"<td><code>{e(json.dumps(p['schema']))}</code></td></tr>")
                parts.append("</table>")
            if "requestBody" in op:
                body = op["requestBody"]["content"][JSON]["schema"]
                parts.append(f"<p>Body:</p><pre>{e(_schema_text(body))}</pre>")
            parts.append("<ul>")
            for status, resp in op["responses"].items():
                content = resp.get("content", {})
                kinds = ", ".join(content)
                schema = next(iter(content.values()), {}).get("schema") if content else None
                ref = schema.get("$ref", "") if isinstance(schema, dict) else ""
                target = ref.rsplit("/", 1)[-1]
                link = f" <a href=\"#schema-{e(target)}\">{e(target)}</a>" if target else ""
                parts.append(f"<li>{e(status)}: {e(resp['description'])} {e(kinds)}{link}</li>")
            parts.append("</ul>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(f"<h3 id=\"schema-{e(name)}\">{e(name)}</h3>"
                     f"<pre>{e(_schema_text(schema))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


# Routes are fixed once the app runs: the document is built once, on first use, into this
# holder (the running app itself must not be changed).
DOCUMENT_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document", dict)


def _document(app: web.Application) -> dict[str, Any]:
    holder = app[DOCUMENT_KEY]
    if "doc" not in holder:
        holder["doc"] = build_document(app)
    return holder["doc"]


@public
async def get_openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: the OpenAPI 3.1 document."""
    return web.json_response(_document(request.app))


@public
async def get_docs(request: web.Request) -> web.Response:
    """GET /api/docs: the document as a static HTML page."""
    return web.Response(text=render_docs(_document(request.app)), content_type=HTML,
                        headers={"Content-Security-Policy": "default-src 'none'"})


def setup(app: web.Application) -> None:
    if OPERATIONS_KEY not in app:
        app[OPERATIONS_KEY] = []
    app[DOCUMENT_KEY] = {}
    app.router.add_get(OPENAPI_PATH, get_openapi)
    app.router.add_get(DOCS_PATH, get_docs)
