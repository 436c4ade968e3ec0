"""Who may use the bot where: the allowlists an operator set, applied the same way on every platform.

- Places (workspaces, channels) and roles narrow where the bot answers; people, who may use it at all.
- A thread counts as its parent channel.
- A DM is nobody's channel: with places or roles listed, a DM is open only to the people listed by
  id and to admins (otherwise anyone who can message the bot could spend the budget outside the
  places the operator chose), unless the DM itself is listed as a channel.
- Admins (`SEEDBOT_ADMINS`, or what the platform counts as one) may use the bot anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message was written, and by whom, as the allowlists see it."""

    channel: str  # a thread's parent channel
    user: str
    is_dm: bool = False
    workspace: str | None = None
    roles: frozenset[str] = field(default=frozenset())


@dataclass(frozen=True, slots=True)
class Allowlist:
    workspaces: frozenset[str] = field(default=frozenset())
    channels: frozenset[str] = field(default=frozenset())
    users: frozenset[str] = field(default=frozenset())
    roles: frozenset[str] = field(default=frozenset())

    @classmethod
    def of(
        cls,
        *,
        workspaces: Iterable[str] = (),
        channels: Iterable[str] = (),
        users: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> Allowlist:
        return cls(frozenset(workspaces), frozenset(channels), frozenset(users), frozenset(roles))

    def allows(self, place: Place, *, admin: bool) -> bool:
        if admin:
            return True
        if self.users and place.user not in self.users:
            return False
        if place.is_dm:
            narrowed = self.workspaces or self.channels or self.roles
            return not narrowed or place.channel in self.channels or bool(self.users)
        if self.workspaces and place.workspace not in self.workspaces:
            return False
        if self.channels and place.channel not in self.channels:
            return False
        return not self.roles or bool(place.roles & self.roles)
