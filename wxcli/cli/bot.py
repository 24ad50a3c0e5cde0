"""``wx ask``, ``wx chat`` and ``wx flow list``: the bot from the terminal.

``ask`` and ``chat`` run the same engine as the server over ``build/wx.db``
(recompiled first when the bot's sources are newer) and a scratch state,
``var/try-state.db``, so flows and menus carry on between commands while the
real sessions, leads and message log in ``var/state.db`` stay untouched
(``--state`` chooses another file). ``chat --url`` instead talks to a running
server exactly as WeChat does: signed, and encrypted in safe mode.
"""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING, Optional

import typer

from wxcli.cli._common import console, err_console, handle_errors, print_json, print_records, project_here
from wxcli.errors import ContentError, WxError
from wxcli.project import Project

if TYPE_CHECKING:
    from wxcli.bot.db import CompiledBot
    from wxcli.state import StateStore

# The bot, the protocol and the state store load when a command here runs: every other
# ``wx`` command (article new, article list…) would otherwise pay for importing them.

ACCOUNT = "gh_wxcli"
DEFAULT_USER = "wx-cli"
TRY_STATE = "try-state.db"
HISTORY_FILE = "chat-history"
CHAT_HELP = """直接输入文字就是用户发来的文字消息。其他命令：
  /subscribe、/unsubscribe     关注、取消关注事件
  /scan 场景值                  扫码事件
  /click 菜单KEY                点击菜单
  /view 网址                    点击菜单里的链接
  /location 纬度 经度 [名称]     发送位置
  /image                        发送一张图片
  /voice 识别出的文字            发送语音
  /user 名字                    换一个用户（openid）
  /reset                        清掉当前用户的会话：退出流程和“您是不是想问”菜单
  /why                          上一条回复为什么是这样：命中的规则、分数、次优候选、所在流程节点
  /help                         显示这段说明
  /quit                         退出（Ctrl+D 也可以）
上下方向键翻看输入过的内容。"""

