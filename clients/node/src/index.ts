/**
 * TypeScript client of rating.v1.RatingService.
 *
 * `RatingClient` is the hand-written layer (deadlines, retries on
 * UNAVAILABLE, errors by `ErrorInfo.reason`); the generated messages, enums
 * and service descriptor of `protos/rating/v1/rating.proto` are re-exported
 * as they are, and so is `google.type.Money` with exact decimal conversions.
 *
 * @module
 */

export {
  RatingClient,
  type CallOptions,
  type RatingClientOptions,
  type Request,
  type TlsOptions,
} from "./client.js";
export {
  AlreadyExistsError,
  DeadlineExceededError,
  errorFromConnectError,
  errorFromStatus,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  RatingError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnexpectedError,
  type FieldViolation,
} from "./errors.js";
export { decimalToMoney, MAX_DECIMAL_PLACES, moneyToDecimal } from "./money.js";
export { MoneySchema, type Money } from "./gen/google/type/money_pb.js";
export * from "./gen/rating/v1/rating_pb.js";
