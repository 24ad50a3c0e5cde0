"""The outbound WeChat API: access token, menu, followers, tags, media, drafts, mass send, customer service."""

from wxcli.api.client import DEFAULT_API_BASE, ApiSettings, WechatApi, api_settings, open_api
from wxcli.api.errors import ApiError

__all__ = ["DEFAULT_API_BASE", "ApiError", "ApiSettings", "WechatApi", "api_settings", "open_api"]
