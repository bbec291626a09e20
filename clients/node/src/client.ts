/**
 * The client: one method per RPC, the generated messages in and out.
 *
 * It behaves as the Python client (rating_client._client) does. Every write
 * of the service is idempotent on a key the caller sends, so a call that
 * failed with UNAVAILABLE is sent again, the very same message (same
 * `outcomeId`, `requestId`, `bucketId`), with exponential backoff and full
 * jitter. Nothing else is retried: DEADLINE_EXCEEDED in particular means the
 * call may still be running, and the caller's deadline is spent anyway. The
 * deadline covers the whole call, retries and waits included, so `timeoutMs`
 * bounds how long a method can take; each attempt carries what is left of it
 * to the server as its gRPC deadline.
 *
 * @module
 */

import { setTimeout as sleep } from "node:timers/promises";

import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  type CallOptions as ConnectCallOptions,
  type Client,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import {
  errorFromConnectError,
  errorFromStatus,
  RatingError,
  UnavailableError,
  UnexpectedError,
} from "./errors.js";
import {
  ConfirmOutcomeRequestSchema,
  ConsumeBucketRequestSchema,
  CreateBucketRequestSchema,
  ExplainOutcomeRequestSchema,
  GetBalanceRequestSchema,
  ListLedgerEntriesRequestSchema,
  PreviewInvoiceRequestSchema,
  PutCustomerRequestSchema,
  PutRateCardRequestSchema,
  PutSpendControlsRequestSchema,
  QuoteCostRequestSchema,
  RatingService,
  RecordOutcomeRequestSchema,
  RecordOutcomesRequestSchema,
  ReverseOutcomeRequestSchema,
  SimulateRateCardRequestSchema,
  VoidBucketRequestSchema,
  WatchAlertsRequestSchema,
  type Bucket,
  type ConfirmOutcomeResponse,
  type ConsumeBucketResponse,
  type ExplainOutcomeResponse,
  type GetBalanceResponse,
  type LedgerEntry,
  type ListLedgerEntriesResponse,
  type PreviewInvoiceResponse,
  type PutCustomerResponse,
  type PutRateCardResponse,
  type PutSpendControlsResponse,
  type QuoteCostResponse,
  type RecordOutcomeResponse,
  type RecordOutcomeResult,
  type ReverseOutcomeResponse,
  type SimulateRateCardResponse,
  type VoidBucketResponse,
  type WatchAlertsResponse,
} from "./gen/rating/v1/rating_pb.js";

/** What a request may be given as: the message, or a plain object of its fields. */
export type Request<Schema extends DescMessage> = MessageInitShape<Schema>;

/** TLS settings of the connection the client opens (PEM text or bytes). */
export interface TlsOptions {
  /** The CA that signed the server's certificate; default Node's trusted CAs. */
  ca?: string | Buffer;
  /** The client's certificate chain, for mutual TLS (with `key`). */
  cert?: string | Buffer;
  /** The private key of `cert`. */
  key?: string | Buffer;
}

/** Settings of a client; every one has a default. */
export interface RatingClientOptions {
  /**
   * A transport of the caller's own (interceptors, an in-memory fake in
   * tests). The client then uses it as is, and `close()` leaves it alone.
   * Without one, the client opens an HTTP/2 connection to `target`:
   * plaintext, or TLS when `tls` is given or `target` is an `https://` URL.
   */
  transport?: Transport;
  /**
   * Sent with every call as `authorization: Bearer <token>`: a server with
   * RATING_AUTH_TOKENS_FILE answers UNAUTHENTICATED without it.
   */
  token?: string;
  /** TLS for the connection the client opens (not with `transport`). */
  tls?: TlsOptions;
  /** The deadline of each call, retries included, in milliseconds. Default 10,000. */
  timeoutMs?: number;
  /** How many times a call is sent at most (1: never retried). Default 5. */
  maxAttempts?: number;
  /** The bound of the first wait before a retry, in milliseconds. Default 50. */
  initialBackoffMs?: number;
  /** The cap of the doubling bound of the waits, in milliseconds. Default 2,000. */
  maxBackoffMs?: number;
}

/** Settings of one call. */
export interface CallOptions {
  /** This call's deadline in milliseconds, retries included; default the client's. */
  timeoutMs?: number;
  /** Aborting it cancels the call (and any wait before a retry). */
  signal?: AbortSignal;
}

