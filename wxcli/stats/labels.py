"""Chinese names for the codes stored in the message log (JSON keeps the codes)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

TYPES = {
    "text": "文字",
    "image": "图片",
    "voice": "语音",
    "video": "视频",
    "shortvideo": "小视频",
    "location": "位置",
    "link": "链接",
    "event:subscribe": "关注",
    "event:unsubscribe": "取消关注",
    "event:SCAN": "扫码",
    "event:LOCATION": "上报位置",
    "event:CLICK": "菜单点击",
    "event:VIEW": "菜单跳转",
}
RULES = {
    "event": "事件",
    "flow": "流程",
    "exact": "精确匹配",
    "contains": "包含匹配",
    "regex": "正则匹配",
    "smart": "智能匹配",
    "menu": "您是不是想问",
    "menu-pick": "菜单选择",
    "default": "默认回复",
    "none": "不回复",
    "error": "出错",
}
ENDINGS = {
    "exit": "主动退出",
    "timeout": "超时",
    "escape": "答非所问离开",
    "restart": "重新开始",
    "open": "未结束（此后没再回复）",
}


def type_label(code: str) -> str:
    return TYPES.get(code, code)


def rule_label(code: str) -> str:
    return RULES.get(code, code)


def ending_label(code: str) -> str:
    return ENDINGS.get(code, code)


def period_label(since: str | None, until: str | None, days: list[dict], timezone: str) -> str:
    """The report's period for people: ``2026-11-01 至 2026-11-30（Asia/Shanghai）``.

    ``until`` is stored exclusive; it is shown as the last moment included, and a
    whole day (00:00 … 23:59:59) is shown as just its date.
    """
    if since:
        start = datetime.fromisoformat(since)
        first = start.strftime("%Y-%m-%d" if start.time() == time() else "%Y-%m-%d %H:%M")
    else:
        first = days[0]["date"] if days else "最早"
    if until:
        end = datetime.fromisoformat(until) - timedelta(seconds=1)
        last = end.strftime("%Y-%m-%d" if end.time() == time(23, 59, 59) else "%Y-%m-%d %H:%M:%S")
    else:
        last = days[-1]["date"] if days else "最新"
    return f"{first} 至 {last}（{timezone}）"
