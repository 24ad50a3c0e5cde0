"""The nearest branches to a location, by great-circle distance."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), in metres."""


@dataclass(frozen=True)
class Branch:
    name: str
    address: str
    phone: str
    lat: float
    lng: float
    hours: str


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points (degrees)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def nearest(branches: list[Branch], lat: float, lng: float, n: int) -> list[tuple[float, Branch]]:
    """The ``n`` nearest branches as (metres, branch), nearest first."""
    return heapq.nsmallest(n, ((haversine_m(lat, lng, b.lat, b.lng), b) for b in branches), key=lambda pair: pair[0])


def format_distance(metres: float) -> str:
    if metres < 1000:
        return f"{max(10, round(metres / 10) * 10):.0f} 米"
    if metres < 100_000:
        return f"{metres / 1000:.1f} 公里"
    return f"{metres / 1000:.0f} 公里"


def branches_text(found: list[tuple[float, Branch]]) -> str:
    """The reply listing branches with distance, address, phone and hours."""
    if not found:
        return "暂时没有网点信息，请拨打客服热线查询。"
    lines = [f"离您最近的 {len(found)} 个网点："]
    for index, (metres, branch) in enumerate(found, 1):
        lines.append(f"{index}. {branch.name}（{format_distance(metres)}）")
        lines.append(f"   地址：{branch.address}")
        if branch.phone:
            lines.append(f"   电话：{branch.phone}")
        if branch.hours:
            lines.append(f"   营业时间：{branch.hours}")
    return "\n".join(lines)


ASK_LOCATION = "请点击对话框右下角的“+”，选择“位置”，把您的位置发给我，我来为您查找最近的网点。"
