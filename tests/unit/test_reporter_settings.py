"""The reporter's settings are checked at start against Stripe's own limits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rating_service.reporter.settings import ReporterSettings, ReporterSettingsError


def test_a_meter_event_name_past_stripes_100_characters_is_refused() -> None:
    """Stripe would refuse the meter; better to hear it at start than at the first event."""
    with pytest.raises(ReporterSettingsError, match="1 to 100 characters"):
        ReporterSettings(meters={"resolution": "r" * 101})


def test_a_grant_scope_of_more_than_20_prices_is_refused() -> None:
    """A credit grant's scope holds at most 20 prices."""
    with pytest.raises(ReporterSettingsError, match="1 to 20 price ids"):
        ReporterSettings(prices={"resolution": tuple(f"price_{i}" for i in range(21))})


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
