"""The reporter's settings are checked at start against Stripe's own limits."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from rating_service.config import Settings
from rating_service.reporter.settings import ReporterSettings, ReporterSettingsError


def test_a_meter_event_name_past_stripes_100_characters_is_refused() -> None:
    """Stripe would refuse the meter; better to hear it at start than at the first event."""
    with pytest.raises(ReporterSettingsError, match="1 to 100 characters"):
        ReporterSettings(meters={"resolution": "r" * 101})


def test_a_grant_scope_of_more_than_20_prices_is_refused() -> None:
    """A credit grant's scope holds at most 20 prices."""
    with pytest.raises(ReporterSettingsError, match="1 to 20 price ids"):
        ReporterSettings(prices={"resolution": tuple(f"price_{i}" for i in range(21))})


def test_a_month_close_grace_beyond_stripes_72_hours_is_refused() -> None:
    """Stripe's invoice finalization grace period is 0 to 72 hours; a month closes after it."""
    with pytest.raises(ReporterSettingsError, match="RATING_STRIPE_MONTH_CLOSE_GRACE"):
        ReporterSettings(month_close_grace=timedelta(hours=72, seconds=1))


def test_the_month_close_grace_is_read_from_the_environment_in_seconds() -> None:
    """Default 1 hour (Stripe's default grace); ``RATING_STRIPE_MONTH_CLOSE_GRACE`` sets it."""
    default = Settings.from_env({}).reporter.month_close_grace
    given = Settings.from_env({"RATING_STRIPE_MONTH_CLOSE_GRACE": "7200"}).reporter

    assert (default, given.month_close_grace) == (timedelta(hours=1), timedelta(hours=2))


def test_settings_within_stripes_limits_are_kept() -> None:
    """The limits themselves are allowed."""
    settings = ReporterSettings(
        meters={"resolution": "r" * 100}, prices={"resolution": tuple(f"p{i}" for i in range(20))}
    )

    assert (settings.event_name("resolution"), len(settings.prices["resolution"])) == (
        "r" * 100,
        20,
    )


def test_the_command_line_refuses_bad_reporter_settings_with_exit_2() -> None:
    """``rating-service`` names the setting and exits 2 before touching anything."""
    done = subprocess.run(
        [sys.executable, "-m", "rating_service", "migrate"],
        env={"RATING_STRIPE_METERS": f"resolution={'x' * 101}", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "RATING_STRIPE_METERS" in done.stderr
