/**
 * The real rating service as a child process, for the tests.
 *
 * `startServer()` runs `python -m rating_service serve` from the repository's
 * virtualenv (`../../.venv`, or `$RATING_PYTHON`) on a fresh SQLite file and
 * a free port, waits (at most START_TIMEOUT_MS) until the standard gRPC
 * health service answers SERVING, and returns a handle whose `stop()` sends
 * SIGTERM, then SIGKILL, and removes the files.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { create, createFileRegistry } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

/** Milliseconds the server gets to answer SERVING. */
export const START_TIMEOUT_MS = 30_000;
/** Milliseconds the server gets to exit after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;

/** clients/node, from dist/test/support/server.js. */
const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The Python that has the service installed. */
export const PYTHON = process.env.RATING_PYTHON ?? join(PACKAGE_ROOT, "..", "..", ".venv", "bin", "python");

/** A running server: its address (`127.0.0.1:port`) and how to stop it. */
export interface RunningServer {
  readonly address: string;
  /** The TLS settings a client needs, when the server was started with TLS. */
  readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  readonly process: ChildProcess;
  /** What the server printed so far (for failure messages). */
  output(): string;
  /** SIGTERM (SIGKILL after a while) and remove the database directory. */
  stop(): Promise<void>;
}

/** A port nobody listens on right now (bound to 0, then released). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Settings of a test server beyond its database and address. */
export interface ServerOptions {
  /** Environment variables (RATING_AUTH_TOKENS_FILE, RATING_TLS_*). */
  env?: Record<string, string>;
  /** What a client needs to reach a TLS server (also used for the health probe). */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** Spawn the server on `port` (default: a free one) without waiting for it. */
export async function spawnServer(
  port?: number,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const directory = await mkdtemp(join(tmpdir(), "rating-node-"));
  const address = `127.0.0.1:${port ?? (await freePort())}`;
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(RATING_|STRIPE_)/.test(name)),
  );
  env.RATING_DATABASE_URL = `sqlite+aiosqlite:///${join(directory, "rating.db")}`;
  env.RATING_LISTEN = address;
  env.PYTHONUNBUFFERED = "1";
  Object.assign(env, options.env);
  const child = spawn(PYTHON, ["-m", "rating_service", "serve"], {
    cwd: directory,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once("exit", () => resolve());
    child.once("error", (error) => {
      output += `\n${String(error)}`;
      resolve();
    });
  });
  return {
    address,
    tls: options.tls,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(killer);
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Start the server and return once its health service answers SERVING. */
export async function startServer(
  port?: number,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const server = await spawnServer(port, options);
  try {
    await waitUntilServing(server);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** Poll grpc.health.v1.Health/Check until SERVING; fail if the process dies or time runs out. */
export async function waitUntilServing(
  server: RunningServer,
  timeoutMs = START_TIMEOUT_MS,
): Promise<void> {
  const baseUrl = `${server.tls === undefined ? "http" : "https"}://${server.address}`;
  const sessions = new Http2SessionManager(baseUrl, undefined, server.tls && { ...server.tls });
  const health = createHealthClient(createGrpcTransport({ baseUrl, sessionManager: sessions }));
  const deadline = performance.now() + timeoutMs;
  try {
    while (performance.now() < deadline) {
      if (server.process.exitCode !== null || server.process.signalCode !== null) {
        throw new Error(
          `the server exited (${server.process.exitCode ?? server.process.signalCode}) before serving:\n${server.output()}`,
        );
      }
      try {
        const reply = await health.check({ service: "" }, { timeoutMs: 1_000 });
        if (reply.status === SERVING) return;
      } catch {
        // Not listening yet: poll again.
      }
      await sleep(100);
    }
  } finally {
    sessions.abort();
  }
  throw new Error(
    `the server did not answer SERVING on ${server.address} within ${timeoutMs} ms:\n${server.output()}`,
  );
}

/** `HealthCheckResponse.ServingStatus.SERVING`. */
const SERVING = 1;

/**
 * grpc/health/v1/health.proto, the part a readiness probe needs, described
 * by hand so that the tests need no second generated package. The status is
 * read as an int32, which has the same encoding as the proto's enum.
 */
const healthRegistry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "grpc/health/v1/health.proto",
    package: "grpc.health.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "HealthCheckRequest",
        field: [
          {
            name: "service",
            jsonName: "service",
            number: 1,
            type: FieldDescriptorProto_Type.STRING,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
        ],
      },
      {
        name: "HealthCheckResponse",
        field: [
          {
            name: "status",
            jsonName: "status",
            number: 1,
            type: FieldDescriptorProto_Type.INT32,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
        ],
      },
    ],
    service: [
      {
        name: "Health",
        method: [
          {
            name: "Check",
            inputType: ".grpc.health.v1.HealthCheckRequest",
            outputType: ".grpc.health.v1.HealthCheckResponse",
          },
        ],
      },
    ],
  }),
  () => undefined,
);

interface HealthClient {
  check(
    request: { service: string },
    options: { timeoutMs: number },
  ): Promise<{ status: number }>;
}

function createHealthClient(transport: ReturnType<typeof createGrpcTransport>): HealthClient {
  const service = healthRegistry.getService("grpc.health.v1.Health");
  if (service === undefined) throw new Error("the health descriptor has no service");
  // Described at run time, so the client's types are generic: narrow them here.
  const client: Client<typeof service> = createClient(service, transport);
  return client as unknown as HealthClient;
}
