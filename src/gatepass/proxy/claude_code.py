"""The optional parts of Claude Code's gateway protocol: managed settings and telemetry sinks.

`GET /managed/settings` serves the caller's key's Claude Code managed settings in the
protocol's wrapper, with the checksum the client computes itself (`sha256:` + hex SHA-256 of
the JSON with keys sorted at every level and no whitespace) as `checksum` and quoted `ETag`,
and `304` only in answer to a matching `If-None-Match`. `404` means "no managed policy".
`POST /v1/metrics|logs|traces` accept OTLP and discard it, so the client's exporter does not
log an error on every flush.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

SETTINGS_NAMESPACE = uuid.UUID("6a1f2b8e-9d3c-4e57-a0b1-3c5d7e9f1a2b")
TELEMETRY_PATHS = frozenset({"/v1/metrics", "/v1/logs", "/v1/traces"})
MAX_TELEMETRY_BYTES = 4 * 1024 * 1024


def settings_checksum(settings: dict[str, Any]) -> str:
    canonical = orjson.dumps(settings, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def settings_document(key_id: int, settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The protocol's wrapper for these settings, and its checksum."""
    checksum = settings_checksum(settings)
    document = {
        "uuid": str(uuid.uuid5(SETTINGS_NAMESPACE, f"key:{key_id}")),
        "checksum": checksum,
        "settings": settings,
    }
    return document, checksum


def matches_etag(if_none_match: bytes | None, checksum: str) -> bool:
    """Whether `If-None-Match` names this checksum (`*` asks only whether settings exist)."""
    if if_none_match is None:
        return False
    for candidate in if_none_match.decode("latin-1").split(","):
        tag = candidate.strip()
        tag = tag.removeprefix("W/").strip('"')
        if tag == checksum:
            return True
    return False
