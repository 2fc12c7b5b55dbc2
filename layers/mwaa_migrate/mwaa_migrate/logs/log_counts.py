"""The log copy's counters, each defined once: what a listing found among a group's streams, and what
a copy did to the events. The copy's progress, the listing and the report carry them under these
names and add them up by these names."""

from __future__ import annotations

from mwaa_migrate.models import Model


class ListingCounts(Model):
    """Every stream DescribeLogStreams returned, and what became of it:
    streams_listed = streams_outside_window + streams_not_failed + streams_selected."""

    streams_listed: int = 0
    streams_selected: int = 0
    streams_outside_window: int = 0
    streams_not_failed: int = 0
    # Selected streams whose name the target's Airflow version spells differently.
    streams_renamed: int = 0


class EventCounts(Model):
    """Every event a copy read, counted once:
    events_read = events_written + events_rejected + events_already_present + events_too_old
    (the truncated ones are among those written)."""

    events_read: int = 0
    events_written: int = 0
    events_already_present: int = 0
    events_too_old: int = 0
    events_truncated: int = 0
    events_rejected: int = 0


LISTING_COUNTERS = tuple(ListingCounts.model_fields)
EVENT_COUNTERS = tuple(EventCounts.model_fields)
