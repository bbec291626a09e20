"""The errors the server answers with, in Stripe's two shapes.

Every refusal is a :class:`StripeError` raised wherever the rule lives (the
form decoder, the spec validator, the state) and rendered once, by the HTTP
layer, in the shape of the API version that was called:

- v1: ``{"error": {"type", "message", "code"?, "param"?, "doc_url"?}}``
  (``components.schemas.error`` of the spec);
- v2: ``{"error": {"type", "code", "message", "param"?, "doc_url"?}}``
  (``components.schemas.v2.error``, where ``code`` is required).

The stripe SDK turns these into its exception classes by HTTP status and
``type`` (``InvalidRequestError``, ``AuthenticationError``,
``RateLimitError``, ``IdempotencyError``, ``APIError``,
``TemporarySessionExpiredError``...), so status, type and code are chosen to
land on the same class as Stripe's own answer would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

ApiVersion = Literal["v1", "v2"]
JsonObject = dict[str, Any]

DOCS = "https://docs.stripe.com/error-codes/"


class StripeError(Exception):
    """A refusal: an HTTP status, a Stripe error type, and what a program can branch on."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def body(self, api: ApiVersion) -> JsonObject:
        """The JSON body, in the v1 or the v2 error shape."""
        code = self.code if self.code is not None or api == "v1" else self.type
        error: JsonObject = {"type": self.type, "message": self.message}
        if code is not None:
            error["code"] = code
            error["doc_url"] = DOCS + code.replace("_", "-")
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    """A 400 ``invalid_request_error``: the request cannot succeed as it is."""
    return StripeError(400, message, param=param, code=code)


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    """``resource_missing``: 404 for the object a path names, 400 for one a parameter names."""
    return StripeError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )
