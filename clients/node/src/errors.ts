/**
 * Errors thrown by the rating client, one class per family of gRPC code,
 * as in the Python client (rating_client._errors):
 *
 *     RatingError                      (any failed call; branch on .reason)
 *      ├── InvalidArgumentError        INVALID_ARGUMENT
 *      ├── NotFoundError               NOT_FOUND
 *      ├── AlreadyExistsError          ALREADY_EXISTS
 *      ├── FailedPreconditionError     FAILED_PRECONDITION
 *      ├── ResourceExhaustedError      RESOURCE_EXHAUSTED
 *      ├── UnauthenticatedError        UNAUTHENTICATED
 *      ├── PermissionDeniedError       PERMISSION_DENIED
 *      ├── UnavailableError            UNAVAILABLE (thrown once retries are spent)
 *      ├── DeadlineExceededError       DEADLINE_EXCEEDED
 *      └── UnexpectedError             any other code (INTERNAL, UNKNOWN, CANCELLED, ...)
 *
 * The class says what kind of failure it is; `reason` (from the
 * `google.rpc.ErrorInfo` the server attaches, e.g. `CUSTOMER_NOT_FOUND`)
 * says exactly which one, so programs can branch on it.
 *
 * @module
 */

import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
  type BadRequest,
  type ErrorInfo,
  type RetryInfo,
} from "./gen/google/rpc/error_details_pb.js";
import type { Status } from "./gen/google/rpc/status_pb.js";

/** One `google.rpc.BadRequest` field violation: which field, and what is wrong with it. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** The gRPC name of each code (`NOT_FOUND`), as the Python client prints it. */
const CODE_NAMES: Readonly<Record<Code, string>> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** A call to the rating service failed; `reason` says why. */
export class RatingError extends Error {
  /** The gRPC status code (the numbers of connect's `Code` are gRPC's). */
  readonly code: Code;
  /** `ErrorInfo.reason`, e.g. `NO_PRICE`; empty when the server sent none. */
  readonly reason: string;
  /** `ErrorInfo.metadata`: the dynamic values of the failure. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The fields named by `google.rpc.BadRequest`, for INVALID_ARGUMENT. */
  readonly fieldViolations: readonly FieldViolation[];
  /** The human-readable status message, as the server sent it. */
  readonly rawMessage: string;
  /**
   * Milliseconds the server asks to wait before trying again (`google.rpc.RetryInfo`, e.g.
   * with `RATE_LIMITED`); undefined when it sent none.
   */
  readonly retryDelayMs: number | undefined;

