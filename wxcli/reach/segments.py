"""Segments of followers from the bank's own data: region, leads, activity, tags, a file.

WeChat has returned no region, sex or nickname since late 2021, so a follower's
region is the city (and district) of the branch nearest the location they last
shared, or of a branch they booked in a flow. The city and district come from
the branch's address in flows/branches.csv ("浙江省杭州市西湖区……" → 杭州市, 西湖区).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wxcli.bot.branches import Branch, nearest
from wxcli.errors import WxError
from wxcli.reach.store import Follower, ReachStore

_CITY = re.compile(r"^(?:.+?(?:省|自治区))?(.+?(?:市|自治州|地区|盟))")
_DISTRICT = re.compile(r"(?:市|自治州|地区|盟)(.+?(?:区|县|市|旗))")
_MUNICIPALITY = re.compile(r"^(北京|上海|天津|重庆)市?(.+?(?:区|县))?")
ACTIVE_DEFAULT = 48 * 3600


@dataclass(frozen=True)
class Region:
    city: str | None
    district: str | None

    def label(self) -> str:
        return "".join(p for p in (self.city, self.district) if p) or "未知"


def region_of_address(address: str) -> Region:
    """City and district named by a Chinese address."""
    address = address.strip()
    city_match = _MUNICIPALITY.match(address)
    if city_match:
        return Region(city_match.group(1) + "市", city_match.group(2))
    city = _CITY.match(address)
    district = _DISTRICT.search(address)
    return Region(city.group(1) if city else None, district.group(1) if district else None)


def _bare(name: str) -> str:
    """A place name without its 市/区/县 suffix, so 杭州 matches 杭州市 and 西湖 matches 西湖区."""
    name = name.strip()
    return name[:-1] if len(name) > 2 and name[-1] in "市区县" else name


def region_matches(region: Region, wanted: str) -> bool:
    wanted = _bare(wanted)
    return any(part and _bare(part) == wanted for part in (region.city, region.district)) or region.label() == wanted


def nearest_region(branches: list[Branch], lat: float, lng: float) -> tuple[Branch | None, Region]:
    found = nearest(branches, lat, lng, 1)
    if not found:
        return None, Region(None, None)
    branch = found[0][1]
    return branch, region_of_address(branch.address)


def booked_region(branches: list[Branch], booked: str) -> Region | None:
    """The region of the branch a booking names ("湖滨" or "湖滨支行" matches 示例银行杭州湖滨支行)."""
    key = booked.removesuffix("支行")
    for branch in branches:
        if key and key in branch.name:
            return region_of_address(branch.address)
    return None


def follower_regions(followers: list[Follower], branches: list[Branch], booked: dict[str, str]) -> dict[str, Region]:
    """openid → region: from the last shared location, else from a booked branch."""
    regions = {}
    for follower in followers:
        if follower.city or follower.district:
            regions[follower.openid] = Region(follower.city, follower.district)
        elif follower.openid in booked:
            region = booked_region(branches, booked[follower.openid])
            if region is not None:
                regions[follower.openid] = region
    return regions


def read_openids(path: Path) -> list[str]:
    """One openid a line (blank lines and # comments skipped), first occurrence kept."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise WxError(f"{path}: 读不了 openid 文件：{exc}") from None
    seen: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if not re.fullmatch(r"[A-Za-z0-9_-]{6,64}", value):
            raise WxError(f"{path}:{number}: 不像 openid：{value!r}（每行一个 openid）")
        seen.setdefault(value, None)
    return list(seen)


@dataclass(frozen=True)
class Segment:
    """Which followers: every filter given must hold (all of them when none is given)."""

    tag: str | None = None
    region: str | None = None
    lead: str | None = None
    active: float | None = None
    users: tuple[str, ...] | None = None

    def describe(self) -> str:
        parts = []
        if self.tag:
            parts.append(f"标签“{self.tag}”")
        if self.region:
            parts.append(f"地区“{self.region}”")
        if self.lead:
            parts.append(f"流程 {self.lead} 的线索")
        if self.active:
            parts.append(f"{self.active / 3600:g} 小时内活跃")
        if self.users is not None:
            parts.append(f"名单 {len(self.users)} 人")
        return "、".join(parts) or "全部关注者"


def select(store: ReachStore, branches: list[Branch], segment: Segment, now: float) -> list[Follower]:
    """The subscribed followers (as synced) in ``segment``, in openid order."""
    followers = store.followers()
    if segment.tag:
        tag_id = tag_id_by_name(store, segment.tag)
        followers = [f for f in followers if tag_id in f.tagids]
    if segment.region:
        regions = follower_regions(followers, branches, store.booked_branches())
        followers = [f for f in followers if f.openid in regions and region_matches(regions[f.openid], segment.region)]
    if segment.lead:
        users = store.lead_users(segment.lead)
        followers = [f for f in followers if f.openid in users]
    if segment.active:
        users = store.active_since(now - segment.active)
        followers = [f for f in followers if f.openid in users]
    if segment.users is not None:
        wanted = set(segment.users)
        followers = [f for f in followers if f.openid in wanted]
    return followers


def tag_id_by_name(store: ReachStore, name: str) -> int:
    for tag_id, tag_name in store.tags().items():
        if tag_name == name:
            return tag_id
    known = "、".join(store.tags().values()) or "（还没有，先运行 wx users sync）"
    raise WxError(f"没有名为“{name}”的标签；已有：{known}")
