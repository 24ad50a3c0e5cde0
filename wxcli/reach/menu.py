"""The custom menu: ``flows/menu.yml`` checked against WeChat's limits, turned into
``menu/create`` (+ ``menu/addconditional`` per tag) JSON, and compared with what
WeChat has now.

```yaml
buttons:
  - name: 办业务
    buttons:
      - {name: 办信用卡, click: credit-card}     # an answer id or flow id
      - {name: 附近网点, location: true}         # location_select
  - {name: 最新活动, view: xinyongka-jifen-duihuan-guize}   # article slug or https URL
for_tags:
  私人银行客户:
    - {name: 专属服务, click: private-banking}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from wxcli.api.errors import ApiError
from wxcli.bot import yamlsrc
from wxcli.bot.compiler import MENU_FILE
from wxcli.errors import ContentError, Problem, WxError

LOCATION_KEY = "location"
TOP_MAX, SUB_MAX = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES, KEY_BYTES, URL_BYTES = 16, 60, 128, 1024
TAG_MAX = 30
_KINDS = ("click", "view", "location")


@dataclass
class Button:
    name: str
    line: int
    kind: str | None = None  # click | view | location; None for a group of sub-buttons
    value: str = ""
    subs: list["Button"] = field(default_factory=list)


@dataclass
class Menu:
    path: str
    buttons: list[Button]
    for_tags: dict[str, list[Button]] = field(default_factory=dict)
    tag_lines: dict[str, int] = field(default_factory=dict)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def menu_path(project):
    return project.flows_dir / MENU_FILE


def read_menu(project) -> tuple[Menu | None, list[Problem]]:
    """flows/menu.yml (None when there is none) and the problems of its shape."""
    path = menu_path(project)
    if not path.is_file():
        return None, []
    shown = project.relative(path)
    problems: list[Problem] = []
    try:
        data = yamlsrc.load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, [Problem(shown, 1, "文件不是 UTF-8 编码")]
    except yamlsrc.YamlError as exc:
        return None, [Problem(shown, exc.line, str(exc))]
    if not isinstance(data, dict) or "buttons" not in data:
        return None, [Problem(shown, getattr(data, "line", 1), "菜单文件应以 buttons: 开头，列出一级按钮")]
    for key in data:
        if key not in ("buttons", "for_tags"):
            problems.append(Problem(shown, data.line_of(key), f"菜单文件里不认识的字段 {key!r}（可用：buttons、for_tags）"))
    menu = Menu(shown, _buttons(data["buttons"], shown, data.line_of("buttons"), problems, top=True))
    tags = data.get("for_tags") or {}
    if not isinstance(tags, dict):
        problems.append(Problem(shown, data.line_of("for_tags"), "for_tags 应是“标签名: 按钮列表”的映射"))
        tags = {}
    for tag, buttons in tags.items():
        line = tags.line_of(tag)
        if not isinstance(tag, str) or not tag.strip() or len(tag) > TAG_MAX:
            problems.append(Problem(shown, line, f"标签名 {tag!r} 应是 1–{TAG_MAX} 个字"))
            continue
        menu.for_tags[tag] = _buttons(buttons, shown, line, problems, top=True)
        menu.tag_lines[tag] = line
    return menu, problems


def _buttons(items, shown: str, line: int, problems: list[Problem], *, top: bool) -> list[Button]:
    low, high = (1, TOP_MAX) if top else (1, SUB_MAX)
    what = "一级按钮" if top else "子按钮"
    if not isinstance(items, list):
        problems.append(Problem(shown, line, f"{what}应是列表"))
        return []
    if not low <= len(items) <= high:
        problems.append(Problem(shown, line, f"{what}应有 {low}–{high} 个，现在有 {len(items)} 个（微信的限制）"))
    buttons = []
    for index, item in enumerate(items):
        at = items.line_of(index)
        button = _button(item, shown, at, problems, top=top)
        if button is not None:
            buttons.append(button)
    return buttons


def _button(item, shown: str, line: int, problems: list[Problem], *, top: bool) -> Button | None:
    if not isinstance(item, dict):
        problems.append(Problem(shown, line, "每个按钮应是一个映射，如 {name: 办信用卡, click: credit-card}"))
        return None
    line = item.line
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(shown, line, "按钮缺少 name（按钮上显示的文字）"))
        return None
    limit = TOP_NAME_BYTES if top else SUB_NAME_BYTES
    if _size(name) > limit:
        problems.append(Problem(shown, item.line_of("name"),
                                f"按钮名“{name}”有 {_size(name)} 字节，{'一级' if top else '子'}按钮最多 {limit} 字节"
                                f"（约 {limit // 3} 个汉字）"))
    allowed = {"name", "buttons", *_KINDS} if top else {"name", *_KINDS}
    for key in item:
        if key not in allowed:
            hint = "（子按钮下不能再有 buttons，微信只有两级菜单）" if key == "buttons" else ""
            problems.append(Problem(shown, item.line_of(key), f"按钮里不认识的字段 {key!r}{hint}"))
    kinds = [k for k in (*_KINDS, "buttons") if k in item and k in allowed]
    if len(kinds) != 1:
        problems.append(Problem(shown, line, f"按钮“{name}”应有且只有 click、view、location、buttons 中的一个"))
        return None
    kind = kinds[0]
    if kind == "buttons":
        return Button(name.strip(), line, subs=_buttons(item["buttons"], shown, item.line_of("buttons"), problems, top=False))
    value = item[kind]
    at = item.line_of(kind)
    if kind == "location":
        if value is not True:
            problems.append(Problem(shown, at, "location 应写成 location: true（弹出位置选择器）"))
        return Button(name.strip(), line, "location", LOCATION_KEY)
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(shown, at, f"{kind} 应是一段文字"))
        return None
    value = value.strip()
    if kind == "click" and _size(value) > KEY_BYTES:
        problems.append(Problem(shown, at, f"click 的 key 最多 {KEY_BYTES} 字节"))
    return Button(name.strip(), line, kind, value)


def menu_problems(project, menu: Menu | None, *, answer_ids: set[str], flow_ids: set[str],
                  slugs: set[str]) -> list[Problem]:
    """References: every click names an answer or flow, every view an article or an https URL."""
    if menu is None:
        return []
    problems = []
    for button in _leaves(menu):
        if button.kind == "click" and button.value not in answer_ids and button.value not in flow_ids:
            problems.append(Problem(menu.path, button.line,
                                    f"按钮“{button.name}”的 click: {button.value} 不是已有的应答 id 或流程 id"))
        if button.kind == "view":
            if re.match(r"^[a-z][a-z0-9+.-]*:", button.value, re.I):
                if not button.value.startswith("https://"):
                    problems.append(Problem(menu.path, button.line, f"按钮“{button.name}”的网址应以 https:// 开头"))
                elif _size(button.value) > URL_BYTES:
                    problems.append(Problem(menu.path, button.line, f"网址最多 {URL_BYTES} 字节"))
            elif button.value not in slugs:
                problems.append(Problem(menu.path, button.line,
                                        f"按钮“{button.name}”的 view: {button.value} 不是已发布文章的 slug，也不是 https 网址"))
            elif not project.base_url.startswith("https://"):
                problems.append(Problem(menu.path, button.line,
                                        "菜单链接文章需要 wx.toml [site] base_url 是 https:// 开头的网址"))
    return problems


def _leaves(menu: Menu):
    for buttons in (menu.buttons, *menu.for_tags.values()):
        for button in buttons:
            yield from (button.subs if button.kind is None else [button])


def check_project_menu(project, sources, content) -> list[Problem]:
    """What ``wx check`` reports about flows/menu.yml."""
    menu, problems = read_menu(project)
    answer_ids = {a.name for a in sources.answers}
    slugs = {a.slug for a in content.articles if not a.draft}
    return problems + menu_problems(project, menu, answer_ids=answer_ids, flow_ids=set(sources.flows), slugs=slugs)


# ---------------------------------------------------------------- WeChat's JSON


def _wechat_button(button: Button, urls: dict[str, str]) -> dict:
    if button.kind is None:
        return {"name": button.name, "sub_button": [_wechat_button(b, urls) for b in button.subs]}
    if button.kind == "click":
        return {"type": "click", "name": button.name, "key": button.value}
    if button.kind == "location":
        return {"type": "location_select", "name": button.name, "key": button.value}
    return {"type": "view", "name": button.name, "url": urls.get(button.value, button.value)}


def wechat_menu(menu: Menu, urls: dict[str, str]) -> dict:
    """``{"button": [...], "conditional": {tag name: [...]}}``; ``urls`` maps article slugs to absolute URLs."""
    return {"button": [_wechat_button(b, urls) for b in menu.buttons],
            "conditional": {tag: [_wechat_button(b, urls) for b in buttons] for tag, buttons in menu.for_tags.items()}}


def load_menu(project) -> dict:
    """flows/menu.yml as WeChat's JSON, after the same checks as ``wx check`` (ContentError otherwise)."""
    from wxcli.bot import compiler
    from wxcli.content import load_content

    content = load_content(project)
    sources, _ctx = compiler.read_sources(project, content=content)
    problems = [p for p in check_project_menu(project, sources, content) if p.is_error]
    menu, _ = read_menu(project)
    if menu is None and not problems:
        raise WxError(f"没有菜单文件 flows/{MENU_FILE}（格式见 README“营销”一节）")
    if problems:
        raise ContentError(problems)
    urls = {a.slug: f"{project.base_url}{a.url_path}" for a in content.articles}
    return wechat_menu(menu, urls)


