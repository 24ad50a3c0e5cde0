"""``[bot]`` settings from wx.toml, with defaults and validation.

Answering settings (thresholds, timeouts) are compiled into ``build/wx.db`` so a
rebuild changes them without a server restart and ``wx test`` sees exactly what
the server sees. Server settings (replay window, body limit) are read when the
app starts.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from wxcli.errors import WxError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
SMART_MODES = ("fused", "lexical", "semantic")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value) -> float:
    """Seconds from ``600``, ``"30s"``, ``"10m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError(f"不是时长：{value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"时长不能为负：{value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"无法识别的时长 {value!r}，应写成 30s、10m、1h 这样的形式")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class BotSettings:
    """How the engine answers; compiled into the bot database."""

    threshold: float = 0.45
    """Smart-match score (0–1) below which the ``default`` answer is given."""
    menu_margin: float = 0.06
    """Candidates within this score of the best are offered in a “您是不是想问” menu."""
    menu_size: int = 3
    # The smart-stage defaults below come from ``python benchmarks/bot_quality.py
    # --calibrate`` on benchmarks/eval (the sample bank's suite).
    smart: str = "fused"
    """``fused`` (lexical + semantic), ``lexical`` or ``semantic``; without the model, lexical."""
    fused_threshold: float = 0.65
    """Fused score (0–1) below which the ``default`` answer is given."""
    agree_threshold: float = 0.4
    """Fused score enough to answer when both stages rank the same answer first."""
    fused_margin: float = 0.03
    """Fused candidates within this score of the best are offered in a menu."""
    lexical_weight: float = 0.6
    """Share of the lexical score in the fused score (the rest is the calibrated similarity)."""
    lexical_sure: float = 0.9
    """Lexical score at and above which (with a clear margin) the message is not embedded at all."""
    semantic_floor: float = 0.87
    """Cosine similarity that calibrates to 0 (unrelated messages score about this)."""
    semantic_ceiling: float = 0.95
    """Cosine similarity that calibrates to 1 (a close paraphrase)."""
    anchor_margin: float = 0.02
    """A message whose nearest off-topic anchor is within this cosine of its nearest
    phrasing gets ``default`` (unless the lexical stage is sure)."""
    semantic_sure: float = 0.88
    """Cosine similarity at and above which the nearest answer is given on its own,
    when it also leads the next answer by ``semantic_gap``."""
    semantic_gap: float = 0.015
    """Cosine lead over the next answer that the ``semantic_sure`` rule needs."""
    flow_timeout: float = 600.0
    """Seconds of silence after which a flow (or a pending menu) is forgotten."""
    max_misses: int = 3
    """Unrecognised replies in a row after which the user leaves the flow."""
    handover_words: tuple = ("人工", "转人工")
    """A message that is exactly one of these hands the conversation to human agents."""
    handover_after: int = 3
    """Unanswered messages in a row (within ``handover_window``) that hand over; 0 = never."""
    handover_window: float = 600.0
    kf_account: str = ""
    """The agent account (``kf@account``) hand-overs go to; empty = any agent on duty."""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BotSettings":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "handover_words" in values:
            values["handover_words"] = tuple(values["handover_words"])
        return cls(**values)


@dataclass(frozen=True)
class ServerSettings:
    replay_window: float = 300.0
    """Requests whose timestamp is further than this from now are refused."""
    body_limit: int = 64 * 1024
    """Larger request bodies get 413."""
    dedup_ttl: float = 900.0
    """How long a reply is kept for WeChat's retries (they come within ~15 s)."""


def _number(section: dict, key: str, default, kind, low, high):
    if key not in section:
        return default
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise WxError(f"wx.toml: [bot] {key} 应是 {low}–{high} 之间的数，当前为 {value!r}")
    return kind(value)


def _duration(section: dict, key: str, default: float) -> float:
    if key not in section:
        return default
    try:
        return parse_duration(section[key])
    except ValueError as exc:
        raise WxError(f"wx.toml: [bot] {key}: {exc}") from None


def _choice(section: dict, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = section.get(key, default)
    if value not in choices:
        raise WxError(f"wx.toml: [bot] {key} 应是 {'、'.join(choices)} 之一，当前为 {value!r}")
    return value


def bot_settings(section: dict) -> BotSettings:
    """BotSettings from the ``[bot]`` table of wx.toml (WxError on a bad value)."""
    base = BotSettings()
    settings = BotSettings(
        threshold=_number(section, "threshold", base.threshold, float, 0, 1),
        menu_margin=_number(section, "menu_margin", base.menu_margin, float, 0, 1),
        menu_size=_number(section, "menu_size", base.menu_size, int, 2, 9),
        smart=_choice(section, "smart", base.smart, SMART_MODES),
        fused_threshold=_number(section, "fused_threshold", base.fused_threshold, float, 0, 1),
        fused_margin=_number(section, "fused_margin", base.fused_margin, float, 0, 1),
        agree_threshold=_number(section, "agree_threshold", base.agree_threshold, float, 0, 1),
        lexical_weight=_number(section, "lexical_weight", base.lexical_weight, float, 0, 1),
        lexical_sure=_number(section, "lexical_sure", base.lexical_sure, float, 0, 1),
        semantic_floor=_number(section, "semantic_floor", base.semantic_floor, float, 0, 1),
        semantic_ceiling=_number(section, "semantic_ceiling", base.semantic_ceiling, float, 0, 1),
        anchor_margin=_number(section, "anchor_margin", base.anchor_margin, float, -1, 1),
        semantic_sure=_number(section, "semantic_sure", base.semantic_sure, float, 0, 1),
        semantic_gap=_number(section, "semantic_gap", base.semantic_gap, float, 0, 1),
        flow_timeout=_duration(section, "flow_timeout", base.flow_timeout),
        max_misses=_number(section, "max_misses", base.max_misses, int, 1, 100),
        handover_words=_words(section, "handover_words", base.handover_words),
        handover_after=_number(section, "handover_after", base.handover_after, int, 0, 50),
        handover_window=_duration(section, "handover_window", base.handover_window),
        kf_account=str(section.get("kf_account", base.kf_account)),
    )
    if settings.semantic_ceiling <= settings.semantic_floor:
        raise WxError("wx.toml: [bot] semantic_ceiling 应大于 semantic_floor")
    return settings


def _words(section: dict, key: str, default: tuple) -> tuple:
    if key not in section:
        return default
    value = section[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise WxError(f"wx.toml: [bot] {key} 应是文字列表，例如 [\"人工\", \"转人工\"]；写 [] 则关闭")
    return tuple(v.strip() for v in value)


def server_settings(section: dict) -> ServerSettings:
    base = ServerSettings()
    return ServerSettings(
        replay_window=_duration(section, "replay_window", base.replay_window),
        body_limit=_number(section, "body_limit", base.body_limit, int, 1024, 10 * 1024 * 1024),
        dedup_ttl=_duration(section, "dedup_ttl", base.dedup_ttl),
    )
