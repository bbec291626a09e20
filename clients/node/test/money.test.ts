/** Exact conversions between decimal strings and google.type.Money. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create } from "@bufbuild/protobuf";

import { decimalToMoney, MoneySchema, moneyToDecimal } from "../src/index.js";

describe("decimalToMoney", () => {
  it("splits an amount into units and nanos of the same sign", () => {
    const cases: [string, bigint, number][] = [
      ["0.99", 0n, 990_000_000],
      ["-1.75", -1n, -750_000_000],
      ["12", 12n, 0],
      ["-0.000000001", 0n, -1],
      ["+3.5", 3n, 500_000_000],
      ["1.5000000000000", 1n, 500_000_000],
      ["9223372036854775807.999999999", 9223372036854775807n, 999_999_999],
    ];
    for (const [amount, units, nanos] of cases) {
      const money = decimalToMoney(amount, "USD");
      assert.deepEqual([money.units, money.nanos, money.currencyCode], [units, nanos, "USD"], amount);
    }
  });

  it("refuses to round, overflow or guess", () => {
    assert.throws(() => decimalToMoney("0.0000000001", "USD"), RangeError);
    assert.throws(() => decimalToMoney("9223372036854775808", "USD"), RangeError);
    for (const amount of ["", "1e3", "NaN", "1,5", ".5", "1.", " 1"]) {
      assert.throws(() => decimalToMoney(amount, "USD"), SyntaxError, amount);
    }
  });
});

describe("moneyToDecimal", () => {
  it("prints the exact amount without trailing zeros or exponent", () => {
    const cases: [bigint, number, string][] = [
      [0n, 990_000_000, "0.99"],
      [-1n, -750_000_000, "-1.75"],
      [100n, 0, "100"],
      [0n, 0, "0"],
      [0n, -1, "-0.000000001"],
    ];
    for (const [units, nanos, expected] of cases) {
      assert.equal(moneyToDecimal(create(MoneySchema, { units, nanos })), expected);
    }
  });

  it("round-trips every amount it prints", () => {
    for (const amount of ["0.99", "-1.75", "100", "0", "123456789.123456789"]) {
      assert.equal(moneyToDecimal(decimalToMoney(amount, "EUR")), amount);
    }
  });

  it("rejects malformed messages", () => {
    assert.throws(() => moneyToDecimal(create(MoneySchema, { units: 1n, nanos: -1 })), RangeError);
    assert.throws(() => moneyToDecimal(create(MoneySchema, { nanos: 1_000_000_000 })), RangeError);
  });
});
