/** How failures become RatingErrors: the class by code, the reason by ErrorInfo. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

import {
  errorFromConnectError,
  errorFromStatus,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  UnexpectedError,
} from "../src/index.js";
import { BadRequestSchema, ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../src/gen/google/rpc/status_pb.js";

describe("errorFromStatus", () => {
  it("unpacks ErrorInfo and BadRequest from a google.rpc.Status", () => {
    const status = create(StatusSchema, {
      code: Code.InvalidArgument,
      message: "outcome_id is malformed",
      details: [
        anyPack(BadRequestSchema, create(BadRequestSchema, {
          fieldViolations: [{ field: "outcome_id", description: "1 to 128 of A-Z a-z 0-9 _ . : -" }],
        })),
        anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "INVALID_FIELD", metadata: { field: "outcome_id" } })),
      ],
    });

    const error = errorFromStatus(status);

    assert.ok(error instanceof InvalidArgumentError);
    assert.equal(error.reason, "INVALID_FIELD");
    assert.deepEqual(error.metadata, { field: "outcome_id" });
    assert.deepEqual(error.fieldViolations, [
      { field: "outcome_id", description: "1 to 128 of A-Z a-z 0-9 _ . : -" },
    ]);
    assert.equal(
      error.message,
      "INVALID_ARGUMENT INVALID_FIELD: outcome_id is malformed (outcome_id: 1 to 128 of A-Z a-z 0-9 _ . : -)",
    );
    assert.equal(error.name, "InvalidArgumentError");
  });

  it("keeps the first ErrorInfo when there are several", () => {
    const status = create(StatusSchema, {
      code: Code.NotFound,
      details: [
        anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "CUSTOMER_NOT_FOUND" })),
        anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "BUCKET_NOT_FOUND" })),
      ],
    });

    const error = errorFromStatus(status);

    assert.ok(error instanceof NotFoundError);
    assert.equal(error.reason, "CUSTOMER_NOT_FOUND");
  });

  it("maps codes the contract does not name, and unknown numbers, to UnexpectedError", () => {
    const internal = errorFromStatus(create(StatusSchema, { code: Code.Internal, message: "boom" }));
    const unknown = errorFromStatus(create(StatusSchema, { code: 99, message: "?" }));

    assert.ok(internal instanceof UnexpectedError);
    assert.equal(internal.codeName, "INTERNAL");
    assert.equal(internal.reason, "");
    assert.ok(unknown instanceof UnexpectedError);
    assert.equal(unknown.codeName, "UNKNOWN");
  });
});

describe("errorFromConnectError", () => {
  it("counts a connection reset under the call as UNAVAILABLE, as gRPC does", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    const error = errorFromConnectError(new ConnectError("aborted", Code.Aborted, undefined, undefined, reset));

    assert.ok(error instanceof UnavailableError);
    assert.equal(error.cause instanceof ConnectError, true);
  });

  it("leaves an ABORTED sent by a server as it is", () => {
    const error = errorFromConnectError(new ConnectError("try again later", Code.Aborted));

    assert.ok(error instanceof UnexpectedError);
    assert.equal(error.codeName, "ABORTED");
  });
});
