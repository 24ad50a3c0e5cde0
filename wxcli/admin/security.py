"""Who may use ``wx admin``: a login token, then a session cookie and a CSRF token per session.

The token is printed at start (``WX_ADMIN_TOKEN`` fixes it). Logging in with it
sets an HttpOnly, SameSite=Strict cookie naming a random session; each session
has its own CSRF token that every state-changing request must carry. Sessions
live in memory: restarting ``wx admin`` logs everyone out.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time

COOKIE = "wx_admin_session"
SESSION_SECONDS = 12 * 3600
TOKEN_ENV = "WX_ADMIN_TOKEN"


def login_token(environ: dict | None = None) -> str:
    """``WX_ADMIN_TOKEN`` when set, else a fresh random token."""
    fixed = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    return fixed or secrets.token_urlsafe(24)


class Sessions:
    """Logged-in browsers: session id → (CSRF token, expiry)."""

    def __init__(self, token: str, lifetime: float = SESSION_SECONDS):
        self.token = token
        self.lifetime = lifetime
        self._sessions: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def check_token(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(offered.encode(), self.token.encode())

    def open(self) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session] = (secrets.token_urlsafe(32), time.monotonic() + self.lifetime)
        return session

    def csrf(self, session: str | None) -> str | None:
        """The session's CSRF token, or None when the session is unknown or expired."""
        if not session:
            return None
        with self._lock:
            found = self._sessions.get(session)
            if found is None:
                return None
            if found[1] < time.monotonic():
                del self._sessions[session]
                return None
            return found[0]

    def check_csrf(self, session: str | None, offered: str | None) -> bool:
        expected = self.csrf(session)
        return bool(expected and offered) and hmac.compare_digest(expected.encode(), offered.encode())

    def close(self, session: str | None) -> None:
        with self._lock:
            self._sessions.pop(session or "", None)
