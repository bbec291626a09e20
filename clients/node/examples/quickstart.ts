// Record an outcome, send it again safely, branch on an error's reason, read the balance.
import { decimalToMoney, moneyToDecimal, NotFoundError, RatingClient } from "../src/index.js";

const rating = new RatingClient(process.argv[2] ?? "127.0.0.1:50051", { timeoutMs: 5_000 });
try {
  await rating.putRateCard({
    rateCardId: "standard",
    currencyCode: "USD",
    prices: [{ outcomeType: "resolution", unitPrice: decimalToMoney("0.99", "USD") }],
  });
  await rating.putCustomer({ customerId: "acme", rateCardId: "standard" });

  // outcomeId is the idempotency key: sending it again is a replay, never a second charge.
  for (let send = 1; send <= 2; send += 1) {
    const recorded = await rating.recordOutcome({
      customerId: "acme",
      outcomeId: "conv-42",
      outcomeType: "resolution",
    });
    const charged = recorded.charged!;
    console.log(
      `sequence ${recorded.ledgerSequence}, charged ${moneyToDecimal(charged)} ` +
        `${charged.currencyCode}, replayed ${recorded.replayed}`,
    );
  }

  try {
    await rating.getBalance({ customerId: "nobody" });
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    console.log(`unknown customer: ${error.reason}`);
  }

  const balance = await rating.getBalance({ customerId: "acme" });
  const charged = balance.periodCharged!;
  console.log(
    `this month: ${balance.periodOutcomes} outcome(s), ` +
      `${moneyToDecimal(charged)} ${charged.currencyCode} charged`,
  );
} finally {
  rating.close();
}
