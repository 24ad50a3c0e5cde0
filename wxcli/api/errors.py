"""WeChat's errcodes as one Chinese line each, naming the code."""

from __future__ import annotations

from wxcli.errors import WxError

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
"""An access token WeChat no longer accepts: refresh once and retry once."""

MESSAGES = {
    -1: "微信系统繁忙，请稍后再试",
    40001: "access_token 无效（AppSecret 不对，或令牌已被另一次刷新作废）",
    40002: "grant_type 不合法",
    40003: "openid 不合法，或不是本公众号的关注者",
    40004: "媒体文件类型不合法",
    40005: "上传的文件类型不合法",
    40006: "上传的文件大小不合法",
    40007: "media_id 不合法（素材不存在或已过期）",
    40008: "消息类型不合法",
    40009: "图片太大（media/uploadimg 限 1MB，jpg/png）",
    40013: "AppID 不合法，请检查 WX_APP_ID 或 wx.toml [wechat] app_id",
    40014: "access_token 不合法",
    40016: "菜单按钮个数不合法（一级 1–3 个）",
    40017: "菜单按钮类型不合法",
    40018: "菜单按钮名称太长（一级最多 16 字节）",
    40019: "菜单按钮 key 太长（最多 128 字节）",
    40023: "子菜单按钮个数不合法（每组 1–5 个）",
    40025: "子菜单按钮名称太长（最多 60 字节）",
    40032: "openid 列表长度不合法",
    40054: "子菜单按钮网址不合法",
    40055: "菜单按钮网址不合法",
    40125: "AppSecret 不对，请检查环境变量 WX_APP_SECRET",
    40164: "调用接口的 IP 不在公众号的 IP 白名单里（公众平台 → 设置与开发 → 基本配置）",
    41001: "缺少 access_token",
    42001: "access_token 已过期",
    43004: "用户未关注公众号",
    44002: "请求体为空",
    45009: "接口调用次数已达今日上限（quota）",
    45015: "回复时间已超过 48 小时：用户 48 小时内没有给公众号发过消息，客服消息发不出去",
    45028: "群发次数已用完（订阅号每天 1 次；服务号每位关注者每月最多收到 4 次）",
    45047: "客服消息已达上限：用户上次发消息后最多可以回复 5 条",
    45056: "标签太多（一个公众号最多 100 个）",
    45057: "该标签下粉丝超过 10 万，不能删除",
    45058: "不能修改或删除系统保留的标签（0、1、2）",
    45059: "有粉丝的标签数已达上限（每人最多 20 个）",
    45064: "同一个草稿已经群发过",
    45065: "相同 clientmsgid 的群发已经提交过，不会重复发送",
    45066: "相同 clientmsgid 的群发正在提交，请 1 分钟后再试",
    45067: "clientmsgid 太长（最多 64 字节）",
    45157: "标签名已存在",
    45158: "标签名太长（最多 30 个字符）",
    45159: "标签 id 不合法",
    46003: "公众号还没有自定义菜单",
    47001: "请求的 JSON 格式不对",
    48001: "公众号没有这个接口的权限（未认证，或接口未开通）",
    49003: "openid 不属于本公众号",
    65301: "个性化菜单不存在",
    65303: "还没有默认菜单，不能创建个性化菜单",
    65304: "个性化菜单的匹配规则为空",
}


class ApiError(WxError):
    """WeChat answered an errcode (or could not be reached)."""

    def __init__(self, code: int, errmsg: str = "", api: str = ""):
        self.code = code
        self.errmsg = errmsg
        self.api = api
        super().__init__(describe(code, errmsg, api))


def describe(code: int, errmsg: str = "", api: str = "") -> str:
    """One line: what went wrong, in Chinese, with the errcode (and WeChat's own words when unknown)."""
    text = MESSAGES.get(code)
    if text is None:
        text = f"微信返回错误：{errmsg}" if errmsg else "微信返回错误"
    where = f"微信接口 {api}：" if api else "微信接口："
    return f"{where}{text}（errcode {code}）"
