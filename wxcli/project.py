"""Find a project's root and read its settings (wx.toml plus environment overrides)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wxcli.errors import WxError, display_path
from wxcli.sourcefiles import read_text

CONFIG_NAME = "wx.toml"
ENV_OVERRIDES = {
    "WX_TOKEN": "token",
    "WX_APP_ID": "app_id",
    "WX_ENCODING_AES_KEY": "encoding_aes_key",
    "WX_API_BASE": "api_base",
}
DEFAULT_API_BASE = "https://api.weixin.qq.com"


class ProjectNotFound(WxError):
    pass


@dataclass(frozen=True)
class WechatSettings:
    token: str = ""
    app_id: str = ""
    encoding_aes_key: str = ""
    api_base: str = DEFAULT_API_BASE
    """Where WeChat's HTTPS API is (a loopback fake in tests, a proxy in staging)."""

    @property
    def safe_mode(self) -> bool:
        return bool(self.encoding_aes_key)


@dataclass(frozen=True)
class Project:
    root: Path
    config: dict = field(default_factory=dict)
    wechat: WechatSettings = field(default_factory=WechatSettings)

    @property
    def site(self) -> dict:
        return self.config.get("site", {})

    @property
    def bot(self) -> dict:
        return self.config.get("bot", {})

    @property
    def timezone(self) -> ZoneInfo:
        name = self.site.get("timezone", "Asia/Shanghai")
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise WxError(f"{CONFIG_NAME}: 未知时区 {name!r}") from exc

    @property
    def base_url(self) -> str:
        return str(self.site.get("base_url", "")).rstrip("/")

    @property
    def summary_length(self) -> int:
        return int(self.site.get("summary_length", 100))

    content_dir = property(lambda self: self.root / "content")
    media_dir = property(lambda self: self.root / "content" / "media")
    flows_dir = property(lambda self: self.root / "flows")
    templates_dir = property(lambda self: self.root / "site_templates")
    build_dir = property(lambda self: self.root / "build")
    site_dir = property(lambda self: self.root / "build" / "site")
    db_path = property(lambda self: self.root / "build" / "wx.db")
    cache_dir = property(lambda self: self.root / "build" / "cache")
    var_dir = property(lambda self: self.root / "var")
    state_path = property(lambda self: self.root / "var" / "state.db")
    trash_dir = property(lambda self: self.root / "var" / "trash")

    def relative(self, path: Path) -> str:
        return display_path(Path(path), self.root)


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds a wx.toml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise ProjectNotFound(f"这里不是 wxcli 项目：{here} 及其上级目录中都没有 {CONFIG_NAME}（可用 wx init 新建）")


def load_config(root: Path) -> dict:
    path = root / CONFIG_NAME
    try:
        return tomllib.loads(read_text(path, CONFIG_NAME))
    except tomllib.TOMLDecodeError as exc:
        raise WxError(f"{CONFIG_NAME}: {exc}") from exc


def wechat_settings(config: dict, environ: dict | None = None) -> WechatSettings:
    environ = os.environ if environ is None else environ
    values = {k: str(v) for k, v in config.get("wechat", {}).items() if k in ENV_OVERRIDES.values()}
    for env_name, key in ENV_OVERRIDES.items():
        if environ.get(env_name):
            values[key] = environ[env_name]
    return WechatSettings(**values)


def load_project(start: Path | None = None, environ: dict | None = None) -> Project:
    root = find_root(start)
    config = load_config(root)
    return Project(root=root, config=config, wechat=wechat_settings(config, environ))
