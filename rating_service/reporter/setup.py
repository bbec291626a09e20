"""``rating-service stripe setup``: the billing meters every priced outcome type needs."""

from __future__ import annotations

from rating_service.ledger import outbox
from rating_service.reporter.gateway import Gateway
from rating_service.reporter.settings import ReporterSettings
from rating_service.service.store import LedgerStore


async def ensure_meters(
    store: LedgerStore, gateway: Gateway, settings: ReporterSettings, *, create: bool
) -> tuple[list[str], list[str]]:
    """Lines to print, and the event names still missing a meter."""
    outcome_types = await store.read(outbox.priced_outcome_types) | set(settings.meters)
    wanted = sorted({settings.event_name(t) for t in outcome_types})
    existing = await gateway.meter_ids()
    lines: list[str] = []
    missing: list[str] = []
    for event_name in wanted:
        if event_name in existing:
            lines.append(f"meter {event_name}: {existing[event_name]} (exists)")
        elif create:
            meter_id = await gateway.create_meter(event_name, f"{event_name} (rating-service)")
            lines.append(f"meter {event_name}: {meter_id} (created)")
        else:
            missing.append(event_name)
            lines.append(f"meter {event_name}: MISSING (run `rating-service stripe setup`)")
    if not wanted:
        lines.append("no rate card prices an outcome type yet: nothing to set up")
    return lines, missing
