/**
 * Retries and deadlines, against an in-memory fake of the service
 * (connect's router transport) that fails on cue and records what it got.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport, type HandlerContext } from "@connectrpc/connect";

import {
  DeadlineExceededError,
  FailedPreconditionError,
  RatingClient,
  RatingError,
  RatingService,
  RecordOutcomeRequestSchema,
  RecordOutcomeResponseSchema,
  UnavailableError,
  UnexpectedError,
  type RecordOutcomeRequest,
  type RecordOutcomeResponse,
} from "../src/index.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";

type Answer = (
  request: RecordOutcomeRequest,
  context: HandlerContext,
  attempt: number,
) => Promise<MessageInitShape<typeof RecordOutcomeResponseSchema>>;

/** A client whose RecordOutcome is `answer`; `received` lists every request that arrived. */
function fake(answer: Answer, options: ConstructorParameters<typeof RatingClient>[1] = {}) {
  const received: RecordOutcomeRequest[] = [];
  const deadlines: (number | undefined)[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(RatingService, {
      async recordOutcome(request, context) {
        received.push(request);
        deadlines.push(context.timeoutMs());
        return answer(request, context, received.length);
      },
    });
  });
  const client = new RatingClient("ignored:0", { initialBackoffMs: 1, maxBackoffMs: 5, ...options, transport });
  return { client, received, deadlines };
}

const unavailable = () => new ConnectError("the server is restarting", Code.Unavailable);

const REQUEST = { customerId: "acme", outcomeId: "conv-1", outcomeType: "resolution" };

async function failure(promise: Promise<unknown>): Promise<RatingError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RatingError, `not a RatingError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("retries", () => {
  it("sends the very same request again after UNAVAILABLE until it is answered", async () => {
    const { client, received } = fake(async (_request, _context, attempt) => {
      if (attempt < 3) throw unavailable();
      return { ledgerSequence: 7n };
    });

    const reply: RecordOutcomeResponse = await client.recordOutcome({
      ...REQUEST,
      attributes: { last_answer: "a-9" },
    });

    assert.equal(reply.ledgerSequence, 7n);
    assert.equal(received.length, 3);
    for (const request of received) {
      assert.ok(equals(RecordOutcomeRequestSchema, request, received[0]!));
      assert.equal(request.outcomeId, "conv-1");
    }
    assert.ok(
      equals(
        RecordOutcomeRequestSchema,
        received[0]!,
        create(RecordOutcomeRequestSchema, { ...REQUEST, attributes: { last_answer: "a-9" } }),
      ),
    );
  });

  it("gives up after maxAttempts with an UnavailableError", async () => {
    const { client, received } = fake(async () => {
      throw unavailable();
    }, { maxAttempts: 4 });

    const error = await failure(client.recordOutcome(REQUEST));

    assert.ok(error instanceof UnavailableError);
    assert.equal(error.codeName, "UNAVAILABLE");
    assert.equal(received.length, 4);
  });

  it("never retries another code, and exposes its ErrorInfo reason and metadata", async () => {
    const { client, received } = fake(async () => {
      throw new ConnectError("no price for resolution", Code.FailedPrecondition, undefined, [
        {
          desc: ErrorInfoSchema,
          value: { reason: "NO_PRICE", domain: "rating.v1", metadata: { outcome_type: "resolution" } },
        },
      ]);
    });

    const error = await failure(client.recordOutcome(REQUEST));

    assert.ok(error instanceof FailedPreconditionError);
    assert.equal(error.reason, "NO_PRICE");
    assert.deepEqual(error.metadata, { outcome_type: "resolution" });
    assert.equal(error.rawMessage, "no price for resolution");
    assert.equal(received.length, 1);
  });
});

describe("cancellation", () => {
  it("an abort during the wait before a retry ends the call as CANCELLED, like one during a call", async () => {
    const { client, received } = fake(async () => {
      throw unavailable();
    }, { initialBackoffMs: 10_000, maxBackoffMs: 10_000, maxAttempts: 10 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);

    const started = performance.now();
    const error = await failure(
      client.recordOutcome(REQUEST, { signal: controller.signal, timeoutMs: 60_000 }),
    );

    assert.ok(error instanceof UnexpectedError);
    assert.equal(error.codeName, "CANCELLED");
    assert.ok(performance.now() - started < 5_000);
    assert.ok(received.length >= 1);
  });
});

describe("deadlines", () => {
  it("fails a call slower than its deadline with DeadlineExceededError, without retrying", async () => {
    const { client, received } = fake(async (_request, context) => {
      await sleep(5_000, undefined, { signal: context.signal }).catch(() => undefined);
      return {};
    });

    const started = performance.now();
    const error = await failure(client.recordOutcome(REQUEST, { timeoutMs: 150 }));

    assert.ok(error instanceof DeadlineExceededError);
    assert.ok(performance.now() - started < 2_000);
    assert.equal(received.length, 1);
  });

  it("covers the whole call: retries stop when the next wait would pass the deadline", async () => {
    const { client, received } = fake(async () => {
      throw unavailable();
    }, { maxAttempts: 1_000, initialBackoffMs: 20, maxBackoffMs: 40 });

    const started = performance.now();
    const error = await failure(client.recordOutcome(REQUEST, { timeoutMs: 300 }));
    const elapsed = performance.now() - started;

    assert.ok(error instanceof UnavailableError);
    assert.ok(received.length > 1, `only ${received.length} attempt(s)`);
    assert.ok(elapsed < 300 + 100, `took ${elapsed} ms`);
  });

  it("sends each attempt what is left of the deadline", async () => {
    const { client, deadlines } = fake(async (_request, _context, attempt) => {
      if (attempt < 3) {
        await sleep(50);
        throw unavailable();
      }
      return {};
    });

    await client.recordOutcome(REQUEST, { timeoutMs: 2_000 });

    assert.equal(deadlines.length, 3);
    const [first, , third] = deadlines as number[];
    assert.ok(first! <= 2_000 && first! > 1_500, `first attempt had ${first} ms`);
    assert.ok(third! < first! - 100, `third attempt had ${third} ms of ${first}`);
  });
});
