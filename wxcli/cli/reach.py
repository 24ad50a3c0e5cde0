"""``wx menu``, ``wx users``, ``wx tags``, ``wx push`` and ``wx send``: reaching
followers through WeChat's API (a thin layer over :mod:`wxcli.reach`)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from wxcli.api import open_api
from wxcli.bot import compiler
from wxcli.bot.branches import Branch
from wxcli.bot.settings import parse_duration
from wxcli.cli._common import confirm, console, err_console, fail, handle_errors, print_json, project_here
from wxcli.content import load_content
from wxcli.errors import WxError
from wxcli.project import Project
from wxcli.reach import followers as followers_mod
from wxcli.reach import kf, menu as menu_mod, push as push_mod
from wxcli.reach.segments import Segment, follower_regions, read_openids, select
from wxcli.reach.store import Follower, ReachStore, open_store

menu_app = typer.Typer(help="自定义菜单：flows/menu.yml ⇄ 微信。", no_args_is_help=True)
users_app = typer.Typer(help="关注者：从微信同步到 var/state.db，按标签、地区、活跃度筛选。", no_args_is_help=True)
tags_app = typer.Typer(help="微信用户标签（用户分组），用银行自己的数据分群打标签。", no_args_is_help=True)

STAGES = {"openids": "拉取关注者列表", "details": "拉取关注者资料", "tagging": "打标签"}


def register(app: typer.Typer) -> None:
    app.add_typer(menu_app, name="menu")
    app.add_typer(users_app, name="users")
    app.add_typer(tags_app, name="tags")
    app.command("push")(push_command)
    app.command("send")(send_command)


# ---------------------------------------------------------------- helpers


@contextmanager
def _session(project: Project | None = None):
    """(project, API client, reach store), closed afterwards."""
    project = project or project_here()
    store = open_store(project.state_path)
    try:
        with open_api(project) as api:
            yield project, api, store
    finally:
        store.close()


@contextmanager
def _progress():
    """A progress bar on stderr; yields a ``progress(stage, done, total)`` callback."""
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=False)
    tasks: dict[str, int] = {}
    with bars:
        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGES.get(stage, stage), total=total or None)
            bars.update(tasks[stage], completed=done, total=total or None)
        yield update


def _branches(project: Project) -> list[Branch]:
    ctx = compiler.ReadContext(project, {}, set())
    return [Branch(b["name"], b["address"], b["phone"], b["lat"], b["lng"], b["hours"])
            for b in compiler.read_branches(project, ctx)]


def _segment(tag: str | None, region: str | None, lead: str | None, active: str | None,
             users: Path | None) -> Segment:
    try:
        seconds = parse_duration(active) if active else None
    except ValueError as exc:
        raise WxError(f"--active：{exc}") from None
    return Segment(tag=tag, region=region, lead=lead, active=seconds,
                   users=tuple(read_openids(users)) if users else None)


def _when(project: Project, moment: float | None) -> str:
    if not moment:
        return "—"
    return datetime.fromtimestamp(moment, project.timezone).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------- menu


@menu_app.command("show")
@handle_errors
def menu_show(remote: bool = typer.Option(False, "--remote", help="显示微信上现在的菜单"),
              as_json: bool = typer.Option(False, "--json", help="输出微信接口用的 JSON")) -> None:
    """显示 flows/menu.yml 的菜单（--remote：微信上现在的菜单）。"""
    project = project_here()
    if remote:
        with _session(project) as (_, api, store):
            data = menu_mod.remote_menu(api.menu_get(), {t["id"]: t["name"] for t in
                                                         followers_mod.refresh_tags(api, store)})
    else:
        data = menu_mod.load_menu(project)
    if as_json:
        print_json(data)
    elif not data.get("button"):
        console.print("微信上还没有自定义菜单。" if remote else "菜单为空。")
    else:
        console.print(menu_mod.render_tree(data), markup=False)


@menu_app.command("diff")
@handle_errors
def menu_diff() -> None:
    """flows/menu.yml 与微信上现在的菜单有什么不同。"""
    project = project_here()
    local = menu_mod.load_menu(project)
    with _session(project) as (_, api, store):
        tags = {t["id"]: t["name"] for t in followers_mod.refresh_tags(api, store)}
        lines = menu_mod.diff(local, menu_mod.remote_menu(api.menu_get(), tags))
    console.print("\n".join(lines) if lines else "没有不同：微信上的菜单与 flows/menu.yml 一致。", markup=False)


@menu_app.command("push")
@handle_errors
def menu_push(yes: bool = typer.Option(False, "--yes", "-y", help="不询问，直接发布")) -> None:
    """把 flows/menu.yml 发布到微信（先列出改动并确认）。"""
    project = project_here()
    local = menu_mod.load_menu(project)
    with _session(project) as (_, api, store):
        tags = followers_mod.refresh_tags(api, store)
        names = {t["id"]: t["name"] for t in tags}
        lines = menu_mod.diff(local, menu_mod.remote_menu(api.menu_get(), names))
        if not lines:
            console.print("没有改动：微信上的菜单已与 flows/menu.yml 一致。")
            return
        console.print("将要发布的改动：\n" + "\n".join(lines), markup=False)
        if not confirm("发布到微信？（用户最长 5 分钟内看到新菜单）", yes=yes):
            raise typer.Exit(1)
        ids = menu_mod.push_menu(api, local, {t["name"]: int(t["id"]) for t in tags})
    extra = f"，另有 {len(ids)} 个个性化菜单" if ids else ""
    console.print(f"菜单已发布{extra}。")


# ---------------------------------------------------------------- users


@users_app.command("sync")
@handle_errors
def users_sync(full: bool = typer.Option(False, "--full", help="重新拉取每位关注者的资料（默认只拉新关注的）"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """从微信同步关注者（user/get 每次 1 万个，info/batchget 每次 100 个）和标签。"""
    with _session() as (_, api, store):
        with _progress() as progress:
            result = followers_mod.sync(api, store, full=full, progress=progress)
    if as_json:
        print_json(result.as_dict())
        return
    console.print(f"同步完成：{result.total} 位关注者（新增 {result.new}，取关 {result.gone}，"
                  f"拉取资料 {result.fetched} 位），{result.tags} 个标签，用时 {result.seconds:.1f} 秒。")


def _follower_row(project: Project, f: Follower, tags: dict[int, str], region: str) -> dict:
    return {"openid": f.openid, "subscribed": bool(f.subscribed), "subscribe_time": f.subscribe_time,
            "subscribe_scene": f.subscribe_scene, "tags": [tags.get(t, str(t)) for t in f.tagids],
            "region": region, "branch": f.branch, "located": f.located}


@users_app.command("list")
@handle_errors
def users_list(tag: Optional[str] = typer.Option(None, "--tag", help="微信标签名"),
               region: Optional[str] = typer.Option(None, "--region", help="地区：城市或区县，如 杭州、西湖区"),
               lead: Optional[str] = typer.Option(None, "--lead", help="在这个流程里留过线索的人"),
               active: Optional[str] = typer.Option(None, "--active", help="多久内发过消息，如 48h"),
               users: Optional[Path] = typer.Option(None, "--users", help="openid 文件，每行一个"),
               limit: int = typer.Option(50, "--limit", help="最多列出多少位（--json 时不限）"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """列出关注者（按上次 wx users sync 和消息日志）。"""
    project = project_here()
    segment = _segment(tag, region, lead, active, users)
    with open_store(project.state_path) as store:
        chosen = select(store, _branches(project), segment, time.time())
        tags = store.tags()
        regions = follower_regions(chosen, _branches(project), store.booked_branches())
    rows = [_follower_row(project, f, tags, regions[f.openid].label() if f.openid in regions else "")
            for f in chosen]
    if as_json:
        print_json(rows)
        return
    table = Table("openid", "关注时间", "标签", "地区", title=f"{segment.describe()}：{len(rows)} 位")
    for row in rows[:limit]:
        table.add_row(row["openid"], _when(project, row["subscribe_time"]), "、".join(row["tags"]), row["region"])
    console.print(table)
    if len(rows) > limit:
        console.print(f"……另有 {len(rows) - limit} 位（--limit 调整，--json 输出全部）")


@users_app.command("show")
@handle_errors
def users_show(openid: str = typer.Argument(..., help="关注者的 openid"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """一位关注者：标签、关注时间与渠道、最后一条消息、地区、线索。"""
    project = project_here()
    with open_store(project.state_path) as store:
        follower = store.follower(openid)
        if follower is None:
            raise WxError(f"没有这位关注者：{openid}（先运行 wx users sync）")
        tags = store.tags()
        region = follower_regions([follower], _branches(project), store.booked_branches()).get(openid)
        last = store.last_message(openid)
        leads = store.leads_of(openid)
    data = {**_follower_row(project, follower, tags, region.label() if region else ""),
            "last_message": {"time": last[0], "type": last[1], "text": last[2]} if last else None,
            "leads": [{"time": t, "flow": f, "data": d} for t, f, d in leads]}
    if as_json:
        print_json(data)
        return
    lines = [f"openid：{openid}（{'已关注' if follower.subscribed else '已取消关注'}）",
             f"关注时间：{_when(project, follower.subscribe_time)}，渠道：{follower.subscribe_scene or '—'}",
             f"标签：{'、'.join(data['tags']) or '—'}",
             f"地区：{data['region'] or '未知'}" + (f"（最近网点 {follower.branch}）" if follower.branch else ""),
             f"最后一条消息：{_when(project, last[0])} {last[2]}" if last else "最后一条消息：—"]
    lines += [f"线索：{_when(project, t)} {f} {d}" for t, f, d in leads]
    console.print("\n".join(lines), markup=False)


# ---------------------------------------------------------------- tags


@tags_app.command("list")
@handle_errors
def tags_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """微信上的标签和人数。"""
    with _session() as (_, api, store):
        tags = followers_mod.refresh_tags(api, store)
    if as_json:
        print_json(tags)
        return
    table = Table("id", "标签", "人数")
    for tag in tags:
        table.add_row(str(tag["id"]), tag["name"], str(tag.get("count", 0)))
    console.print(table)


@tags_app.command("create")
@handle_errors
def tags_create(name: str = typer.Argument(..., help="标签名（最多 30 个字）")) -> None:
    """新建标签。"""
    with _session() as (_, api, store):
        tag = followers_mod.create_tag(api, store, name)
    console.print(f"已新建标签“{tag['name']}”（id {tag['id']}）。")


@tags_app.command("rename")
@handle_errors
def tags_rename(old: str = typer.Argument(...), new: str = typer.Argument(...)) -> None:
    """标签改名。"""
    with _session() as (_, api, store):
        followers_mod.rename_tag(api, store, old, new)
    console.print(f"标签“{old}”已改名为“{new}”。")


@tags_app.command("delete")
@handle_errors
def tags_delete(name: str = typer.Argument(...), yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """删除标签（先确认；标签下的关注者不受影响，只是不再有这个标签）。"""
    with _session() as (_, api, store):
        tag = followers_mod.user_tag(followers_mod.refresh_tags(api, store), name)
        if not confirm(f"删除标签“{name}”（{tag.get('count', 0)} 人）？", yes=yes):
            raise typer.Exit(1)
        followers_mod.delete_tag(api, store, tag)
    console.print(f"已删除标签“{name}”。")


@tags_app.command("add")
@handle_errors
def tags_add(name: str = typer.Argument(..., help="标签名（须已在微信上：wx tags create）"),
             users: Optional[Path] = typer.Option(None, "--users", help="openid 文件，每行一个"),
             region: Optional[str] = typer.Option(None, "--region", help="地区：城市或区县"),
             lead: Optional[str] = typer.Option(None, "--lead", help="在这个流程里留过线索的人"),
             active: Optional[str] = typer.Option(None, "--active", help="多久内发过消息，如 48h"),
             yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """给一个分群的关注者打上标签（每次 50 人，微信的限制）。"""
    if not any((users, region, lead, active)):
        fail("请用 --users、--region、--lead 或 --active 指定给谁打标签")
    project = project_here()
    segment = _segment(None, region, lead, active, users)
    with _session(project) as (_, api, store):
        tag = followers_mod.user_tag(followers_mod.refresh_tags(api, store), name)
        chosen = select(store, _branches(project), segment, time.time())
        if segment.users is not None and len(chosen) < len(segment.users):
            err_console.print(f"注意：名单里有 {len(segment.users) - len(chosen)} 个 openid 不在已同步的关注者里"
                              "（已取关，或还没运行 wx users sync），跳过", markup=False)
        todo = [f.openid for f in chosen if int(tag["id"]) not in f.tagids]
        if not todo:
            console.print(f"{segment.describe()}：{len(chosen)} 位，都已有标签“{name}”，不用再打。")
            return
        if not confirm(f"给{segment.describe()}的 {len(todo)} 位关注者打上标签“{name}”？", yes=yes):
            raise typer.Exit(1)
        with _progress() as progress:
            done = followers_mod.tag_users(api, store, tag, todo, progress=progress)
    console.print(f"已给 {done} 位关注者打上标签“{name}”。")


@tags_app.command("remove")
@handle_errors
def tags_remove(name: str = typer.Argument(...),
                users: Path = typer.Option(..., "--users", help="openid 文件，每行一个"),
                yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """去掉名单里关注者的这个标签。"""
    openids = read_openids(users)
    with _session() as (_, api, store):
        tag = followers_mod.user_tag(followers_mod.refresh_tags(api, store), name)
        if not confirm(f"去掉 {len(openids)} 位关注者的标签“{name}”？", yes=yes):
            raise typer.Exit(1)
        with _progress() as progress:
            done = followers_mod.tag_users(api, store, tag, openids, remove=True, progress=progress)
    console.print(f"已去掉 {done} 位关注者的标签“{name}”。")


# ---------------------------------------------------------------- push


def _audience(api, store: ReachStore, tag: str | None, to_all: bool, users: Path | None) -> tuple[push_mod.Audience, int | None]:
    chosen = [x for x in (tag, to_all or None, users) if x]
    if len(chosen) != 1:
        raise WxError("请用 --tag、--all 或 --users 中的一个指定发给谁")
    if to_all:
        return push_mod.Audience("all"), store.follower_count() or None
    if tag:
        found = followers_mod.find_tag(followers_mod.refresh_tags(api, store), tag)
        return push_mod.Audience("tag", int(found["id"]), found["name"]), int(found.get("count", 0))
    openids = read_openids(users)
    if len(openids) < 2:
        raise WxError("按名单群发至少要 2 个 openid（微信的限制）；发给一个人请用 wx send")
    return push_mod.Audience("users", openids=tuple(openids)), len(openids)


def _plan(project: Project, audience: push_mod.Audience, slugs: list[str], text: str | None,
          image: Path | None) -> push_mod.Plan:
    if sum(1 for x in (slugs, text, image) if x) != 1:
        raise WxError("请给出要群发的文章 slug，或 --text 文字，或 --image 图片，三者选一")
    if text:
        return push_mod.plan_text(text, audience)
    if image:
        return push_mod.plan_image(image, audience)
    bad = [s for s in slugs if s in push_mod.RESERVED]
    if bad:
        raise WxError(f"{bad[0]} 是子命令：wx push list / wx push status ID")
    return push_mod.plan_articles(project, load_content(project), slugs, audience)


def _print_push(project: Project, push) -> None:
    counts = push.counts()
    lines = [f"推送 #{push.id}：{push.title}（{push.kind}）",
             f"  发起：{push.who}，{_when(project, push.created)}；状态：{push.status}" +
             (f"（{push.error}）" if push.error else ""),
             f"  对象：{push.audience.get('tag') or push.audience.get('mode')}，约 {push.audience_size or '?'} 人",
             f"  msg_id：{'、'.join(str(s.msg_id) for s in push.sends if s.msg_id) or '—'}"]
    if counts["finished_batches"]:
        lines.append(f"  送达报告（{counts['finished_batches']}/{counts['batches']} 批）：总数 {counts['total']}，"
                     f"过滤后 {counts['filtered']}，发送成功 {counts['sent']}，失败 {counts['errors']}")
    else:
        lines.append("  送达报告：尚未收到（微信发完后推送 MASSSENDJOBFINISH 事件到回调）")
    console.print("\n".join(lines), markup=False)


def push_command(
    targets: List[str] = typer.Argument(None, help="文章 slug（可多篇），或 list、status ID"),
    tag: Optional[str] = typer.Option(None, "--tag", help="发给这个标签的关注者"),
    to_all: bool = typer.Option(False, "--all", help="发给全部关注者"),
    users: Optional[Path] = typer.Option(None, "--users", help="发给 openid 文件里的人（每行一个）"),
    text: Optional[str] = typer.Option(None, "--text", help="群发一段文字"),
    image: Optional[Path] = typer.Option(None, "--image", help="群发一张图片"),
    preview_to: Optional[str] = typer.Option(None, "--preview", help="只发预览给这个 openid，不群发"),
    yes: bool = typer.Option(False, "--yes", "-y", help="不询问，直接群发"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """群发文章、文字或图片（先预览，显示人数与额度，确认后发送；同样的群发不会发两次）。

    wx push list：推送记录；wx push status ID：一次推送的送达报告。
    """
    targets = list(targets or [])
    try:
        if targets[:1] == ["list"]:
            return _push_list(as_json)
        if targets[:1] == ["status"]:
            if len(targets) != 2 or not targets[1].isdigit():
                raise WxError("用法：wx push status ID（ID 见 wx push list）")
            return _push_status(int(targets[1]), as_json)
        _push(targets, tag, to_all, users, text, image, preview_to, yes)
    except WxError as exc:
        fail(str(exc))


def _push(slugs, tag, to_all, users, text, image, preview_to, yes) -> None:
    project = project_here()
    with _session(project) as (_, api, store):
        if preview_to:
            plan = _plan(project, push_mod.Audience("users", openids=(preview_to,)), slugs, text, image)
            push_mod.preview(api, store, project, plan, preview_to)
            console.print(f"已把预览发给 {preview_to}，请在手机上查看；确认无误后去掉 --preview 正式群发。")
            return
        audience, size = _audience(api, store, tag, to_all, users)
        plan = _plan(project, audience, slugs, text, image)
        done = push_mod.existing_push(store, plan)
        if done is not None and all(s.status != "submitting" for s in done.sends) and \
                len(done.sends) == len(plan.clientmsgids()):
            console.print(f"这次群发已经发过了（推送 #{done.id}，{_when(project, done.created)}），不会重复发送。")
            _print_push(project, done)
            return
        console.print(f"群发：{plan.title}（{plan.kind}）→ {audience.describe()}，约 {size if size else '?'} 人"
                      + ("（人数按上次 wx users sync）" if audience.mode == "all" else ""), markup=False)
        console.print(push_mod.quota_text(project, store, time.time()), markup=False)
        if not confirm("确定群发？发出后无法撤回", yes=yes):
            raise typer.Exit(1)
        push, sent = push_mod.send(api, store, project, plan, audience_size=size)
    console.print(f"已提交群发（推送 #{push.id}，{sent} 批）。送达报告：wx push status {push.id}")


def _push_list(as_json: bool) -> None:
    project = project_here()
    with open_store(project.state_path) as store:
        pushes = store.pushes()
    if as_json:
        print_json([p.as_dict() for p in pushes])
        return
    table = Table("ID", "时间", "内容", "对象", "状态", "成功/总数")
    for p in pushes:
        counts = p.counts()
        table.add_row(str(p.id), _when(project, p.created), p.title, str(p.audience.get("tag") or p.audience.get("mode")),
                      p.status, f"{counts['sent']}/{counts['total']}" if counts["finished_batches"] else "—")
    console.print(table)


def _push_status(push_id: int, as_json: bool) -> None:
    project = project_here()
    with open_store(project.state_path) as store:
        push = store.push(push_id)
    if push is None:
        raise WxError(f"没有推送 #{push_id}（wx push list 查看）")
    if as_json:
        print_json(push.as_dict())
    else:
        _print_push(project, push)


# ---------------------------------------------------------------- customer service


@handle_errors
def send_command(openid: str = typer.Argument(..., help="关注者的 openid"),
                 text: Optional[str] = typer.Argument(None, help="文字消息"),
                 article: Optional[str] = typer.Option(None, "--article", help="发一篇文章的图文链接")) -> None:
    """给一位关注者发客服消息（用户最近一次互动后 48 小时内，最多 5 条）。"""
    if bool(text) == bool(article):
        fail("请给出文字，或用 --article SLUG 发文章，二者选一")
    with _session() as (project, api, store):
        message = kf.text_message(text) if text else kf.article_message(project, load_content(project), article)
        closes = kf.send(api, store, project, openid, message)
    console.print(f"已发送。这位用户的 48 小时窗口到 {_when(project, closes)} 为止。")
