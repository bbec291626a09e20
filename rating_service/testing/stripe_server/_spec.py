"""The spec subset as the server's contract: routing, type coercion, validation.

Everything a request may say is read from Stripe's published OpenAPI
description (``openapi/billing-subset.json``, vendored verbatim): a path and
method that the spec does not list is a 404, and the parameters of a listed
operation are checked against its schema before any state is touched.

How a request becomes a value to validate:

- v1 bodies (and every GET's query string) are form-encoded in bracket
  notation: decoded by :mod:`._form`, then each string leaf is converted to
  the type its schema declares (integer, number, boolean; digit-keyed
  objects to arrays), trying ``anyOf`` alternatives in order;
- v2 bodies are JSON and are validated as they are;
- a GET's query parameters are gathered into one object schema built from
  the operation's ``parameters`` (``in: query``).

The OpenAPI 3.0 schemas are translated to JSON Schema once, at load:
``nullable`` becomes a ``null`` alternative, references point into one
registry, and request objects that list ``properties`` are closed
(``additionalProperties: false``). The spec marks only the top level of v1
bodies as closed, but Stripe refuses an unknown parameter at any depth
("Received unknown parameter: amount[monetary][foo]"), so the server does
too; maps such as ``metadata`` and ``payload`` declare
``additionalProperties`` and stay open.

A refusal names the parameter in bracket notation (``param``), with the code
Stripe uses where it documents one: ``parameter_unknown``,
``parameter_missing``, ``parameter_invalid_integer``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ._errors import ApiVersion, StripeError, invalid

_BASE = "urn:stripe-openapi"
_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_TYPE_NAMES = {"object": "hash", "array": "array", "string": "string", "boolean": "boolean"}


@dataclass(frozen=True)
class Operation:
    """One method of one path of the spec."""

    method: Literal["GET", "POST"]
    template: str
    operation_id: str
    api: ApiVersion
    params_schema: Mapping[str, Any]
    """The request body schema (POST) or the schema of the query parameters (GET)."""
    response_schema: Mapping[str, Any] | None
    """The schema of the 200 response, for checking what the server answers."""
    pattern: re.Pattern[str]


class Spec:
    """The loaded spec: routes requests and turns raw parameters into valid values."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        schemas = document["components"]["schemas"]
        self._components = {name: _translate(s, close=False) for name, s in schemas.items()}
        resource = Resource.from_contents(
            {"components": {"schemas": self._components}}, default_specification=DRAFT202012
        )
        self._registry: Registry[Any] = Registry().with_resource(_BASE, resource)
        self.operations = tuple(_operations(document))
        self._validators: dict[int, Draft202012Validator] = {}

    def route(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation a request is for and its path parameters, or None (a 404)."""
        for operation in self.operations:
            if operation.method == method:
                match = operation.pattern.fullmatch(path)
                if match is not None:
                    return operation, match.groupdict()
        return None

    def parameters(self, operation: Operation, raw: dict[str, Any]) -> dict[str, Any]:
        """Coerce (form-encoded input only) and validate; raise a 400 naming the parameter."""
        schema = operation.params_schema
        value = raw if operation.api == "v2" else self._coerce(raw, schema)
        error = _first(self.validator(schema).iter_errors(value))
        if error is not None:
            raise _refusal(error)
        result: dict[str, Any] = value
        return result

    def validator(self, schema: Mapping[str, Any]) -> Draft202012Validator:
        """A validator for a translated schema (cached; schemas live as long as the spec)."""
        found = self._validators.get(id(schema))
        if found is None:
            found = Draft202012Validator(schema, registry=self._registry)
            self._validators[id(schema)] = found
        return found

    def _coerce(self, value: Any, schema: Mapping[str, Any]) -> Any:
        schema = self._resolve(schema)
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                for alternative in schema[combinator]:
                    candidate = self._coerce(value, alternative)
                    if self.validator(alternative).is_valid(candidate):
                        return candidate
                return value
        kinds = _types(schema)
        if isinstance(value, str):
            return _scalar(value, kinds)
        if isinstance(value, dict):
            if "array" in kinds and value and all(k.isdigit() for k in value):
                items = schema.get("items", {})
                return [self._coerce(value[k], items) for k in sorted(value, key=int)]
            if "object" in kinds:
                properties = schema.get("properties", {})
                extra = schema.get("additionalProperties")
                fallback = extra if isinstance(extra, dict) else {}
                return {k: self._coerce(v, properties.get(k, fallback)) for k, v in value.items()}
        if isinstance(value, list) and "array" in kinds:
            return [self._coerce(item, schema.get("items", {})) for item in value]
        return value

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            schema = self._components[schema["$ref"].rsplit("/", 1)[1]]
        return schema


@cache
def load_spec() -> Spec:
    """The vendored spec subset, loaded once per process."""
    text = (files(__package__) / "openapi" / "billing-subset.json").read_text("utf-8")
    return Spec(json.loads(text))


def _operations(document: Mapping[str, Any]) -> Iterator[Operation]:
    for template, item in document["paths"].items():
        pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))
        for method, op in item.items():
            if method not in ("get", "post"):
                continue
            response = op["responses"].get("200", {}).get("content", {}).get("application/json")
            yield Operation(
                method="GET" if method == "get" else "POST",
                template=template,
                operation_id=op["operationId"],
                api="v2" if template.startswith("/v2/") else "v1",
                params_schema=_translate(_params_schema(method, op), close=True),
                response_schema=_translate(response["schema"], close=False) if response else None,
                pattern=pattern,
            )


def _params_schema(method: str, op: Mapping[str, Any]) -> Mapping[str, Any]:
    if method == "get":
        query = [p for p in op.get("parameters", []) if p["in"] == "query"]
        return {
            "type": "object",
            "properties": {p["name"]: p["schema"] for p in query},
            "required": [p["name"] for p in query if p.get("required")],
            "additionalProperties": False,
        }
    content = op.get("requestBody", {}).get("content", {})
    for media_type in ("application/x-www-form-urlencoded", "application/json"):
        if media_type in content:
            schema: Mapping[str, Any] = content[media_type]["schema"]
            return schema
    return {"type": "object", "additionalProperties": False}


def _translate(node: Any, *, close: bool) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (nullable, registry refs, closed request objects)."""
    if isinstance(node, list):
        return [_translate(item, close=close) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": _BASE + node["$ref"]}
    out = {k: _translate(v, close=close) for k, v in node.items() if k != "nullable"}
    if close and out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _types(schema: Mapping[str, Any]) -> list[str]:
    kinds = schema.get("type", [])
    return [kinds] if isinstance(kinds, str) else list(kinds)


def _scalar(value: str, kinds: list[str]) -> Any:
    if "integer" in kinds and _INTEGER.fullmatch(value):
        return int(value)
    if "number" in kinds and _NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    return value


def param_name(path: list[Any]) -> str | None:
    """``["amount", "monetary", "value"]`` -> ``"amount[monetary][value]"``."""
    if not path:
        return None
    return str(path[0]) + "".join(f"[{part}]" for part in path[1:])


_EMPTYABLE = {"type": "string", "enum": [""]}
"""Stripe's marker for "send an empty string to unset this": never the error worth reporting."""


def _first(errors: Iterable[ValidationError]) -> ValidationError | None:
    """One error, chosen the same way every time: the shallowest, then the first by path.

    Inside ``anyOf``/``oneOf``, the alternative that explains the failure is
    reported (``Invalid integer: abc`` rather than "must be empty").
    """
    chosen = min(errors, key=_position, default=None)
    while chosen is not None and chosen.validator in ("anyOf", "oneOf") and chosen.context:
        alternatives = [e for e in chosen.context if e.schema != _EMPTYABLE]
        if not alternatives:
            break
        chosen = min(alternatives, key=_position)
    return chosen


def _position(error: ValidationError) -> tuple[int, list[str]]:
    return len(error.absolute_path), [str(part) for part in error.absolute_path]


def _refusal(error: ValidationError) -> StripeError:
    """A jsonschema error as Stripe words it, with ``param`` and, where documented, ``code``."""
    path = list(error.absolute_path)
    instance, keyword = error.instance, error.validator
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    listed = error.validator_value if isinstance(error.validator_value, list) else []
    if keyword == "required" and isinstance(instance, dict):
        missing = next(str(r) for r in listed if r not in instance)
        return invalid(
            f"Missing required param: {param_name([*path, missing])}.",
            param=param_name([*path, missing]),
            code="parameter_missing",
        )
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = schema.get("properties", {})
        unknown = sorted(k for k in instance if k not in known)[0]
        name = param_name([*path, unknown])
        return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
    name = param_name(path)
    if keyword == "type":
        expected = _types(schema)
        if "integer" in expected:
            return invalid(
                f"Invalid integer: {instance}", param=name, code="parameter_invalid_integer"
            )
        kind = _TYPE_NAMES.get(expected[0], expected[0]) if expected else "value"
        return invalid(f"Invalid {kind}: {name}", param=name)
    if keyword == "enum":
        choices = ", ".join(str(c) for c in listed)
        return invalid(f"Invalid {name}: must be one of {choices}", param=name)
    if keyword == "maxLength":
        return invalid(
            f"Invalid {name}: must be at most {error.validator_value} characters", param=name
        )
    return invalid(f"Invalid {name}: {error.message}", param=name)
