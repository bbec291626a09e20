/**
 * Exact conversions between decimal strings and `google.type.Money`.
 *
 * JavaScript numbers are binary floats, so amounts travel as decimal strings
 * (`"0.99"`, `"-1.75"`) and are converted with integer (bigint) arithmetic
 * only, never through a float. `google.type.Money` splits an amount into
 * whole `units` and `nanos` (billionths) of the same sign: USD 0.99 is
 * `units=0, nanos=990000000` and USD -1.75 is `units=-1, nanos=-750000000`.
 * The rules are those of the Python client (rating_client._money).
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";

import { MoneySchema, type Money } from "./gen/google/type/money_pb.js";

/** Money has nanos, so an amount carries at most this many decimal places. */
export const MAX_DECIMAL_PLACES = 9;

const NANOS_PER_UNIT = 1_000_000_000n;
const INT64_MAX = 2n ** 63n - 1n;
const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

/**
 * Return `amount` (a decimal string such as `"0.99"`) as a Money message, exactly.
 *
 * Trailing zeros beyond 9 places are harmless (`"1.5000000000"` is 1.5); any
 * non-zero digit beyond them throws a RangeError rather than being rounded
 * away, and so does an amount whose units do not fit in an int64. Anything
 * but plain decimal notation (exponents, `NaN`, `1,5`) throws a SyntaxError.
 */
export function decimalToMoney(amount: string, currencyCode: string): Money {
  const match = DECIMAL.exec(amount);
  if (match === null) {
    throw new SyntaxError(`amount ${JSON.stringify(amount)} is not a plain decimal number`);
  }
  const [, sign = "", whole = "0", fraction = ""] = match;
  const significant = fraction.replace(/0+$/, "");
  if (significant.length > MAX_DECIMAL_PLACES) {
    throw new RangeError(`amount ${amount} has more than ${MAX_DECIMAL_PLACES} decimal places`);
  }
  const units = BigInt(whole);
  if (units > INT64_MAX) {
    throw new RangeError(`amount ${amount} is too large for google.type.Money`);
  }
  const nanos = Number(significant.padEnd(MAX_DECIMAL_PLACES, "0"));
  const negative = sign === "-";
  return create(MoneySchema, {
    currencyCode,
    units: negative ? -units : units,
    nanos: negative && nanos !== 0 ? -nanos : nanos,
  });
}

/**
 * Return the amount of `money` as a decimal string, exactly.
 *
 * The result has no trailing zeros after the point (`"1.5"`, not
 * `"1.500000000"`) and no exponent (`"100"`). A malformed message (nanos out
 * of range, or units and nanos of opposite signs) throws a RangeError:
 * guessing what it meant could move money.
 */
export function moneyToDecimal(money: Money): string {
  const units = BigInt(money.units);
  const nanos = BigInt(money.nanos);
  if (nanos <= -NANOS_PER_UNIT || nanos >= NANOS_PER_UNIT) {
    throw new RangeError(`nanos ${nanos} is out of range (-999999999 to 999999999)`);
  }
  if ((units > 0n && nanos < 0n) || (units < 0n && nanos > 0n)) {
    throw new RangeError(`units ${units} and nanos ${nanos} have opposite signs`);
  }
  const total = units * NANOS_PER_UNIT + nanos;
  const magnitude = total < 0n ? -total : total;
  const whole = (magnitude / NANOS_PER_UNIT).toString();
  const fraction = (magnitude % NANOS_PER_UNIT)
    .toString()
    .padStart(MAX_DECIMAL_PLACES, "0")
    .replace(/0+$/, "");
  return `${total < 0n ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}
