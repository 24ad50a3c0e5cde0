"""flows/menu.yml: WeChat's limits at path:line in ``wx check``, ``wx menu show|diff|push``
against the fake, CLICK keys that start answers and flows, the phone on the review page."""

from __future__ import annotations

import pytest

from reach_support import root, run_wx, sample_project, server, wx_env  # noqa: F401 - fixtures
from wxcli import wechat
from wxcli.bot import compile_project, engine
from wxcli.bot.db import CompiledBot
from wxcli.project import load_project
from wxcli.reach.menu import check_project_menu
from wxcli.review.check import check_project
from wxcli.review.review_page import render_page


def test_the_sample_menu_passes_wx_check(root):
    problems = [p for p in check_project(load_project(root, environ={})) if p.path == "flows/menu.yml"]
    assert problems == []


BAD_MENU = """\
buttons:
  - name: 这个一级按钮的名字太长了吧
    buttons:
      - {name: 办卡, click: no-such-answer}
      - {name: 文章, view: no-such-article}
      - {name: 外链, view: http://example.com/}
      - {name: 位置, location: yes-please}
  - {name: 两种, click: credit-card, view: https://example.com/}
  - name: 太多
    buttons:
      - {name: a1, click: credit-card}
      - {name: a2, click: credit-card}
      - {name: a3, click: credit-card}
      - {name: a4, click: credit-card}
      - {name: a5, click: credit-card}
      - {name: a6, click: credit-card}
  - {name: 第四个, click: credit-card}
"""


def test_wx_check_names_every_broken_limit_at_its_line(root):
    (root / "flows" / "menu.yml").write_text(BAD_MENU, encoding="utf-8")
    result = run_wx(root, {}, "check")
    assert result.returncode == 1
    out = result.stdout + result.stderr
    expected = [
        "flows/menu.yml:1: 一级按钮应有 1–3 个，现在有 4 个",
        "flows/menu.yml:2: 按钮名“这个一级按钮的名字太长了吧”有 39 字节，一级按钮最多 16 字节",
        "flows/menu.yml:4: 按钮“办卡”的 click: no-such-answer 不是已有的应答 id 或流程 id",
        "flows/menu.yml:5: 按钮“文章”的 view: no-such-article 不是已发布文章的 slug",
        "flows/menu.yml:6: 按钮“外链”的网址应以 https:// 开头",
        "flows/menu.yml:7: location 应写成 location: true",
        "flows/menu.yml:8: 按钮“两种”应有且只有 click、view、location、buttons 中的一个",
        "flows/menu.yml:10: 子按钮应有 1–5 个，现在有 6 个",
    ]
    for line in expected:
        assert line in out, out


def test_menu_yml_is_not_read_as_a_flow(root):
    compile_project(load_project(root, environ={}))  # would fail on a flow without nodes
    assert "menu" not in CompiledBot(root / "build" / "wx.db").flows


def test_menu_push_lists_the_change_asks_and_then_matches(root, server):
    env = wx_env(server.fake, server.url)
    refused = run_wx(root, env, "menu", "push")
    assert refused.returncode == 1 and "--yes" in refused.stderr  # no terminal: only --yes counts as consent
    assert server.fake.menu is None
    missing_tag = run_wx(root, env, "menu", "push", "--yes")
    assert missing_tag.returncode == 1 and "私人银行客户" in missing_tag.stderr
    assert run_wx(root, env, "tags", "create", "私人银行客户").returncode == 0
    pushed = run_wx(root, env, "menu", "push", "--yes")
    assert pushed.returncode == 0, pushed.stderr
    assert "+ 默认菜单 › 1.办业务 › 1.办信用卡：点击 → credit-card" in pushed.stdout
    buttons = server.fake.menu["button"]
    assert [b["name"] for b in buttons] == ["办业务", "最新活动", "客户服务"]
    assert buttons[0]["sub_button"][3] == {"type": "location_select", "name": "附近网点", "key": "location"}
    assert buttons[1]["sub_button"][0]["url"] == "https://wx.example.com/card/xinyongka-jifen-duihuan-guize/"
    assert server.fake.conditional[0]["matchrule"] == {"tag_id": "100"}
    assert run_wx(root, env, "menu", "diff").stdout.startswith("没有不同")
    remote = run_wx(root, env, "menu", "show", "--remote")
    assert "标签“私人银行客户”的个性化菜单" in remote.stdout and "预约理财经理" in remote.stdout

    menu = (root / "flows" / "menu.yml").read_text(encoding="utf-8")
    (root / "flows" / "menu.yml").write_text(menu.replace("{name: 常见问题, click: help-menu}",
                                                          "{name: 营业时间, click: business-hours}"), encoding="utf-8")
    diff = run_wx(root, env, "menu", "diff").stdout
    assert "~ 默认菜单 › 3.客户服务 › 1.营业时间" not in diff
    assert "+ 默认菜单 › 3.客户服务 › 1.营业时间：点击 → business-hours" in diff
    assert "- 默认菜单 › 3.客户服务 › 1.常见问题：点击 → help-menu" in diff
    again = run_wx(root, env, "menu", "push", "--yes")
    assert again.returncode == 0 and len(server.fake.conditional) == 1  # replaced, not added twice


def test_menu_show_is_the_local_menu_and_errors_block_push(root, server):
    shown = run_wx(root, {}, "menu", "show")
    assert shown.returncode == 0 and "▸ 办业务" in shown.stdout and "附近网点  （发送位置）" in shown.stdout
    (root / "flows" / "menu.yml").write_text("buttons:\n  - {name: 办卡, click: nope}\n", encoding="utf-8")
    result = run_wx(root, wx_env(server.fake, server.url), "menu", "push", "--yes")
    assert result.returncode == 1 and "flows/menu.yml:2:" in result.stderr
    assert server.fake.token_calls == 0  # refused before reaching WeChat


def _click(bot, key: str):
    xml = wechat.build_message_xml({"ToUserName": "gh", "FromUserName": "u1", "CreateTime": 1, "MsgType": "event",
                                    "Event": "CLICK", "EventKey": key})
    return engine.answer(bot, None, wechat.parse_message(xml), 1.0)


def test_click_keys_start_the_flow_or_answer_they_name(root):
    project = load_project(root, environ={})
    compile_project(project)
    bot = CompiledBot(project.db_path)
    flow = _click(bot, "credit-card")
    assert flow.flow == "credit-card" and flow.rule == "event"
    answer = _click(bot, "help-menu")
    assert answer.answer == "help-menu" and "小助手可以回答" in answer.reply.text
    handover = _click(bot, "handover")
    assert handover.reply.kind == "transfer"
    unknown = _click(bot, "no-such-key")
    assert unknown.rule == "default"


def test_review_page_draws_the_menu_as_a_phone(root):
    project = load_project(root, environ={})
    page = render_page(project, [], use_svg=False)
    assert '<section id="menu">' in page
    assert '<div class="phone"><div class="label">默认菜单</div>' in page
    assert "≡ 办业务" in page and "预约理财经理" in page and "标签“私人银行客户”" in page


def test_check_function_reads_a_project_without_menu(tmp_path):
    root = sample_project(tmp_path)
    (root / "flows" / "menu.yml").unlink()
    from wxcli.bot import compiler
    from wxcli.content import load_content

    project = load_project(root, environ={})
    content = load_content(project)
    sources, _ = compiler.read_sources(project, content=content)
    assert check_project_menu(project, sources, content) == []
