"""Stripe's bracket notation for form-encoded v1 parameters, decoded.

v1 requests carry nested parameters as ``application/x-www-form-urlencoded``
keys with brackets, and generic OpenAPI validators do not read them (see
``openapi/README.md``). This module turns them into the nested value they
stand for, with every leaf still a string:

- ``a[b][c]=x`` -> ``{"a": {"b": {"c": "x"}}}``
- ``a[]=x&a[]=y`` -> ``{"a": ["x", "y"]}``
- ``a[][id]=x&a[][id]=y`` -> ``{"a": [{"id": "x"}, {"id": "y"}]}`` (a new
  element starts when the last one already has the key)
- ``a[0][b]=x&a[1][b]=y`` -> ``{"a": {"0": {"b": "x"}, "1": {"b": "y"}}}``:
  an index is kept as an object key, because only the schema knows whether
  ``metadata[0]`` is a map key or a list position; :mod:`._spec` turns
  digit-keyed objects into lists where the schema says array (the stripe SDK
  always sends lists this way).

Scalars become the schema's types later, in :mod:`._spec`. A key repeated
without brackets keeps its last value. A key that is both a value and a
container (``a=1&a[b]=2``) is refused with ``param`` naming it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from ._errors import StripeError, invalid

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

Node = dict[str, Any] | list[Any]


def decode_form(encoded: str) -> dict[str, Any]:
    """Decode a form-encoded body or query string into nested dicts and lists of strings."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        match = _KEY.fullmatch(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", param=key)
        segments = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _put(root, segments, value, key)
    return root


def _put(node: Node, segments: list[str], value: str, key: str) -> None:
    segment, rest = segments[0], segments[1:]
    if isinstance(node, list):
        _put_in_list(node, rest, value, key)
        return
    if not rest:
        if isinstance(node.get(segment), dict | list):
            raise _conflict(key)
        node[segment] = value
        return
    wants_list = rest[0] == ""
    child = node.setdefault(segment, [] if wants_list else {})
    if isinstance(child, str) or wants_list != isinstance(child, list):
        raise _conflict(key)
    _put(child, rest, value, key)


def _put_in_list(items: list[Any], rest: list[str], value: str, key: str) -> None:
    """``[]`` appends; ``[][k]`` fills the last element unless it already has ``k``."""
    if not rest:
        items.append(value)
        return
    if rest[0] == "":
        raise invalid(f"Invalid array: {key} (nested [] are not supported)", param=key)
    last = items[-1] if items else None
    if not isinstance(last, dict) or rest[0] in last:
        last = {}
        items.append(last)
    _put(last, rest, value, key)


def _conflict(key: str) -> StripeError:
    return invalid(f"Invalid parameter: {key} is given both as a value and as a hash", param=key)
