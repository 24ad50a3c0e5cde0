"""The phone preview: an article's page as the site would show it, from text not yet saved.

Rendered by the site's own Markdown renderer and theme (the project's templates
over the sample's), with every URL under :data:`PREFIX` so the admin server can
answer the theme's static files and content/media/ beside it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from wxcli import content
from wxcli.errors import Problem
from wxcli.project import Project
from wxcli.site import model as site_model
from wxcli.site.build import read_columns
from wxcli.site.markdown import MarkdownCache, MarkdownRenderer
from wxcli.site.pages import Assets, Keys, PageRenderer, article_page
from wxcli.site.sources import entry_from_article
from wxcli.site.theme import Theme

PREFIX = "/_preview"


@dataclasses.dataclass
class PreviewResult:
    html: str = ""
    problems: list[Problem] = dataclasses.field(default_factory=list)


def preview_settings(project: Project) -> site_model.Settings:
    return dataclasses.replace(site_model.Settings.from_project(project), prefix=PREFIX, origin="")


def render_preview(project: Project, text: str, column: str, slug: str) -> PreviewResult:
    """The article page for ``text`` (a whole Markdown file) as if saved at ``content/column/slug.md``."""
    path = project.content_dir / column / f"{slug}.md"
    article, problems = content.article_from_text(text, path, project)
    if article is None:
        return PreviewResult(problems=problems)
    settings = preview_settings(project)
    renderer = MarkdownRenderer(settings.prefix)
    rendered = renderer.render(article.body, column)
    cache = MarkdownCache(project.cache_dir / "admin-preview.sqlite")
    try:
        _found, infos, _problems, _warnings = read_columns(project, renderer, cache, set(), settings)
    finally:
        cache.close()
    entry = entry_from_article(article, f"content/{column}/{slug}.md", "preview", rendered.refs, settings.prefix,
                               project.timezone)
    model = site_model.build_model(settings, infos, [entry])
    theme = Theme(project)
    assets = Assets.read(theme.static_files())
    page = article_page(model, Keys(model, theme, assets, drafts=True), entry)
    html = PageRenderer(model, theme, assets, lookup=lambda _key: rendered).render(page).decode("utf-8")
    return PreviewResult(html=html)


def theme_static(project: Project, name: str) -> Path | None:
    """The file behind ``/_preview/static/NAME``: looked up among the theme's files, never built from NAME."""
    return Theme(project).static_files().get(f"static/{name}")
