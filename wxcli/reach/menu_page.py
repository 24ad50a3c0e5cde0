"""The custom menu drawn as a phone shows it, for the review page: the bar at the
bottom of the chat with up to three buttons, each sub-menu open above its button."""

from __future__ import annotations

from html import escape

from wxcli.errors import WxError
from wxcli.reach.menu import read_menu, wechat_menu

STYLE = """
.phones{display:flex;flex-wrap:wrap;gap:24px}
.phone{width:300px;border:10px solid #1f2933;border-radius:28px;background:#ededed;overflow:hidden}
.phone .label{background:#f7f7f7;text-align:center;padding:8px;font-weight:600;border-bottom:1px solid #d9d9d9}
.phone .chat{height:300px;position:relative}
.phone .bar{display:flex;border-top:1px solid #d0d0d0;background:#f7f7f7;height:48px}
.phone .kbd{width:44px;border-right:1px solid #d0d0d0;display:flex;align-items:center;justify-content:center;color:#888}
.phone .btn{flex:1;min-width:0;text-align:center;position:relative;display:flex;align-items:center;justify-content:center;border-left:1px solid #d0d0d0;font-size:14px}
.phone .btn:first-of-type{border-left:0}
.phone .subs{position:absolute;bottom:56px;left:4px;right:4px;background:#fff;border:1px solid #d0d0d0;border-radius:4px;font-size:12px}
.phone .subs div{padding:6px 4px;border-top:1px solid #eee;text-align:center}
.phone .subs div:first-child{border-top:0}
.phone .hint{display:block;color:#667085;font-size:10px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
"""


def _hint(button: dict) -> str:
    kind = button.get("type")
    if kind == "click":
        return f"→ {button.get('key')}"
    if kind == "view":
        url = str(button.get("url", ""))
        path = url.split("://", 1)[-1].partition("/")[2].strip("/")
        shown = path.rsplit("/", 1)[-1] or url
        return f"↗ {shown[:22]}…" if len(shown) > 23 else f"↗ {shown}"
    return "发送位置" if kind == "location_select" else ""


def _phone(label: str, buttons: list[dict]) -> str:
    cells = []
    for button in buttons:
        subs = ""
        if "sub_button" in button:
            subs = '<div class="subs">' + "".join(
                f'<div>{escape(s["name"])}<span class="hint">{escape(_hint(s))}</span></div>'
                for s in button["sub_button"]) + "</div>"
            text = f"≡ {escape(button['name'])}"
        else:
            text = f'{escape(button["name"])}<span class="hint">{escape(_hint(button))}</span>'
        cells.append(f'<div class="btn"><span>{text}</span>{subs}</div>')
    return (f'<div class="phone"><div class="label">{escape(label)}</div><div class="chat"></div>'
            f'<div class="bar"><div class="kbd">⌨</div>{"".join(cells)}</div></div>')


def menu_section(project, articles: dict) -> str:
    """The review page's "自定义菜单" section (empty when the project has no flows/menu.yml)."""
    try:
        menu, problems = read_menu(project)
    except WxError:
        return ""
    if menu is None:
        return ""
    urls = {slug: f"{project.base_url}{a.url_path}" for slug, a in articles.items()}
    data = wechat_menu(menu, urls)
    phones = [_phone("默认菜单", data["button"])]
    phones += [_phone(f"标签“{tag}”", buttons) for tag, buttons in data["conditional"].items()]
    note = f'<p class="note">菜单文件有 {len(problems)} 个问题，见检查结果。</p>' if problems else ""
    return (f'<section id="menu"><style>{STYLE}</style><h2>自定义菜单</h2>'
            f'<p class="meta">{escape(menu.path)}：手机上看到的样子（子菜单展开显示）。</p>{note}'
            f'<div class="phones">{"".join(phones)}</div></section>')
