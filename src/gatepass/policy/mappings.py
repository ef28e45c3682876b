"""Which virtual key a signed-in person gets: the group mappings, resolved fail-closed.

Mappings are tried in ascending `priority`; at equal priority an email mapping beats a group
mapping (it names one person), then the older mapping wins. The first that matches decides.
No match means no access. When the IdP said the group list was cut short (Entra overage,
a list at the provider's truncation limit), group mappings are not used at all: a partial
list could match a mapping that the full list would have outranked, so only email mappings
can grant access then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class MappingLike(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def group(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def priority(self) -> int: ...


M = TypeVar("M", bound=MappingLike)


def normalise_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def resolve_mapping(
    mappings: Iterable[M],
    *,
    email: str | None,
    groups: Sequence[str],
    groups_complete: bool = True,
) -> M | None:
    """The mapping that decides this person's key, or None (no access)."""
    wanted_email = normalise_email(email)
    group_set = frozenset(groups) if groups_complete else frozenset()

    def order(mapping: M) -> tuple[int, int, int]:
        return (mapping.priority, 0 if mapping.email else 1, mapping.id or 0)

    for mapping in sorted(mappings, key=order):
        if mapping.email is not None:
            if wanted_email is not None and normalise_email(mapping.email) == wanted_email:
                return mapping
        elif mapping.group is not None and mapping.group in group_set:
            return mapping
    return None
