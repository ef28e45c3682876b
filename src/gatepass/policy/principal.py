"""Who is calling: the virtual key (and, later, the user) behind a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gatepass.policy.catalog import Catalog, Route

if TYPE_CHECKING:
    from gatepass.limits.caps import KeyLimits

ALL_MODELS = "*"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    key_name: str
    allowed_models: tuple[str, ...]  # as configured: ids, aliases, or "*"
    expires_at: datetime | None
    revoked: bool
    user_email: str | None = None
    managed_settings: dict[str, Any] | None = field(default=None, compare=False)
    limits: KeyLimits | None = field(default=None, compare=False)  # budgets and rate limits

    def may_use(self, route: Route, catalog: Catalog) -> bool:
        """Whether the allow-list admits the route's canonical model.

        An alias is allowed only when its target is: the check is on what would be served.
        """
        if ALL_MODELS in self.allowed_models:
            return True
        return route.model_id in catalog.canonical(self.allowed_models)