def _clean(button: dict) -> dict:
    """A button as WeChat returns it, without the fields menu/get adds."""
    if "sub_button" in button and (isinstance(button["sub_button"], list) or "list" in button["sub_button"]):
        subs = button["sub_button"]
        subs = subs.get("list", []) if isinstance(subs, dict) else subs
        if subs:
            return {"name": button["name"], "sub_button": [_clean(b) for b in subs]}
    return {k: button[k] for k in ("type", "name", "key", "url") if k in button}


def remote_menu(data: dict, tags: dict[int, str]) -> dict:
    """``menu/get``'s answer in :func:`wechat_menu`'s shape (conditional menus by tag name)."""
    menu = data.get("menu") or {}
    conditional = {}
    for item in data.get("conditionalmenu") or []:
        tag_id = (item.get("matchrule") or {}).get("tag_id", "")
        name = tags.get(int(tag_id), f"标签#{tag_id}") if str(tag_id).isdigit() else f"规则{item.get('menuid')}"
        conditional[name] = [_clean(b) for b in item.get("button", [])]
    return {"button": [_clean(b) for b in menu.get("button", [])], "conditional": conditional}


def conditional_ids(data: dict) -> list[str]:
    return [str(item["menuid"]) for item in data.get("conditionalmenu") or [] if "menuid" in item]


