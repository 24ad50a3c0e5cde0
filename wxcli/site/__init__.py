"""The micro-site: Markdown rendering, pages, feeds, sitemap, search index, incremental output.

``build_site(project)`` is the entry point; the modules load lazily so that
commands which never build (``wx ask``, ``wx article list``) start fast.
"""

from __future__ import annotations

__all__ = ["BuildReport", "build_site"]


def __getattr__(name: str):
    if name in __all__:
        from . import build

        return getattr(build, name)
    raise AttributeError(name)
