"""Benchmarks and load tests of rating-service, run on the machine they measure.

- ``python -m bench.load``: a load generator against any address, with a final
  check that the ledger holds exactly the acknowledged writes.
- ``python -m bench.throughput``: the service beside its yardsticks (an empty
  gRPC call, raw sqlite3 inserts) in one run, as ratios, also as JSON.
- ``bench.bulkfill``: fills a migrated SQLite ledger with N settled outcomes fast.
- ``python -m bench.reporter_drain``: the Stripe reporter drains a bulk-filled
  backlog into the Stripe test server (outcomes/s, HTTP calls per 1,000
  outcomes, beside the same yardsticks), and checks Stripe's totals are exact.
"""