def _describe(button: dict) -> str:
    kind = button.get("type")
    if kind == "click":
        return f"点击 → {button.get('key')}"
    if kind == "view":
        return f"链接 → {button.get('url')}"
    if kind == "location_select":
        return "发送位置"
    return str(kind)


def flatten(menu: dict) -> dict[str, str]:
    """``{"默认菜单 › 办业务 › 办信用卡": "点击 → credit-card", ...}``: one line per leaf, in order."""
    lines: dict[str, str] = {}
    groups = [("默认菜单", menu.get("button", []))] + [(f"标签“{t}”", b) for t, b in menu.get("conditional", {}).items()]
    for group, buttons in groups:
        for index, button in enumerate(buttons, 1):
            if "sub_button" in button:
                for sub_index, sub in enumerate(button["sub_button"], 1):
                    lines[f"{group} › {index}.{button['name']} › {sub_index}.{sub['name']}"] = _describe(sub)
            else:
                lines[f"{group} › {index}.{button['name']}"] = _describe(button)
    return lines


def diff(local: dict, remote: dict) -> list[str]:
    """The change pushing ``local`` makes to ``remote``: ``+``, ``-`` and ``~`` lines."""
    mine, theirs = flatten(local), flatten(remote)
    lines = []
    for key, value in mine.items():
        if key not in theirs:
            lines.append(f"+ {key}：{value}")
        elif theirs[key] != value:
            lines.append(f"~ {key}：{theirs[key]} ⇒ {value}")
    lines += [f"- {key}：{value}" for key, value in theirs.items() if key not in mine]
    return lines


def render_tree(menu: dict) -> str:
    """The menu as indented text (``wx menu show``)."""
    out = []
    groups = [("默认菜单", menu.get("button", []))] + [(f"标签“{t}”的个性化菜单", b)
                                                   for t, b in menu.get("conditional", {}).items()]
    for group, buttons in groups:
        out.append(group)
        for button in buttons:
            if "sub_button" in button:
                out.append(f"  ▸ {button['name']}")
                out += [f"      · {sub['name']}  （{_describe(sub)}）" for sub in button["sub_button"]]
            else:
                out.append(f"  ▸ {button['name']}  （{_describe(button)}）")
    return "\n".join(out)


def push_menu(api, menu: dict, tag_ids: dict[str, int]) -> list[str]:
    """Publish: the default menu (which removes the old conditional ones), then one
    conditional menu per tag; returns their menu ids."""
    missing = [t for t in menu.get("conditional", {}) if t not in tag_ids]
    if missing:
        raise WxError(f"微信上还没有标签：{'、'.join(missing)}（先 wx tags create 标签名，再推送菜单）")
    current = api.menu_get()
    api.menu_create(menu["button"])
    for menu_id in conditional_ids(current):
        try:
            api.menu_delete_conditional(menu_id)
        except ApiError as exc:
            if exc.code != 65301:  # 65301: menu/create already removed it
                raise
    return [api.menu_add_conditional(buttons, tag_ids[tag]) for tag, buttons in menu.get("conditional", {}).items()]
