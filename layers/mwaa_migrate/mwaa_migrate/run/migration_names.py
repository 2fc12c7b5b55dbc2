"""A migration's id, derived from its two environments' names alone: in policy names, the export's
KMS encryption context and the cutover record (its keys' prefix is migration_bucket's)."""

from __future__ import annotations

# Environment names match ^[a-zA-Z][0-9a-zA-Z_-]*$: a "." never occurs in one, so it separates the
# two names unambiguously ("a-to-b" -> "c" and "a" -> "b-to-c" were the same "a-to-b-to-c").
MIGRATION_ID_SEPARATOR = "."


def migration_id(source_name: str, target_name: str) -> str:
    return f"{source_name}{MIGRATION_ID_SEPARATOR}{target_name}"
