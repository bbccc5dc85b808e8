"""The one way times are written for the API: UTC, whole seconds, Z."""

from arbotd import iso_utc


def test_times_are_utc_whole_seconds():
    assert iso_utc(1704110400) == "2024-01-01T12:00:00Z"


def test_a_fraction_is_dropped_not_rounded_into_the_next_second():
    assert iso_utc(1704110399.9999996) == "2024-01-01T11:59:59Z"


def test_now_by_default():
    assert iso_utc().endswith("Z") and len(iso_utc()) == 20
