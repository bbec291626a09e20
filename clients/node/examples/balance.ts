/**
 * Print a customer's balance as one line of JSON.
 *
 *     node dist/examples/balance.js <host:port> <customer_id>
 *
 * Money is printed as exact decimal strings, counts as numbers.
 */

import { moneyToDecimal, RatingClient, RatingError } from "../src/index.js";

async function main(argv: string[]): Promise<number> {
  const [target, customerId] = argv;
  if (target === undefined || customerId === undefined) {
    console.error("usage: balance.js <host:port> <customer_id>");
    return 2;
  }
  const client = new RatingClient(target);
  try {
    const balance = await client.getBalance({ customerId });
    console.log(
      JSON.stringify({
        customer_id: customerId,
        ledger_sequence: Number(balance.ledgerSequence),
        period_outcomes: Number(balance.periodOutcomes),
        period_charged: balance.periodCharged ? moneyToDecimal(balance.periodCharged) : "0",
        currency_code: balance.periodCharged?.currencyCode ?? "",
        pending_outcomes: Number(balance.pendingOutcomes),
        pending_charge: balance.pendingCharge ? moneyToDecimal(balance.pendingCharge) : "0",
        buckets: balance.buckets.map((bucket) => ({
          bucket_id: bucket.bucketId,
          remaining: Number(bucket.remaining),
          held: Number(bucket.held),
        })),
      }),
    );
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
