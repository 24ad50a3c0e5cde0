"""The account's brain: answers and flows compiled into SQLite, and the engine that answers.

Entry points:

- :func:`compile_project` — ``flows/`` + article keywords → ``build/wx.db`` (atomic;
  raises :class:`~wxcli.errors.ContentError` with ``path:line`` problems).
- :func:`wxcli.bot.engine.answer` — one message → one reply, a pure function of
  (compiled bot, session, message, now) used by the server, ``wx ask``, ``wx chat``
  and ``wx test``.
"""

from wxcli.bot.compiler import CompileResult, compile_project

__all__ = ["CompileResult", "compile_project"]