/**
 * Typed client of rating.v1.RatingService.
 *
 * ```ts
 * const client = new RatingClient("127.0.0.1:50051");
 * try {
 *   const recorded = await client.recordOutcome({
 *     customerId: "acme", outcomeId: "conv-1", outcomeType: "resolution",
 *   });
 * } finally {
 *   client.close();
 * }
 * ```
 *
 * Failures throw `RatingError` subclasses; branch on `error.reason`.
 */
export class RatingClient {
  private readonly stub: Client<typeof RatingService>;
  private readonly sessions: Http2SessionManager | undefined;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly headers: Record<string, string>;

  /**
   * @param target `host:port` of a plaintext server, or a URL
   *   (`https://host:port` for TLS); ignored when `options.transport` is given.
   */
  constructor(target = "127.0.0.1:50051", options: RatingClientOptions = {}) {
    const {
      timeoutMs = 10_000,
      maxAttempts = 5,
      initialBackoffMs = 50,
      maxBackoffMs = 2_000,
    } = options;
    if (!(timeoutMs > 0)) throw new RangeError("timeoutMs must be positive");
    if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
      throw new RangeError("maxAttempts must be an integer of at least 1");
    }
    if (!(initialBackoffMs >= 0 && maxBackoffMs >= initialBackoffMs)) {
      throw new RangeError("backoffs must satisfy 0 <= initialBackoffMs <= maxBackoffMs");
    }
    const { token, tls } = options;
    if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
      throw new RangeError("token must be non-empty printable ASCII without spaces");
    }
    if ((tls?.cert === undefined) !== (tls?.key === undefined)) {
      throw new RangeError("give both tls.cert and tls.key, or neither");
    }
    let transport = options.transport;
    if (transport !== undefined && tls !== undefined) {
      throw new RangeError("tls applies to the connection the client opens, not to transport");
    }
    if (transport === undefined) {
      const scheme = tls === undefined ? "http" : "https";
      const baseUrl = target.includes("://") ? target : `${scheme}://${target}`;
      this.sessions = new Http2SessionManager(baseUrl, undefined, tls && { ...tls });
      transport = createGrpcTransport({ baseUrl, sessionManager: this.sessions });
    }
    this.headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    this.stub = createClient(RatingService, transport);
    this.timeoutMs = timeoutMs;
    this.maxAttempts = maxAttempts;
    this.initialBackoffMs = initialBackoffMs;
    this.maxBackoffMs = maxBackoffMs;
  }

  /** Close the connection if the client opened it (calls in flight fail). */
  close(): void {
    this.sessions?.abort();
  }

  // Outcomes ----------------------------------------------------------------

  /** Rate and record one outcome; `outcomeId` is its idempotency key. */
  recordOutcome(
    request: Request<typeof RecordOutcomeRequestSchema>,
    options?: CallOptions,
  ): Promise<RecordOutcomeResponse> {
    return this.call(
      (r, o) => this.stub.recordOutcome(r, o),
      create(RecordOutcomeRequestSchema, request),
      options,
    );
  }

  /**
   * Record up to 1,000 outcomes; each item's result or error, in order.
   *
   * Item errors are returned, not thrown, since one bad item never fails the
   * others; a failure of the whole call is thrown.
   */
  async recordOutcomes(
    requests: Request<typeof RecordOutcomeRequestSchema>[],
    options?: CallOptions,
  ): Promise<(RecordOutcomeResponse | RatingError)[]> {
    const reply = await this.call(
      (r, o) => this.stub.recordOutcomes(r, o),
      create(RecordOutcomesRequestSchema, { requests }),
      options,
    );
    return reply.results.map(itemResult);
  }

  /** Settle a pending outcome now. */
  confirmOutcome(
    request: Request<typeof ConfirmOutcomeRequestSchema>,
    options?: CallOptions,
  ): Promise<ConfirmOutcomeResponse> {
    return this.call(
      (r, o) => this.stub.confirmOutcome(r, o),
      create(ConfirmOutcomeRequestSchema, request),
      options,
    );
  }

  /** Undo a recorded outcome; `reason` is part of the idempotent payload. */
  reverseOutcome(
    request: Request<typeof ReverseOutcomeRequestSchema>,
    options?: CallOptions,
  ): Promise<ReverseOutcomeResponse> {
    return this.call(
      (r, o) => this.stub.reverseOutcome(r, o),
      create(ReverseOutcomeRequestSchema, request),
      options,
    );
  }

  /** Price `quantity` more outcomes at `at` (absent: now) without writing. */
  quoteCost(
    request: Request<typeof QuoteCostRequestSchema>,
    options?: CallOptions,
  ): Promise<QuoteCostResponse> {
    return this.call(
      (r, o) => this.stub.quoteCost(r, o),
      create(QuoteCostRequestSchema, request),
      options,
    );
  }

  // Buckets -----------------------------------------------------------------

  /** Draw `quantity` units, all or nothing; `requestId` is the idempotency key. */
  consumeBucket(
    request: Request<typeof ConsumeBucketRequestSchema>,
    options?: CallOptions,
  ): Promise<ConsumeBucketResponse> {
    return this.call(
      (r, o) => this.stub.consumeBucket(r, o),
      create(ConsumeBucketRequestSchema, request),
      options,
    );
  }

  /** Create a bucket of `size.case = "quantity"` units, or of `"funding"` / unit price. */
  createBucket(
    request: Request<typeof CreateBucketRequestSchema>,
    options?: CallOptions,
  ): Promise<Bucket> {
    return this.call(
      (r, o) => this.stub.createBucket(r, o),
      create(CreateBucketRequestSchema, request),
      options,
    );
  }

  /** End a bucket now: its undrawn units expire. Idempotent on the bucket. */
  voidBucket(
    request: Request<typeof VoidBucketRequestSchema>,
    options?: CallOptions,
  ): Promise<VoidBucketResponse> {
    return this.call(
      (r, o) => this.stub.voidBucket(r, o),
      create(VoidBucketRequestSchema, request),
      options,
    );
  }

  // Spend controls ----------------------------------------------------------

  /** Replace the customer's monthly alert thresholds and hard limit; `requestId` is the key. */
  putSpendControls(
    request: Request<typeof PutSpendControlsRequestSchema>,
    options?: CallOptions,
  ): Promise<PutSpendControlsResponse> {
    return this.call(
      (r, o) => this.stub.putSpendControls(r, o),
      create(PutSpendControlsRequestSchema, request),
      options,
    );
  }

  /**
   * Yield every alert after `afterAlertId`, then each new one, until `signal` aborts.
   * Not retried: when the stream breaks (`UnavailableError` as the server shuts down),
   * watch again with `afterAlertId` set to the last alert's id.
   */
  async *watchAlerts(
    request: Request<typeof WatchAlertsRequestSchema>,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<WatchAlertsResponse, void, undefined> {
    try {
      yield* this.stub.watchAlerts(create(WatchAlertsRequestSchema, request), {
        signal: options.signal,
        headers: this.headers,
      });
    } catch (thrown) {
      if (!(thrown instanceof ConnectError)) throw thrown;
      throw errorFromConnectError(thrown);
    }
  }

  // Reads -------------------------------------------------------------------

  /** Return the customer's buckets and this month's usage and charges. */
  getBalance(
    request: Request<typeof GetBalanceRequestSchema>,
    options?: CallOptions,
  ): Promise<GetBalanceResponse> {
    return this.call(
      (r, o) => this.stub.getBalance(r, o),
      create(GetBalanceRequestSchema, request),
      options,
    );
  }

  /** Return what decided one outcome's charge: price, bucket, history, entries, Stripe. */
  explainOutcome(
    request: Request<typeof ExplainOutcomeRequestSchema>,
    options?: CallOptions,
  ): Promise<ExplainOutcomeResponse> {
    return this.call(
      (r, o) => this.stub.explainOutcome(r, o),
      create(ExplainOutcomeRequestSchema, request),
      options,
    );
  }

  /** Return one customer's bill for one calendar month (default: the current one). */
  previewInvoice(
    request: Request<typeof PreviewInvoiceRequestSchema>,
    options?: CallOptions,
  ): Promise<PreviewInvoiceResponse> {
    return this.call(
      (r, o) => this.stub.previewInvoice(r, o),
      create(PreviewInvoiceRequestSchema, request),
      options,
    );
  }

  /** Re-price a month under draft prices, for a rate card's customers or a list; stores nothing. */
  simulateRateCard(
    request: Request<typeof SimulateRateCardRequestSchema>,
    options?: CallOptions,
  ): Promise<SimulateRateCardResponse> {
    return this.call(
      (r, o) => this.stub.simulateRateCard(r, o),
      create(SimulateRateCardRequestSchema, request),
      options,
    );
  }

  /** Return one page of the ledger; `nextPageToken` is empty on the last page. */
  listLedgerEntries(
    request: Request<typeof ListLedgerEntriesRequestSchema>,
    options?: CallOptions,
  ): Promise<ListLedgerEntriesResponse> {
    return this.call(
      (r, o) => this.stub.listLedgerEntries(r, o),
      create(ListLedgerEntriesRequestSchema, request),
      options,
    );
  }

  /**
   * Yield the whole ledger in sequence order, fetching page after page.
   * `timeoutMs` applies to each page, not to the whole walk.
   */
  async *iterLedgerEntries(
    request: { customerId: string; pageSize?: number },
    options?: CallOptions,
  ): AsyncGenerator<LedgerEntry, void, undefined> {
    let pageToken = "";
    do {
      const page = await this.listLedgerEntries({ ...request, pageToken }, options);
      yield* page.entries;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  // Configuration -----------------------------------------------------------

  /** Create or replace a customer. */
  putCustomer(
    request: Request<typeof PutCustomerRequestSchema>,
    options?: CallOptions,
  ): Promise<PutCustomerResponse> {
    return this.call(
      (r, o) => this.stub.putCustomer(r, o),
      create(PutCustomerRequestSchema, request),
      options,
    );
  }

  /** Append a rate-card version with a price per outcome type. */
  putRateCard(
    request: Request<typeof PutRateCardRequestSchema>,
    options?: CallOptions,
  ): Promise<PutRateCardResponse> {
    return this.call(
      (r, o) => this.stub.putRateCard(r, o),
      create(PutRateCardRequestSchema, request),
      options,
    );
  }

  // Transport ---------------------------------------------------------------

  /**
   * Send `request`, retrying UNAVAILABLE (and what the server asks to retry later) within one
   * deadline for the whole call.
   */
  private async call<I, O>(
    send: (request: I, options: ConnectCallOptions) => Promise<O>,
    request: I,
    options: CallOptions = {},
  ): Promise<O> {
    const { signal } = options;
    const deadline = performance.now() + (options.timeoutMs ?? this.timeoutMs);
    for (let attempt = 1; ; attempt += 1) {
      let error: RatingError;
      try {
        // Whole milliseconds (the grpc-timeout header's unit); 0 fails at once.
        const timeoutMs = Math.max(Math.floor(deadline - performance.now()), 0);
        return await send(request, { timeoutMs, signal, headers: this.headers });
      } catch (thrown) {
        if (!(thrown instanceof ConnectError)) throw thrown;
        error = errorFromConnectError(thrown);
      }
      const delay = this.delayBeforeRetry(error, attempt);
      if (
        delay === undefined ||
        attempt >= this.maxAttempts ||
        performance.now() + delay >= deadline
      ) {
        throw error;
      }
      try {
        await sleep(delay, undefined, { signal });
      } catch (aborted) {
        // Aborted while waiting: the same error as when aborted during a call.
        throw errorFromConnectError(ConnectError.from(aborted, Code.Canceled));
      }
    }
  }

  /**
   * Milliseconds to wait before sending again: the server's `RetryInfo` when it sent one (a
   * caller past its rate limit), else backoff for UNAVAILABLE; undefined: do not retry.
   */
  private delayBeforeRetry(error: RatingError, attempt: number): number | undefined {
    if (error.retryDelayMs !== undefined) {
      return error.retryDelayMs + Math.random() * this.initialBackoffMs;
    }
    return error instanceof UnavailableError ? this.backoff(attempt) : undefined;
  }

  /** Full jitter: a uniform wait up to the capped exponential bound. */
  private backoff(attempt: number): number {
    const bound = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(attempt - 1, 64));
    return Math.random() * bound;
  }
}

/** Return one RecordOutcomes item as its result or its error. */
function itemResult(result: RecordOutcomeResult): RecordOutcomeResponse | RatingError {
  switch (result.result.case) {
    case "response":
      return result.result.value;
    case "error":
      return errorFromStatus(result.result.value);
    default:
      return new UnexpectedError(Code.Unknown, "the server sent an empty item result");
  }
}
