# Container image of the rating service: `docker build -t rating-service .`
# Data (the SQLite ledger by default) lives in /data; mount a volume there, or
# point RATING_DATABASE_URL at PostgreSQL (postgresql+asyncpg://...).

# --- builder: a virtualenv with the service and its client/wire-types package
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The generated stubs and wire types ship in the client distribution; the
# server depends on it, so both are installed from this tree in one resolve.
COPY clients/python ./clients/python
COPY pyproject.toml README.md ./
COPY rating_service ./rating_service
RUN pip install --no-cache-dir ./clients/python .

# --- runtime: the virtualenv only, run as an unprivileged user
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RATING_LISTEN=0.0.0.0:50051 \
    RATING_HEALTH_LISTEN=127.0.0.1:50052 \
    RATING_DATABASE_URL=sqlite+aiosqlite:////data/rating.db
# On 0.0.0.0 the server needs a tokens file (it refuses to start without one):
# mount it and set RATING_AUTH_TOKENS_FILE, e.g.
#   -v "$PWD/tokens:/run/secrets/rating-tokens:ro" -e RATING_AUTH_TOKENS_FILE=/run/secrets/rating-tokens
# TLS: mount the PEM files and set RATING_TLS_CERT and RATING_TLS_KEY (and
# RATING_TLS_CLIENT_CA for mutual TLS). See the README, "Authentication and TLS".

RUN groupadd --system --gid 10001 rating \
    && useradd --system --uid 10001 --gid rating --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin rating \
    && mkdir /data \
    && chown rating:rating /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 50051

# Asks the standard gRPC health service (overall status, service "") on the
# port of RATING_HEALTH_LISTEN (plaintext and tokenless whatever TLS the main
# port requires; RATING_LISTEN's when unset); healthy only when it answers
# SERVING within 2 s.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import grpc,os,sys; from grpc_health.v1 import health_pb2, health_pb2_grpc; port=(os.environ.get('RATING_HEALTH_LISTEN') or os.environ.get('RATING_LISTEN', ':50051')).rsplit(':', 1)[-1]; ch=grpc.insecure_channel('127.0.0.1:' + port); r=health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=''), timeout=2); sys.exit(0 if r.status == health_pb2.HealthCheckResponse.SERVING else 1)"]

# SIGTERM (docker stop) makes the server drain in-flight calls and exit 0.
CMD ["rating-service", "serve"]
