"""One ``wx build``: the site, the bot's database and the review page, as one step.

Everything is checked and written first — the bot compiled beside ``build/wx.db``,
the site rendered into its spare tree — and only then are both put in place, the
database renamed over ``build/wx.db`` right before the site's directory swap.
An error in either (``path:line``) leaves both as they were: the server never
sends a card for a page the site no longer has. The review page, which is not
deployed, is written last.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

from wxcli.bot.article_facts import ArticleStore
from wxcli.bot.compiler import CompileResult, prepare_database
from wxcli.project import Project
from wxcli.site.build import BuildReport, build_site
from wxcli.sourcefiles import list_content
from wxcli.stamps import SourceScan


@dataclass
class ProjectBuild:
    site: BuildReport
    bot: CompileResult
    review: str  # the review page's path, relative to the project
    review_written: bool


def build_project(project: Project, *, drafts: bool = False, clean: bool = False, strict: bool = False,
                  progress=None, workers: int | None = None, future: bool = False) -> ProjectBuild:
    """Build site and bot together (both or neither); raises ContentError naming ``path:line``.

    ``future`` previews scheduled articles on the site; the bot answers with an
    article only once it is due (定时发布) either way."""
    from wxcli.review.review_page import refresh_review_page

    now = time.time()  # one clock for both: an article falls due on the site and in the bot together
    files = list_content(project.root)  # one listing of content/ for the three steps
    store, scan = ArticleStore(project, clean=clean, files=files), SourceScan(project)
    prepared = prepare_database(project, drafts=drafts, clean=clean, store=store, scan=scan, now=now,
                                progress=progress)
    _drop_segmenter()
    try:
        site = build_site(project, drafts=drafts, clean=clean, strict=strict, progress=progress,
                          workers=workers, future=future, now=now, commit=prepared.commit, files=files)
    finally:
        prepared.discard()  # nothing left to drop once committed
    path, written = refresh_review_page(project, clean=clean, store=store, scan=scan)
    return ProjectBuild(site, prepared.result, project.relative(path), written)


def _drop_segmenter() -> None:
    """Free jieba's dictionary (~100 MB) once the bot is compiled, so the site's forked
    workers do not each inherit a copy; a later compile in this process loads it again."""
    from wxcli.bot.text import base_tokenizer

    if base_tokenizer.cache_info().currsize:
        base_tokenizer.cache_clear()
        gc.collect()
