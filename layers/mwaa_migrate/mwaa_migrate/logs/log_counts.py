"""The log copy's counters, each defined once: what a listing found among a group's streams, what
a copy did to the events, and what one work item's calls counted. The copy's progress, the listing
and the report carry them under these names and add them up by these names."""

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


class CopyCounts(EventCounts):
    """What the calls of one item counted: streams finished (each once), of which with events copied
    and skipped, target streams created, events (EventCounts) and calls."""

    streams_done: int = 0
    streams_copied: int = 0
    streams_skipped: int = 0
    # Target streams this copy created (the others existed already).
    streams_created: int = 0
    put_calls: int = 0
    get_calls: int = 0
    # FilterLogEvents pages (many small streams a call); get_calls stays GetLogEvents' alone.
    filter_calls: int = 0


LISTING_COUNTERS = tuple(ListingCounts.model_fields)
EVENT_COUNTERS = tuple(EventCounts.model_fields)
COUNTER_FIELDS = tuple(CopyCounts.model_fields)
