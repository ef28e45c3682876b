"""`GET /v1/models`: the caller's models in Anthropic's list shape, with its pagination."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from gatepass.policy.catalog import Route
from gatepass.proxy import errors

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def model_object(route: Route) -> dict[str, Any]:
    return {
        "type": "model",
        "id": route.model_id,
        "display_name": route.display_name,
        "created_at": route.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _query(query_string: bytes) -> dict[str, str]:
    parsed = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def model_page(routes: list[Route], query_string: bytes) -> dict[str, Any]:
    """One page: `limit` (1 to 1000), and `after_id` or `before_id` as cursors."""
    query = _query(query_string)
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError as exc:
        raise errors.invalid_request("limit: Input should be a valid integer") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.invalid_request(f"limit: Input should be between 1 and {MAX_LIMIT}")
    after_id, before_id = query.get("after_id"), query.get("before_id")
    if after_id and before_id:
        raise errors.invalid_request("after_id and before_id cannot be used together")
    ids = [route.model_id for route in routes]
    if before_id:
        if before_id not in ids:
            raise errors.invalid_request(f"before_id: {before_id!r} is not a known model id")
        end = ids.index(before_id)
        start = max(0, end - limit)
        page, has_more = routes[start:end], start > 0
    else:
        start = 0
        if after_id:
            if after_id not in ids:
                raise errors.invalid_request(f"after_id: {after_id!r} is not a known model id")
            start = ids.index(after_id) + 1
        page, has_more = routes[start : start + limit], start + limit < len(routes)
    return {
        "data": [model_object(route) for route in page],
        "has_more": has_more,
        "first_id": page[0].model_id if page else None,
        "last_id": page[-1].model_id if page else None,
    }
