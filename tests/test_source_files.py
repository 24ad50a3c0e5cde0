"""Files from outside the project are never read or published; every unreadable file is ``path:line``."""

import sys

import pytest
from typer.testing import CliRunner

from cms_project import write_project
from wxcli.cli import _common, app
from wxcli.errors import ContentError
from wxcli.sourcefiles import read_text, write_text

runner = CliRunner()
NOT_UTF8 = "文件不是 UTF-8 编码"
SECRET = "SECRET_TOKEN_do_not_publish"


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = write_project(tmp_path / "site", git=True)
    (root / "content/media").mkdir()
    (root / "content/media/logo.png").write_bytes(b"\x89PNG logo")
    monkeypatch.chdir(root)
    monkeypatch.setattr(_common.console, "width", 200)
    return root


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    (folder / "column").mkdir(parents=True)
    article = f"---\ntitle: 外面的文件\ndate: 2026-01-01 08:00\n---\n{SECRET}\n"
    (folder / "secret.md").write_text(article, encoding="utf-8")
    (folder / "secret.txt").write_text(SECRET, encoding="utf-8")
    (folder / "column/_column.md").write_text("---\ntitle: 外面的栏目\norder: 9\n---\n简介\n", encoding="utf-8")
    (folder / "column/inner.md").write_text(article, encoding="utf-8")
    return folder


def wx(*args, input=None):
    result = runner.invoke(app, list(args), input=input)
    assert "Traceback" not in result.output and not isinstance(result.exception, (OSError, UnicodeError)), result.output
    return result


def published(root) -> str:
    site = root / "build/site"
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in site.rglob("*") if p.is_file()) if site.exists() else ""


# ---------------------------------------------------------------- links out of content/


LINKS = {
    "media file": ("content/media/env.txt", "secret.txt"),
    "proc environ": ("content/media/env2.txt", "/proc/self/environ"),
    "article": ("content/news/leak.md", "secret.md"),
    "column folder": ("content/leak", "column"),
    "media folder": ("content/media/more", "column"),
}


@pytest.mark.parametrize("name", LINKS)
def test_links_out_of_content_are_refused_by_build_and_check(site, outside, name):
    link, target = LINKS[name]
    (site / link).symlink_to(target if target.startswith("/") else outside / target)
    expected = f"{link}: 符号链接指向 content/ 之外"
    build = wx("build")
    assert build.exit_code == 1 and expected in build.output, build.output
    assert SECRET not in published(site) and "PATH=" not in published(site)
    check = wx("check")
    assert check.exit_code == 1 and expected in check.output, check.output


def test_links_that_stay_inside_content_are_followed(site):
    (site / "content/media/logo-copy.png").symlink_to("logo.png")
    result = wx("build")
    assert result.exit_code == 0, result.output
    assert (site / "build/site/media/logo-copy.png").read_bytes() == b"\x89PNG logo"
    (site / "content/more").symlink_to("card")  # a column folder linked inside content/: its articles are read
    assert "content/more/huankuan-fangshi.md:1: slug 'huankuan-fangshi' 与" in wx("check").output


def test_a_dangling_link_is_named(site):
    (site / "content/media/gone.png").symlink_to("nowhere.png")
    result = wx("build")
    assert result.exit_code == 1 and "content/media/gone.png: 符号链接指向的文件不存在" in result.output


@pytest.mark.parametrize("command", [["show"], ["set", "--title", "改了"], ["publish"], ["edit"], ["delete", "--yes"]])
def test_article_commands_only_take_files_inside_content(site, outside, command, monkeypatch):
    monkeypatch.setenv("EDITOR", f"{sys.executable} -c pass")
    before = (outside / "secret.md").read_bytes()
    result = wx("article", command[0], str(outside / "secret.md"), *command[1:])
    assert result.exit_code == 1
    assert "不是 content/ 里的文章" in result.output and result.output.count("\n") <= 2, result.output
    assert (outside / "secret.md").read_bytes() == before
    column_file = wx("article", command[0], "content/news/_column.md", *command[1:])
    assert column_file.exit_code == 1 and "不是 content/ 里的文章" in column_file.output


def test_an_article_link_out_of_content_is_not_an_article(site, outside):
    (site / "content/news/leak.md").symlink_to(outside / "secret.md")
    assert "不是 content/ 里的文章" in wx("article", "show", "content/news/leak.md").output
    assert "找不到文章" in wx("article", "show", "leak").output
    listing = wx("article", "list")
    assert "外面的文件" not in listing.stdout
    assert "content/news/leak.md: 符号链接指向 content/ 之外" in listing.output


# ---------------------------------------------------------------- encodings and file names


GBK_ARTICLE = "---\ntitle: 国庆营业安排\ndate: 2026-10-01 08:00\n---\n正文\n".encode("gbk")
GBK_LINE = f"content/news/gbk.md:2: {NOT_UTF8}"


@pytest.mark.parametrize("command", [
    ["check"], ["test"], ["ask", "信用卡怎么还款"], ["build"],
    ["article", "show", "gbk"], ["article", "set", "gbk", "--title", "新标题"], ["article", "edit", "gbk"],
])
def test_a_gbk_article_is_one_line_everywhere(site, command, monkeypatch):
    monkeypatch.setenv("EDITOR", f"{sys.executable} -c pass")
    (site / "content/news/gbk.md").write_bytes(GBK_ARTICLE)
    result = wx(*command)
    assert result.exit_code == 1 and GBK_LINE in result.output, result.output
    assert (site / "content/news/gbk.md").read_bytes() == GBK_ARTICLE