flow_app = typer.Typer(help="流程：列表。", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("chat")(chat)
    app.add_typer(flow_app, name="flow")


# ---------------------------------------------------------------- the compiled bot


def fresh_bot(project: Project) -> CompiledBot:
    """The compiled bot; ``compile_project`` recompiles ``build/wx.db`` only when a source changed.

    A command from the terminal answers a few messages, so jieba's words are looked
    up one by one rather than its whole dictionary loaded (same segmentation).
    """
    from wxcli.bot import compile_project
    from wxcli.bot.db import CompiledBot
    from wxcli.bot.text import use_indexed_dictionary

    use_indexed_dictionary()
    result = compile_project(project)
    if not result.reused:
        for warning in result.warnings:
            err_console.print(f"警告：{warning}", markup=False, soft_wrap=True)
        err_console.print(f"已编译机器人数据库 {project.relative(result.path)}（{result.answers} 条应答，{result.flows} 个流程）")
    return CompiledBot(result.path)


# ---------------------------------------------------------------- messages


def _message_xml(user: str, msg_type: str, fields: dict) -> str:
    from wxcli import wechat

    base = {"ToUserName": ACCOUNT, "FromUserName": user, "CreateTime": int(time.time()), "MsgType": msg_type}
    if msg_type != "event":
        base["MsgId"] = time.time_ns() // 1000
    return wechat.build_message_xml({**base, **fields})


def parse_line(line: str, user: str) -> tuple[str | None, str]:
    """A chat line → (message XML, or None for a simulator command; the new user).

    Plain text is a text message; ``/subscribe``, ``/unsubscribe``, ``/scan KEY``,
    ``/click KEY``, ``/view URL``, ``/location LAT LNG [名称]``, ``/image``,
    ``/voice 识别文字`` send other message types; ``/user NAME`` switches user.
    """
    if not line.startswith("/"):
        return _message_xml(user, "text", {"Content": line}), user
    try:
        words = shlex.split(line[1:])
    except ValueError:
        words = line[1:].split()
    command, args = (words[0].lower(), words[1:]) if words else ("", [])
    if command == "user" and args:
        return None, args[0]
    if command in ("subscribe", "unsubscribe"):
        return _message_xml(user, "event", {"Event": command}), user
    if command in ("scan", "click", "view") and args:
        event = {"scan": "SCAN", "click": "CLICK", "view": "VIEW"}[command]
        return _message_xml(user, "event", {"Event": event, "EventKey": args[0]}), user
    if command == "location" and len(args) >= 2:
        fields = {"Location_X": args[0], "Location_Y": args[1], "Scale": 15, "Label": " ".join(args[2:]) or "我的位置"}
        return _message_xml(user, "location", fields), user
    if command == "image":
        return _message_xml(user, "image", {"PicUrl": "https://example.com/a.jpg", "MediaId": "media-cli"}), user
    if command == "voice":
        return _message_xml(user, "voice", {"MediaId": "media-cli", "Format": "amr", "Recognition": " ".join(args)}), user
    raise WxError(f"不认识的命令 {line!r}。可用：/subscribe /unsubscribe /scan KEY /click KEY /view URL "
                  "/location 纬度 经度 [名称] /image /voice 文字 /user 名字 /quit")


def _reply_text(reply: dict) -> str:
    """A reply as parsed by wechat.parse_reply, for the terminal."""
    from wxcli.bot import replies

    kind = reply.get("MsgType")
    if not reply:
        return "（不回复）"
    if kind == "text":
        return reply.get("Content", "")
    if kind == "news":
        items = [{"title": a.get("Title", ""), "description": a.get("Description", ""), "url": a.get("Url", "")}
                 for a in reply.get("Articles", [])]
        return replies.as_plain(replies.news(items))
    if kind == "image":
        return f"【图片】{reply.get('MediaId', '')}"
    return str(reply)


def post_to_server(url: str, project: Project, xml: str, *, timeout: float = 10.0) -> dict:
    """Send ``xml`` to a running server as WeChat would; the parsed reply."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from wxcli import wechat

    settings = project.wechat
    if not settings.token:
        raise WxError("没有配置 token（wx.toml [wechat] token 或环境变量 WX_TOKEN）")
    crypto = None
    if settings.safe_mode:
        crypto = wechat.Crypto(settings.token, settings.encoding_aes_key, settings.app_id)
        body, params = wechat.encrypt_request(crypto, xml)
    else:
        body, params = xml.encode("utf-8"), wechat.signed_query(settings.token)
    separator = "&" if urllib.parse.urlparse(url).query else "?"
    request = urllib.request.Request(url + separator + urllib.parse.urlencode(params), data=body,
                                     headers={"Content-Type": "text/xml; charset=utf-8"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise WxError(f"服务器返回 {exc.code}：{exc.read()[:200].decode('utf-8', 'replace')}") from None
    except urllib.error.URLError as exc:
        raise WxError(f"连不上 {url}：{exc.reason}") from None
    return wechat.parse_reply(raw, crypto)


# ---------------------------------------------------------------- trying the bot


def try_state_path(project: Project, state: str | None) -> "Path":
    """Where ``wx ask``/``wx chat`` keep sessions and leads: a scratch file unless ``--state`` names one."""
    from pathlib import Path

    return Path(state).resolve() if state else project.var_dir / TRY_STATE


def where_in_flow(outcome) -> str | None:
    """``流程 credit-card · 节点 apply`` while the user is inside a flow after this reply."""
    if not outcome.flow:
        return None
    step = f" · 第 {outcome.step} 步" if outcome.step else ""
    return f"流程 {outcome.flow} · 节点 {outcome.node}{step}"


def why_lines(outcome) -> list[str]:
    """The last reply explained for ``/why``: rule, answer, score, runner-up, flow position."""
    trace = outcome.trace()
    lines = [f"规则：{trace['rule']}" + (f"（{trace['label']}）" if trace.get("label") else "")]
    if trace.get("answer"):
        lines.append(f"应答：{trace['answer']}")
    if trace.get("keyword"):
        lines.append(f"关键词：{trace['keyword']}")
    if trace.get("score") is not None:
        lines.append(f"分数：{trace['score']}")
    if trace.get("runner_up"):
        lines.append(f"次优候选：{trace['runner_up']}")
    where = where_in_flow(outcome)
    if where:
        lines.append(f"位置：{where}")
    lines.extend(f"说明：{note}" for note in trace.get("notes") or ())
    return lines


def _reset(store: StateStore, user: str) -> None:
    from wxcli.state import Exchange

    store.save(Exchange(user=user, session=None, session_changed=True))


def _readline_history(project: Project):
    """Arrow-key history for ``wx chat`` (kept in var/chat-history); None where readline is missing."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline
        return None
    path = project.var_dir / HISTORY_FILE
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError:
            pass

    return save


# ---------------------------------------------------------------- commands


STATE_HELP = f"会话和线索存放的状态库（默认 var/{TRY_STATE}，不碰正式的 var/state.db）"


@handle_errors
def ask(text: str = typer.Argument(..., help="用户发来的一句话"),
        user: str = typer.Option(DEFAULT_USER, "--user", "-u", help="用户 openid（流程和菜单按用户保存）"),
        state: Optional[str] = typer.Option(None, "--state", help=STATE_HELP, metavar="FILE"),
        as_json: bool = typer.Option(False, "--json", help="输出 JSON：回复、命中规则、分数、第二候选")) -> None:
    """用服务器同一个引擎回答一句话。"""
    from wxcli import wechat
    from wxcli.bot import replies
    from wxcli.bot.engine import converse
    from wxcli.state import StateStore

    project = project_here()
    bot = fresh_bot(project)
    store = StateStore(try_state_path(project, state))
    msg = wechat.parse_message(_message_xml(user, "text", {"Content": text}))
    outcome = converse(bot, store, msg, time.time())
    if as_json:
        print_json({"reply": outcome.reply.as_dict(), **outcome.trace()})
        return
    console.print(replies.as_plain(outcome.reply), markup=False, soft_wrap=True)
    where = where_in_flow(outcome)
    if where:
        err_console.print(f"（{where}）", markup=False)


@handle_errors
def chat(url: Optional[str] = typer.Option(None, "--url", help="正在运行的服务器地址，例如 http://127.0.0.1:8000/wechat"),
         user: str = typer.Option(DEFAULT_USER, "--user", "-u", help="用户 openid"),
         state: Optional[str] = typer.Option(None, "--state", help=STATE_HELP, metavar="FILE"),
         trace: bool = typer.Option(False, "--trace", help="本地模式下显示命中规则和分数")) -> None:
    """交互式模拟器：在终端里和公众号对话（/quit 退出，/help 查看命令）。"""
    from wxcli.bot.db import BotLoader
    from wxcli.state import StateStore

    project = project_here()
    bots = store = None
    if url is None:
        fresh_bot(project)
        bots = BotLoader(project.db_path, check_every=0)
        path = try_state_path(project, state)
        store = StateStore(path)
        err_console.print(f"本地模式（与服务器同一个引擎，状态存在 {project.relative(path)}）。"
                          "输入 /help 查看命令，/quit 退出。", markup=False, soft_wrap=True)
    else:
        mode = "安全模式（加密）" if project.wechat.safe_mode else "明文模式"
        err_console.print(f"连接 {url}，{mode}。输入 /help 查看命令，/quit 退出。")
    save_history = _readline_history(project)
    try:
        _chat_loop(project, url, user, bots, store, trace)
    finally:
        if save_history is not None:
            save_history()


def _chat_loop(project: Project, url: str | None, user: str, bots, store, trace: bool) -> None:
    from wxcli import wechat
    from wxcli.bot import replies
    from wxcli.bot.engine import converse

    last = None
    while True:
        try:
            line = input(f"{user}> ").strip()
        except (EOFError, KeyboardInterrupt):
            err_console.print()
            return
        if not line:
            continue
        if line in ("/quit", "/exit", "/q"):
            return
        if line == "/help":
            console.print(CHAT_HELP, markup=False)
            continue
        if line == "/reset":
            if store is None:
                err_console.print("连接服务器时不能清除会话；请在服务器上发“退出”。")
            else:
                _reset(store, user)
                err_console.print(f"已清除用户 {user} 的会话（流程和菜单）。")
            continue
        if line == "/why":
            if last is None:
                err_console.print("还没有本地模式的回复可以解释。" if store is not None else "连接服务器时没有 /why。")
            else:
                console.print("\n".join(why_lines(last)), markup=False, soft_wrap=True)
            continue
        try:
            xml, user = parse_line(line, user)
        except WxError as exc:
            err_console.print(str(exc), markup=False)
            continue
        if xml is None:
            err_console.print(f"已切换到用户 {user}")
            continue
        if url is not None:
            console.print(_reply_text(post_to_server(url, project, xml)), markup=False, soft_wrap=True)
            continue
        outcome = last = converse(bots.current(), store, wechat.parse_message(xml), time.time())
        console.print(replies.as_plain(outcome.reply), markup=False, soft_wrap=True)
        where = where_in_flow(outcome)
        if trace:
            score = "" if outcome.score is None else f" 分数 {outcome.score:.3f}"
            err_console.print(f"（{outcome.rule} {outcome.answer or ''}{score}{' ' + where if where else ''}）",
                              markup=False)
        elif where:
            err_console.print(f"（{where}）", markup=False)


@flow_app.command("list")
@handle_errors
def flow_list(as_json: bool = typer.Option(False, "--json", help="输出 JSON")) -> None:
    """列出所有流程：id、标题、触发词、节点数。"""
    project = project_here()
    from wxcli.bot.compiler import read_sources

    sources, ctx = read_sources(project)
    errors = [p for p in ctx.problems if p.is_error]
    rows = [
        {"id": f["id"], "title": f["title"], "triggers": f["triggers"], "nodes": len(f["nodes"]),
         "start": f["start"], "timeout": f["timeout"], "path": f["source"]}
        for f in sources.flows.values()
    ]
    if as_json:
        print_json(rows)
    else:
        print_records(["id", "文件", "节点", "标题", "触发词"],
                      [[r["id"], r["path"], str(r["nodes"]), r["title"], "、".join(r["triggers"])] for r in rows],
                      whole=(0, 1, 2))
    if errors:
        raise ContentError(errors)
