/**
 * UNAVAILABLE from a real socket: nothing listens on the port (yet).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { RatingClient, RatingError, UnavailableError, decimalToMoney } from "../src/index.js";
import { freePort, spawnServer, waitUntilServing } from "./support/server.js";

const RATE_CARD = {
  rateCardId: "standard",
  currencyCode: "USD",
  prices: [{ outcomeType: "resolution", unitPrice: decimalToMoney("0.99", "USD") }],
};

describe("when the server is not there", () => {
  it("fails with UnavailableError once the attempts are spent", async () => {
    const client = new RatingClient(`127.0.0.1:${await freePort()}`, { maxAttempts: 3 });
    try {
      await assert.rejects(client.putRateCard(RATE_CARD), (error: unknown) => {
        assert.ok(error instanceof UnavailableError);
        assert.equal((error as RatingError).codeName, "UNAVAILABLE");
        return true;
      });
    } finally {
      client.close();
    }
  });

  it("retries a call sent before the server listens until it is answered, written once", async () => {
    const port = await freePort();
    const client = new RatingClient(`127.0.0.1:${port}`, {
      timeoutMs: 60_000,
      maxAttempts: 10_000,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
    });
    const early = client.putRateCard(RATE_CARD);
    early.catch(() => undefined); // awaited below; this only keeps a failed start from being "unhandled"
    await sleep(300);
    const server = await spawnServer(port);
    try {
      const first = await early;
      await waitUntilServing(server);
      const again = await client.putRateCard(RATE_CARD);

      assert.equal(first.replayed, false);
      assert.equal(again.replayed, true);
    } finally {
      client.close();
      await server.stop();
    }
  });
});
