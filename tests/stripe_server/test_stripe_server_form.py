"""Stripe's bracket notation, decoded into nested values (leaves stay strings)."""

from __future__ import annotations

from typing import Any

import pytest

from rating_service.testing.stripe_server._errors import StripeError
from rating_service.testing.stripe_server._form import decode_form


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("a=1&b=x", {"a": "1", "b": "x"}),
        ("a[b][c]=x", {"a": {"b": {"c": "x"}}}),
        ("a[]=x&a[]=y", {"a": ["x", "y"]}),
        ("a[][id]=x&a[][id]=y", {"a": [{"id": "x"}, {"id": "y"}]}),
        ("a[][id]=x&a[][n]=1&a[][id]=y", {"a": [{"id": "x", "n": "1"}, {"id": "y"}]}),
        ("a[0][b]=x&a[1][b]=y", {"a": {"0": {"b": "x"}, "1": {"b": "y"}}}),
        ("metadata[note]=&a=1", {"metadata": {"note": ""}, "a": "1"}),
        ("a=1&a=2", {"a": "2"}),
        ("email=a%40b.c&name=A+B", {"email": "a@b.c", "name": "A B"}),
        ("", {}),
    ],
)
def test_bracket_keys_become_nested_values(encoded: str, decoded: dict[str, Any]) -> None:
    """Objects for named brackets, lists for empty ones, index objects for numbered ones."""
    assert decode_form(encoded) == decoded


@pytest.mark.parametrize(
    ("encoded", "param"),
    [("a=1&a[b]=2", "a[b]"), ("a[b]=2&a=1", "a"), ("a[0]=1&a[]=2", "a[]"), ("a[b=1", "a[b")],
)
def test_a_key_used_both_as_value_and_container_is_refused(encoded: str, param: str) -> None:
    """A 400 naming the key that does not fit."""
    with pytest.raises(StripeError) as raised:
        decode_form(encoded)

    assert (raised.value.status, raised.value.param) == (400, param)
