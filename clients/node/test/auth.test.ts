/**
 * The client against a server with tokens and mutual TLS: it sends its token
 * on every call and opens the TLS connection from the certificates it is given.
 * The certificates and the tokens file are made by the repository's Python
 * test helpers (tests/certificates.py, tests/auth_support.py).
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import {
  PermissionDeniedError,
  RatingClient,
  ResourceExhaustedError,
  UnauthenticatedError,
  decimalToMoney,
  type TlsOptions,
} from "../src/index.js";
import { PYTHON, startServer, type RunningServer } from "./support/server.js";

/** The repository's tests/ (from dist/test/auth.test.js). */
const PYTHON_TESTS = fileURLToPath(new URL("../../../../tests", import.meta.url));

const MAKE = `
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from auth_support import write_tokens
from certificates import Pki
directory = Path(sys.argv[2])
pki = Pki.create(directory / "pki")
tokens = write_tokens(
    directory / "tokens", {"operator": "admin", "reader": "read", "steady": "read rate=4"}
)
print(json.dumps({
    "tokens": dict(tokens.by_caller), "tokens_file": str(tokens.path),
    "ca": str(pki.ca.cert_path), "server_cert": str(pki.server.cert_path),
    "server_key": str(pki.server.key_path), "client_cert": str(pki.client.cert_path),
    "client_key": str(pki.client.key_path),
}))
`;

interface Made {
  tokens: Record<string, string>;
  tokens_file: string;
  ca: string;
  server_cert: string;
  server_key: string;
  client_cert: string;
  client_key: string;
}

let directory: string;
let made: Made;
let tls: TlsOptions;
let server: RunningServer;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "rating-node-auth-"));
  made = JSON.parse(execFileSync(PYTHON, ["-c", MAKE, PYTHON_TESTS, directory]).toString());
  tls = {
    ca: await readFile(made.ca),
    cert: await readFile(made.client_cert),
    key: await readFile(made.client_key),
  };
  server = await startServer(undefined, {
    env: {
      RATING_AUTH_TOKENS_FILE: made.tokens_file,
      RATING_TLS_CERT: made.server_cert,
      RATING_TLS_KEY: made.server_key,
      RATING_TLS_CLIENT_CA: made.ca,
    },
    tls: { ca: tls.ca as Buffer, cert: tls.cert as Buffer, key: tls.key as Buffer },
  });
});

after(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

function client(token?: string): RatingClient {
  return new RatingClient(server.address, { token, tls, maxAttempts: 1 });
}

describe("a server with tokens and mutual TLS", () => {
  it("answers the admin's client, which sends its token", async () => {
    const admin = client(made.tokens.operator);
    try {
      await admin.putRateCard({
        rateCardId: "card",
        currencyCode: "USD",
        prices: [{ outcomeType: "resolution", unitPrice: decimalToMoney("0.99", "USD") }],
      });
      const reply = await admin.putCustomer({ customerId: "acme", rateCardId: "card" });
      assert.equal(reply.customer?.customerId, "acme");
    } finally {
      admin.close();
    }
  });

  it("refuses a reader's write as PERMISSION_DENIED naming the scope, and answers its read", async () => {
    const reader = client(made.tokens.reader);
    try {
      const balance = await reader.getBalance({ customerId: "acme" });
      assert.equal(balance.periodOutcomes, 0n);
      await assert.rejects(
        reader.putCustomer({ customerId: "acme", rateCardId: "card" }),
        (error: unknown) =>
          error instanceof PermissionDeniedError &&
          error.reason === "PERMISSION_DENIED" &&
          error.metadata.required_scope === "admin",
      );
    } finally {
      reader.close();
    }
  });

  it("sends the token on the alert stream too (WatchAlerts, scope read)", async () => {
    const admin = client(made.tokens.operator);
    const reader = client(made.tokens.reader);
    const stop = new AbortController();
    try {
      await admin.putSpendControls({
        customerId: "acme",
        requestId: "controls-1",
        alertThresholds: [decimalToMoney("0.50", "USD")],
      });
      await admin.recordOutcome({ customerId: "acme", outcomeId: "conv-1", outcomeType: "resolution" });
      const alerts = reader.watchAlerts({ customerId: "acme" }, { signal: stop.signal });
      const first = await alerts.next();
      assert.equal(first.done, false);
      assert.equal(first.value?.customerId, "acme");
      stop.abort();
      await alerts.return(undefined);
    } finally {
      admin.close();
      reader.close();
    }
  });

  it("waits as RATE_LIMITED's RetryInfo says, so every call of a limited caller succeeds", async () => {
    // "steady" may make 4 calls a second: ten in a row meet the limit and wait.
    const once = client(made.tokens.steady);
    const patient = new RatingClient(server.address, { token: made.tokens.steady, tls, maxAttempts: 10 });
    try {
      const refusals: ResourceExhaustedError[] = [];
      for (let i = 0; i < 10; i += 1) {
        await once.getBalance({ customerId: "acme" }).catch((error: unknown) => {
          if (!(error instanceof ResourceExhaustedError)) throw error;
          refusals.push(error);
        });
      }
      const answers = [];
      for (let i = 0; i < 10; i += 1) answers.push(await patient.getBalance({ customerId: "acme" }));
      assert.ok(refusals.length > 0);
      for (const refusal of refusals) {
        assert.equal(refusal.reason, "RATE_LIMITED");
        assert.ok(refusal.retryDelayMs !== undefined && refusal.retryDelayMs > 0);
      }
      assert.equal(answers.length, 10);
    } finally {
      once.close();
      patient.close();
    }
  });

  it("refuses a client without a token as UNAUTHENTICATED", async () => {
    const anonymous = client();
    try {
      await assert.rejects(
        anonymous.getBalance({ customerId: "acme" }),
        (error: unknown) => error instanceof UnauthenticatedError && error.reason === "UNAUTHENTICATED",
      );
    } finally {
      anonymous.close();
    }
  });

  it("refuses half a client certificate or a token with a space at once", () => {
    assert.throws(() => new RatingClient(server.address, { tls: { cert: "x" } }), RangeError);
    assert.throws(() => new RatingClient(server.address, { token: "two words" }), RangeError);
  });
});