def test_delete_names_the_problem_and_still_deletes(site):
    (site / "content/news/gbk.md").write_bytes(GBK_ARTICLE)
    result = wx("article", "delete", "gbk", "--yes")
    assert result.exit_code == 0 and GBK_LINE in result.output, result.output
    assert not (site / "content/news/gbk.md").exists()


def test_list_shows_unreadable_articles_on_stderr(site):
    (site / "content/news/gbk.md").write_bytes(GBK_ARTICLE)
    result = wx("article", "list")
    assert result.exit_code == 0
    assert GBK_LINE in result.stderr and "信用卡还款方式一览" in result.stdout


def test_a_gbk_column_file_is_one_line(site):
    (site / "content/news/_column.md").write_bytes("---\ntitle: 新闻动态\norder: 1\n---\n".encode("gbk"))
    for command in (["build"], ["check"]):
        result = wx(*command)
        assert result.exit_code == 1 and f"content/news/_column.md:2: {NOT_UTF8}" in result.output, result.output


def test_a_gbk_flow_file_names_its_line(site):
    (site / "flows").mkdir()
    (site / "flows/card.yml").write_bytes("title: 信用卡\n".encode("utf-8") + "start: 开始\n".encode("gbk"))
    result = wx("check")
    assert result.exit_code == 1 and f"flows/card.yml:2: {NOT_UTF8}" in result.output, result.output


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes("\ufeff---\ntitle: 标题\n".encode("utf-8"))
    assert read_text(path).startswith("---")


def test_a_slug_too_long_for_a_file_name_is_a_clear_error(site):
    result = wx("article", "new", "很长的文章", "-c", "news", "--slug", "a" * 300)
    assert result.exit_code == 1 and "太长" in result.output, result.output
    column = wx("column", "new", "很长的栏目", "--slug", "b" * 300)
    assert column.exit_code == 1 and "太长" in column.output, column.output


def _editor(tmp_path, monkeypatch, body: str):
    script = tmp_path / "editor.py"
    script.write_text("import sys, pathlib\npath = pathlib.Path(sys.argv[1])\n" + body, encoding="utf-8")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.delenv("VISUAL", raising=False)


def test_an_editor_that_deletes_the_file(site, tmp_path, monkeypatch):
    _editor(tmp_path, monkeypatch, "path.unlink()\n")
    before = (site / "content/news/lilv-tiaozheng.md").read_bytes()
    result = wx("article", "edit", "lilv-tiaozheng")
    assert result.exit_code == 1 and "编辑器删除了临时文件" in result.output, result.output
    assert (site / "content/news/lilv-tiaozheng.md").read_bytes() == before


def test_an_editor_that_saves_gbk(site, tmp_path, monkeypatch):
    _editor(tmp_path, monkeypatch, "path.write_bytes(path.read_text(encoding='utf-8').replace('公告', '通知').encode('gbk'))\n")
    before = (site / "content/news/lilv-tiaozheng.md").read_bytes()
    result = wx("article", "edit", "lilv-tiaozheng")
    assert result.exit_code == 1 and f":2: {NOT_UTF8}" in result.output and "修改保留在" in result.output, result.output
    assert (site / "content/news/lilv-tiaozheng.md").read_bytes() == before


def test_a_gbk_wx_toml_is_one_line(site):
    (site / "wx.toml").write_bytes('[site]\ntitle = "测试银行"\n'.encode("gbk"))
    result = wx("article", "list")
    assert result.exit_code == 1 and f"wx.toml:2: {NOT_UTF8}" in result.output, result.output


def test_a_file_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "news").write_text("不是目录", encoding="utf-8")
    with pytest.raises(ContentError) as error:
        write_text(tmp_path / "news" / "a.md", "正文", "content/news/a.md")
    assert str(error.value).startswith("content/news/a.md: 无法写入文件：")


def test_a_pinyin_initials_search_still_shows_unreadable_articles(site):
    (site / "content/news/gbk.md").write_bytes(GBK_ARTICLE)
    result = wx("article", "list", "--title", "xyk")
    assert result.exit_code == 0
    assert GBK_LINE in result.stderr and "信用卡还款方式一览" in result.stdout


def test_a_column_with_an_unreadable_article_is_not_renamed(site):
    (site / "content/news/gbk.md").write_bytes(GBK_ARTICLE)
    result = wx("column", "rename", "news", "gonggao")
    assert result.exit_code == 1 and GBK_LINE in result.output, result.output
    assert (site / "content/news/gbk.md").read_bytes() == GBK_ARTICLE and not (site / "content/gonggao").exists()


def test_moving_an_article_leaves_an_unreadable_one_as_it_was(site):
    (site / "content/news/gbk.md").write_bytes(GBK_ARTICLE)
    result = wx("article", "set", "lilv-tiaozheng", "--column", "card")
    assert result.exit_code == 0, result.output
    assert (site / "content/news/gbk.md").read_bytes() == GBK_ARTICLE
    assert "/news/lilv-tiaozheng/" in (site / "content/card/lilv-tiaozheng.md").read_text(encoding="utf-8")
