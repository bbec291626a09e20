/**
 * The client against the real server (a `rating_service serve` process on a
 * fresh SQLite file): record, replay, quote, consume, and errors with their
 * reasons.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  LedgerEntryKind,
  moneyToDecimal,
  NotFoundError,
  OutcomeState,
  RatingClient,
  RatingError,
  decimalToMoney,
  type RecordOutcomeResponse,
} from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";

let server: RunningServer;
let client: RatingClient;

before(async () => {
  server = await startServer();
  client = new RatingClient(server.address);
  await client.putRateCard({
    rateCardId: "standard",
    currencyCode: "USD",
    prices: [{ outcomeType: "resolution", unitPrice: decimalToMoney("0.99", "USD") }],
  });
  await client.putCustomer({ customerId: "acme", rateCardId: "standard" });
  await client.createBucket({
    customerId: "acme",
    bucketId: "acme-2026",
    outcomeType: "resolution",
    size: { case: "quantity", value: 2n },
  });
});

after(async () => {
  client?.close();
  await server?.stop();
});

/** The RatingError `promise` rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<RatingError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RatingError, `not a RatingError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("recording", () => {
  it("records an outcome once and answers a retry with the original answer, replayed", async () => {
    const request = { customerId: "acme", outcomeId: "conv-1", outcomeType: "resolution" };
    const first = await client.recordOutcome(request);
    const again = await client.recordOutcome(request);

    assert.equal(first.replayed, false);
    assert.equal(first.state, OutcomeState.SETTLED);
    assert.equal(first.unitsFromBuckets, 1n);
    assert.equal(first.bucketId, "acme-2026");
    assert.equal(moneyToDecimal(first.charged!), "0");
    assert.equal(again.replayed, true);
    assert.equal(again.ledgerSequence, first.ledgerSequence);
  });

  it("charges the unit price once the bucket is empty", async () => {
    await client.recordOutcome({ customerId: "acme", outcomeId: "conv-2", outcomeType: "resolution" });
    const charged = await client.recordOutcome({
      customerId: "acme",
      outcomeId: "conv-3",
      outcomeType: "resolution",
    });

    assert.equal(charged.unitsFromBuckets, 0n);
    assert.equal(moneyToDecimal(charged.charged!), "0.99");
    assert.equal(charged.charged!.currencyCode, "USD");
  });

  it("records a batch: each item's result or error, in order", async () => {
    const results = await client.recordOutcomes([
      { customerId: "acme", outcomeId: "batch-1", outcomeType: "resolution" },
      { customerId: "nobody", outcomeId: "batch-2", outcomeType: "resolution" },
      { customerId: "acme", outcomeId: "batch-3", outcomeType: "no-such-type" },
    ]);

    assert.equal(results.length, 3);
    assert.equal((results[0] as RecordOutcomeResponse).replayed, false);
    assert.ok(results[1] instanceof NotFoundError);
    assert.equal(results[1].reason, "CUSTOMER_NOT_FOUND");
    assert.ok(results[2] instanceof FailedPreconditionError);
    assert.equal(results[2].reason, "NO_PRICE");
  });

  it("reverses a settled outcome and gives its charge back", async () => {
    const reversal = await client.reverseOutcome({
      customerId: "acme",
      outcomeId: "conv-3",
      reason: "conversation_reopened",
    });

    assert.equal(reversal.state, OutcomeState.REVERSED);
    assert.equal(moneyToDecimal(reversal.refunded!), "0.99");
  });
});

describe("quoting and consuming", () => {
  it("quotes ten more outcomes at the unit price without writing anything", async () => {
    const before = await client.getBalance({ customerId: "acme" });
    const quote = await client.quoteCost({ customerId: "acme", outcomeType: "resolution", quantity: 10n });
    const after = await client.getBalance({ customerId: "acme" });

    assert.equal(quote.unitsCovered, 0n);
    assert.equal(quote.unitsBillable, 10n);
    assert.equal(moneyToDecimal(quote.total!), "9.9");
    assert.equal(after.ledgerSequence, before.ledgerSequence);
  });

  it("consumes units all or nothing and says why when too few are left", async () => {
    await client.createBucket({
      customerId: "acme",
      bucketId: "acme-redeem",
      outcomeType: "redeem",
      size: { case: "quantity", value: 3n },
      unitPrice: decimalToMoney("1", "USD"),
    });
    const consumed = await client.consumeBucket({
      customerId: "acme",
      requestId: "redeem-1",
      bucketId: "acme-redeem",
      quantity: 2n,
    });
    const error = await failure(
      client.consumeBucket({ customerId: "acme", requestId: "redeem-2", bucketId: "acme-redeem", quantity: 5n }),
    );

    assert.equal(consumed.consumed, 2n);
    assert.deepEqual(
      consumed.lines.map((line) => [line.bucketId, line.units, line.remaining]),
      [["acme-redeem", 2n, 1n]],
    );
    assert.ok(error instanceof FailedPreconditionError);
    assert.equal(error.reason, "INSUFFICIENT_UNITS");
    assert.equal(error.codeName, "FAILED_PRECONDITION");
  });
});

describe("errors carry ErrorInfo.reason", () => {
  it("an unknown customer is NOT_FOUND with reason CUSTOMER_NOT_FOUND", async () => {
    const error = await failure(client.getBalance({ customerId: "nobody" }));

    assert.ok(error instanceof NotFoundError);
    assert.equal(error.reason, "CUSTOMER_NOT_FOUND");
    assert.match(error.message, /^NOT_FOUND CUSTOMER_NOT_FOUND: /);
  });

  it("a malformed field is INVALID_ARGUMENT and BadRequest names the field", async () => {
    const error = await failure(
      client.recordOutcome({ customerId: "acme", outcomeId: "bad id!", outcomeType: "resolution" }),
    );

    assert.ok(error instanceof InvalidArgumentError);
    assert.equal(error.reason, "INVALID_FIELD");
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["outcome_id"],
    );
  });

  it("an idempotency key reused with another payload is IDEMPOTENCY_KEY_REUSED", async () => {
    const error = await failure(
      client.recordOutcome({
        customerId: "acme",
        outcomeId: "conv-1",
        outcomeType: "resolution",
        state: OutcomeState.PENDING,
      }),
    );

    assert.ok(error instanceof AlreadyExistsError);
    assert.equal(error.reason, "IDEMPOTENCY_KEY_REUSED");
  });
});

describe("reading the ledger", () => {
  it("walks every page in sequence order, one entry per outcome recorded", async () => {
    const entries = [];
    for await (const entry of client.iterLedgerEntries({ customerId: "acme", pageSize: 2 })) {
      entries.push(entry);
    }
    const balance = await client.getBalance({ customerId: "acme" });

    assert.deepEqual(
      entries.map((entry) => entry.sequence),
      entries.map((_, index) => BigInt(index + 1)),
    );
    assert.equal(entries.at(-1)?.sequence, balance.ledgerSequence);
    const rated = entries.filter((e) => e.kind === LedgerEntryKind.OUTCOME_RATED).map((e) => e.outcomeId);
    assert.deepEqual(rated, ["conv-1", "conv-2", "conv-3", "batch-1"]);
  });
});

describe("explaining and billing", () => {
  it("explains an outcome from its entries, and bills and re-prices the month as the ledger does", async () => {
    const explained = await client.explainOutcome({ customerId: "acme", outcomeId: "conv-1" });
    const invoice = await client.previewInvoice({ customerId: "acme" });
    const balance = await client.getBalance({ customerId: "acme" });
    const unitPrice = explained.unitPrice;
    assert.ok(unitPrice);
    const simulation = await client.simulateRateCard({
      customers: { case: "customerList", value: { customerIds: ["acme"] } },
      currencyCode: unitPrice.currencyCode,
      prices: [{ outcomeType: explained.outcomeType, unitPrice }],
    });

    assert.deepEqual(
      explained.entries.map((e) => e.outcomeId),
      explained.entries.map(() => "conv-1"),
    );
    assert.deepEqual(invoice.total, balance.periodCharged);
    assert.deepEqual(simulation.actualTotal, balance.periodCharged);
    assert.equal(simulation.differenceTotal?.units, 0n);
    assert.equal(simulation.differenceTotal?.nanos, 0);
  });
});