  constructor(
    code: Code,
    rawMessage: string,
    details: {
      reason?: string;
      metadata?: Record<string, string>;
      fieldViolations?: FieldViolation[];
      retryDelayMs?: number;
      cause?: unknown;
    } = {},
  ) {
    const reason = details.reason ?? "";
    const violations = details.fieldViolations ?? [];
    super(describe(code, reason, rawMessage, violations), { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.reason = reason;
    this.metadata = { ...details.metadata };
    this.fieldViolations = [...violations];
    this.rawMessage = rawMessage;
    this.retryDelayMs = details.retryDelayMs;
  }

  /** The gRPC name of `code`, e.g. `FAILED_PRECONDITION`. */
  get codeName(): string {
    return CODE_NAMES[this.code] ?? `CODE_${this.code}`;
  }
}

/** The request is malformed; `fieldViolations` name the fields. */
export class InvalidArgumentError extends RatingError {}
/** The customer, bucket or outcome named does not exist. */
export class NotFoundError extends RatingError {}
/** An idempotency key was reused with a different payload. */
export class AlreadyExistsError extends RatingError {}
/** The state must change first (a price, units, an active bucket). */
export class FailedPreconditionError extends RatingError {}
/** The server shed load; slow down before trying again. */
export class ResourceExhaustedError extends RatingError {}
/** Credentials are missing or wrong. */
export class UnauthenticatedError extends RatingError {}
/** The credentials do not allow this call. */
export class PermissionDeniedError extends RatingError {}
/** The server could not be reached, even after retrying. */
export class UnavailableError extends RatingError {}
/** The deadline passed; a write may have happened, and retrying it is safe. */
export class DeadlineExceededError extends RatingError {}
/** A code the contract does not name for this service (INTERNAL, ...). */
export class UnexpectedError extends RatingError {}

type ErrorClass = new (...args: ConstructorParameters<typeof RatingError>) => RatingError;

const CLASS_BY_CODE: ReadonlyMap<Code, ErrorClass> = new Map<Code, ErrorClass>([
  [Code.InvalidArgument, InvalidArgumentError],
  [Code.NotFound, NotFoundError],
  [Code.AlreadyExists, AlreadyExistsError],
  [Code.FailedPrecondition, FailedPreconditionError],
  [Code.ResourceExhausted, ResourceExhaustedError],
  [Code.Unauthenticated, UnauthenticatedError],
  [Code.PermissionDenied, PermissionDeniedError],
  [Code.Unavailable, UnavailableError],
  [Code.DeadlineExceeded, DeadlineExceededError],
]);

/**
 * Socket failures that connect-node reports as ABORTED but gRPC's own
 * libraries (and so the Python client) report as UNAVAILABLE: the
 * connection died under the call, which is safe to send again.
 */
const CONNECTION_LOST = new Set(["ECONNRESET", "EPIPE"]);

/** Return the RatingError for a failed call, with its rich status details. */
export function errorFromConnectError(error: ConnectError): RatingError {
  const code =
    error.code === Code.Aborted && causes(error).some((c) => CONNECTION_LOST.has(c))
      ? Code.Unavailable
      : error.code;
  return build(
    code,
    error.rawMessage,
    error.findDetails(ErrorInfoSchema),
    error.findDetails(BadRequestSchema),
    error.findDetails(RetryInfoSchema),
    error,
  );
}

/** Return the RatingError for a `google.rpc.Status`, e.g. one RecordOutcomes item. */
export function errorFromStatus(status: Status): RatingError {
  const code = status.code in CODE_NAMES ? (status.code as Code) : Code.Unknown;
  return build(
    code,
    status.message,
    unpackAll(status, ErrorInfoSchema),
    unpackAll(status, BadRequestSchema),
    unpackAll(status, RetryInfoSchema),
  );
}

/** Pick the class for `code`; the first ErrorInfo wins (the contract sends exactly one). */
function build(
  code: Code,
  message: string,
  infos: ErrorInfo[],
  badRequests: BadRequest[],
  retries: RetryInfo[],
  cause?: unknown,
): RatingError {
  const info = infos[0];
  const delay = retries[0]?.retryDelay;
  const retryDelayMs =
    delay === undefined ? undefined : Number(delay.seconds) * 1000 + delay.nanos / 1e6;
  const fieldViolations = badRequests.flatMap((bad) =>
    bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
  );
  const ErrorType = CLASS_BY_CODE.get(code) ?? UnexpectedError;
  return new ErrorType(code, message, {
    reason: info?.reason ?? "",
    metadata: info?.metadata ?? {},
    fieldViolations,
    retryDelayMs,
    cause,
  });
}

function unpackAll<Desc extends DescMessage>(status: Status, schema: Desc): MessageShape<Desc>[] {
  return status.details.flatMap((detail) => anyUnpack(detail, schema) ?? []);
}

/** The Node.js error codes (`ECONNRESET`, ...) along the chain of causes. */
function causes(error: unknown): string[] {
  const found: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") found.push(code);
  }
  return found;
}

function describe(
  code: Code,
  reason: string,
  message: string,
  violations: readonly FieldViolation[],
): string {
  const name = CODE_NAMES[code] ?? `CODE_${code}`;
  let text = `${reason ? `${name} ${reason}` : name}: ${message}`;
  if (violations.length > 0) {
    text += ` (${violations.map((v) => `${v.field}: ${v.description}`).join("; ")})`;
  }
  return text;
}
