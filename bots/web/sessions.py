"""Who may use the admin console: the login token check, signed session cookies that a server-side
registry can revoke, CSRF tokens tied to a session, and a limit on failed logins per address."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

SESSION_COOKIE = "seedbot_admin"
LOGIN_COOKIE = "seedbot_login"
SESSION_TTL_S = 8 * 3600.0
LOGIN_FORM_TTL_S = 3600.0
FAILED_LOGINS_ALLOWED = 5
FAILED_LOGIN_WINDOW_S = 60.0
# Beyond this many addresses with recent failures, stale ones are dropped so memory stays bounded.
MAX_TRACKED_ADDRESSES = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str
    actor: str  # who the audit log says made a change: the name given at login
    expires_at: float


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class Sessions:
    """Sessions of one process. The signing key comes from the admin token and a random per-process
    salt, so a cookie is worthless to another process, after a restart, or once the token changes;
    the registry makes logout (and expiry) final even for a cookie someone copied."""

    def __init__(self, token: str, *, ttl_s: float = SESSION_TTL_S) -> None:
        self._token = token.encode()
        self._key = hmac.new(secrets.token_bytes(32), self._token, hashlib.sha256).digest()
        self._ttl_s = ttl_s
        self._live: dict[str, Session] = {}

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def open(self, actor: str) -> tuple[Session, str]:
        """A new session and the cookie value that carries it."""
        now = time.time()
        self._live = {sid: s for sid, s in self._live.items() if s.expires_at > now}
        session = Session(secrets.token_urlsafe(24), secrets.token_urlsafe(24), actor, now + self._ttl_s)
        self._live[session.id] = session
        payload = f"{session.id}.{int(session.expires_at)}"
        return session, f"{payload}.{_sign(self._key, payload)}"

    def find(self, cookie: str | None) -> Session | None:
        """The live session a cookie value stands for, or None (forged, expired, logged out)."""
        if not cookie or cookie.count(".") != 2:
            return None
        sid, expires, signature = cookie.split(".")
        if not hmac.compare_digest(signature, _sign(self._key, f"{sid}.{expires}")):
            return None
        session = self._live.get(sid)
        if session is None or session.expires_at <= time.time():
            self._live.pop(sid, None)
            return None
        return session

    def close(self, session: Session) -> None:
        self._live.pop(session.id, None)

    def csrf_matches(self, session: Session, given: str) -> bool:
        return hmac.compare_digest(given.encode(), session.csrf.encode())

    # The login form has no session yet: its CSRF token is tied to a random nonce in a short-lived
    # cookie instead, which another site can neither read nor (SameSite=Strict) send along.

    def login_form(self) -> tuple[str, str]:
        """(nonce for the login cookie, CSRF token for the login form)."""
        nonce = secrets.token_urlsafe(24)
        return nonce, _sign(self._key, f"login:{nonce}")

    def login_csrf_matches(self, nonce: str | None, given: str) -> bool:
        return bool(nonce) and hmac.compare_digest(given, _sign(self._key, f"login:{nonce}"))


class LoginLimiter:
    """At most `allowed` failed logins per client address in any `window_s`; then it must wait."""

    def __init__(self, allowed: int = FAILED_LOGINS_ALLOWED, window_s: float = FAILED_LOGIN_WINDOW_S) -> None:
        self._allowed = allowed
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, address: str) -> bool:
        failures = self._recent(address, time.monotonic())
        return failures is not None and len(failures) >= self._allowed

    def failed(self, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= MAX_TRACKED_ADDRESSES:
            for known in list(self._failures):
                self._recent(known, now)
        self._failures.setdefault(address, deque()).append(now)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures
