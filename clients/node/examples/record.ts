/**
 * Record outcomes for one customer and print each answer as a line of JSON.
 *
 *     node dist/examples/record.js <host:port> <customer_id> <outcome_type> <outcome_id>...
 *
 * With `RATING_TOKEN` set, its calls carry that token (a server with a tokens file).
 * Every outcome id is an idempotency key: run it twice and the second run's
 * answers say `"replayed": true` while the ledger does not change. A failure
 * prints its gRPC code and `ErrorInfo.reason` and exits 1.
 */

import { moneyToDecimal, RatingClient, RatingError } from "../src/index.js";

async function main(argv: string[]): Promise<number> {
  const [target, customerId, outcomeType, ...outcomeIds] = argv;
  if (target === undefined || customerId === undefined || outcomeType === undefined) {
    console.error("usage: record.js <host:port> <customer_id> <outcome_type> <outcome_id>...");
    return 2;
  }
  const client = new RatingClient(target, { token: process.env.RATING_TOKEN || undefined });
  try {
    for (const outcomeId of outcomeIds) {
      const recorded = await client.recordOutcome({ customerId, outcomeId, outcomeType });
      console.log(
        JSON.stringify({
          outcome_id: outcomeId,
          ledger_sequence: Number(recorded.ledgerSequence),
          units_from_buckets: Number(recorded.unitsFromBuckets),
          charged: recorded.charged ? moneyToDecimal(recorded.charged) : "0",
          currency_code: recorded.charged?.currencyCode ?? "",
          replayed: recorded.replayed,
        }),
      );
    }
    return 0;
  } catch (error) {
    if (!(error instanceof RatingError)) throw error;
    console.log(JSON.stringify({ error: error.codeName, reason: error.reason, message: error.rawMessage }));
    return 1;
  } finally {
    client.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
