"""Mass push: article → WeChat HTML with uploaded images, draft, preview, sendall/send with
clientmsgids that never send twice, delivery reports from MASSSENDJOBFINISH, refusals."""

from __future__ import annotations

import json
import shutil

import pytest

from reach_support import run_wx, sample_project, server, wx_env  # noqa: F401 - a fixture
from test_bot_support import LiveServer
from wxcli import wechat
from wxcli.bot import compile_project
from wxcli.project import load_project
from wxcli.reach.push import Audience, clientmsgid

SLUG = "shouji-yinhang-xinban-shangxian"
TABLE = "\n\n## 新旧版本对比\n\n| 功能 | 6.0 版 | 7.0 版 |\n|---|---|---|\n| 长辈版 | 无 | 有 |\n| 快捷入口 | 8 个 | 12 个 |\n"


@pytest.fixture
def root(tmp_path):
    root = sample_project(tmp_path)
    article = root / "content" / "news" / f"{SLUG}.md"
    article.write_text(article.read_text(encoding="utf-8") + TABLE, encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def thirty_followers(server):
    server.fake.add_followers(30)


@pytest.fixture
def env(root, server):
    env = wx_env(server.fake, server.url)
    assert run_wx(root, env, "users", "sync").returncode == 0
    assert run_wx(root, env, "tags", "create", "手机银行用户").returncode == 0
    (root / "vip.txt").write_text("o0000001\no0000002\no0000003\n", encoding="utf-8")
    assert run_wx(root, env, "tags", "add", "手机银行用户", "--users", "vip.txt", "--yes").returncode == 0
    return env


def test_preview_then_push_an_article_to_a_tag(root, server, env):
    fake = server.fake
    preview = run_wx(root, env, "push", SLUG, "--preview", "o0000001")
    assert preview.returncode == 0, preview.stderr
    assert fake.previews[0][0] == "o0000001" and fake.previews[0][1]["msgtype"] == "mpnews"
    assert not fake.mass  # a preview sends nothing to anyone else

    refused = run_wx(root, env, "push", SLUG, "--tag", "手机银行用户")
    assert refused.returncode == 1 and "--yes" in refused.stderr and not fake.mass
    sent = run_wx(root, env, "push", SLUG, "--tag", "手机银行用户", "--yes")
    assert sent.returncode == 0, sent.stderr
    assert "标签“手机银行用户”，约 3 人" in sent.stdout and "服务号每位关注者每月最多收到 4 条群发" in sent.stdout
    (job,) = fake.mass.values()
    assert sorted(job["audience"]) == ["o0000001", "o0000002", "o0000003"]
    draft = fake.drafts[job["message"]["mpnews"]["media_id"]][0]
    assert draft["title"] == "示例银行手机银行7.0版全新上线"
    assert draft["content_source_url"] == f"https://wx.example.com/news/{SLUG}/"
    content = draft["content"]
    assert '<img src="http://mmbiz.qpic.cn/fake/' in content  # the body image, uploaded and re-pointed
    assert "wx.example.com/media" not in content and "class=" not in content and "<script" not in content
    assert '<h2 style="' in content and '<td style="' in content
    assert '<section style="overflow-x:auto;' in content  # tables scroll sideways on a phone
    assert fake.materials[draft["thumb_media_id"]][0] == "image"  # a PNG cover goes up as an image
    uploads = [c for c, _ in fake.calls if c == "cgi-bin/media/uploadimg"]
    assert len(uploads) == 1  # preview and push share the cached upload

    again = run_wx(root, env, "push", SLUG, "--tag", "手机银行用户", "--yes")
    assert again.returncode == 0 and "已经发过了" in again.stdout
    assert len(fake.mass) == 1


def test_the_same_push_from_a_fresh_state_is_refused_by_wechat_not_sent_twice(root, server, env):
    assert run_wx(root, env, "push", "--text", "年底理财季开始了", "--all", "--yes").returncode == 0
    shutil.rmtree(root / "var")  # another machine, or a lost state database
    assert run_wx(root, env, "users", "sync").returncode == 0
    result = run_wx(root, env, "push", "--text", "年底理财季开始了", "--all", "--yes")
    assert result.returncode == 0, result.stderr
    assert len(server.fake.mass) == 1
    data = json.loads(run_wx(root, env, "push", "list", "--json").stdout)
    assert data[0]["sends"][0]["status"] == "duplicate"


def test_openid_lists_go_ten_thousand_a_call_each_with_its_own_clientmsgid(root, server):
    fake = server.fake
    fake.add_followers(25_000, start=100)
    env = wx_env(fake, server.url)
    ids = list(fake.followers)[:25_000]
    (root / "many.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    result = run_wx(root, env, "push", "--text", "网点春节营业安排", "--users", "many.txt", "--yes")
    assert result.returncode == 0, result.stderr
    sends = [b for c, b in fake.calls if c == "cgi-bin/message/mass/send"]
    assert [len(s["touser"]) for s in sends] == [10_000, 10_000, 5_000]
    keys = [s["clientmsgid"] for s in sends]
    assert len(set(keys)) == 3 and all(len(k.encode()) <= 64 for k in keys)
    run_wx(root, env, "push", "--text", "网点春节营业安排", "--users", "many.txt", "--yes")
    assert len([c for c, _ in fake.calls if c == "cgi-bin/message/mass/send"]) == 3


def test_clientmsgid_depends_on_content_and_audience():
    a = clientmsgid("text:x", Audience("tag", 100, "t").key(), 0)
    assert a == clientmsgid("text:x", Audience("tag", 100, "t").key(), 0)
    assert a != clientmsgid("text:y", Audience("tag", 100, "t").key(), 0)
    assert a != clientmsgid("text:x", Audience("tag", 101, "t").key(), 0)
    assert a != clientmsgid("text:x", Audience("tag", 100, "t").key(), 1)
    assert Audience("users", openids=("b", "a")).key() == Audience("users", openids=("a", "b")).key()


def test_drafts_and_articles_with_errors_are_refused(root, server, env):
    draft = run_wx(root, env, "push", "2027-yuandan-wangdian-yingye-anpai", "--all", "--yes")
    assert draft.returncode == 1 and "这是草稿" in draft.stderr
    broken = root / "content" / "card" / "xinyongka-nianfei-shuoming.md"
    broken.write_text(broken.read_text(encoding="utf-8").replace("title:", "pinned: 也许\ntitle:", 1), encoding="utf-8")
    result = run_wx(root, env, "push", "xinyongka-nianfei-shuoming", "--all", "--yes")
    assert result.returncode == 1 and "content/card/xinyongka-nianfei-shuoming.md:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not server.fake.mass and not server.fake.drafts


def test_quota_used_up_is_a_clear_error_and_the_push_is_marked_failed(root, server, env):
    server.fake.mass_quota = 0
    result = run_wx(root, env, "push", "--text", "测试", "--all", "--yes")
    assert result.returncode == 1 and "群发次数已用完" in result.stderr and "errcode 45028" in result.stderr
    pushes = json.loads(run_wx(root, env, "push", "list", "--json").stdout)
    assert pushes[0]["status"] == "failed"


def test_masssendjobfinish_fills_the_delivery_report(root, server, env):
    assert run_wx(root, env, "push", "--text", "您的专属理财经理已上线", "--tag", "手机银行用户", "--yes").returncode == 0
    (job,) = server.fake.mass.values()
    project = load_project(root, environ={})
    compile_project(project)
    live = LiveServer(project)
    try:
        event = {**server.fake.finish_event(job["msg_id"]), "ErrorCount": 1, "SentCount": 2}
        status, _ = live.post(wechat.build_message_xml(event))
        assert status == 200
    finally:
        live.close()
    status = run_wx(root, env, "push", "status", "1")
    assert "总数 3，过滤后 3，发送成功 2，失败 1" in status.stdout
    data = json.loads(run_wx(root, env, "push", "status", "1", "--json").stdout)
    assert (data["status"], data["total"], data["sent"], data["errors"]) == ("finished", 3, 2, 1)
    assert data["msg_ids"] == [job["msg_id"]]
    stats = json.loads(run_wx(root, env, "stats", "--json").stdout)["reach"]
    assert stats["pushes"][0]["sent"] == 2 and stats["followers"] == 30
    assert "群发 #1" in run_wx(root, env, "stats").stdout


def test_image_push_uploads_a_permanent_image(root, server, env):
    result = run_wx(root, env, "push", "--image", "content/media/2026/jifen.png", "--tag", "手机银行用户", "--yes")
    assert result.returncode == 0, result.stderr
    (job,) = server.fake.mass.values()
    assert server.fake.materials[job["message"]["image"]["media_id"]][0] == "image"


def test_push_needs_one_audience_and_one_thing_to_send(root, server, env):
    assert "--tag、--all 或 --users" in run_wx(root, env, "push", SLUG).stderr
    assert "三者选一" in run_wx(root, env, "push", SLUG, "--text", "x", "--all").stderr
    assert "没有推送 #9" in run_wx(root, env, "push", "status", "9").stderr
