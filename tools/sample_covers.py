"""Draw the sample bank's cover images (content/media/*/*.png) with Chinese text.

Run from the repository root: ``python tools/sample_covers.py``. It renders
each cover as a small HTML page in Debian's Chromium (through Playwright, the
browser tests' setup) and saves a 750×400 PNG; nothing is downloaded. The
covers are committed, so this only runs when they are redrawn.
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path

COVERS = {
    "2025/dingtou.png": ("基金定投", "每月小额投入，分散买入时点", "#1f7a5a", "#3fae86", "定投"),
    "2025/fengxian-dengji.png": ("风险等级", "R1 至 R5：先测评，再选产品", "#7a4b12", "#c98a2e", "R1–R5"),
    "2025/jingwai-yongka.png": ("境外用卡", "出行前开通境外交易、记好热线", "#1d4f91", "#3f86d6", "境外"),
    "2025/qiye-kaihu.png": ("企业开户", "对公账户预约、材料与流程", "#3b3f8f", "#6a6fd0", "对公"),
    "2025/zhufang-daikuan.png": ("个人住房贷款", "首套、二套与公积金组合贷", "#8c1b21", "#c7434a", "房贷"),
    "2026/chunjie.png": ("春节网点营业", "假期营业时间与自助服务", "#a01818", "#e0483c", "春节"),
    "2026/fangzha.png": ("防范电信诈骗", "不转账、不透露验证码", "#5a2a82", "#9050c2", "防诈"),
    "2026/jifen.png": ("积分兑换", "信用卡积分兑礼品、里程与年费", "#6d2a8f", "#a04fc9", "积分"),
    "2026/rate.png": ("利率调整公告", "存款与贷款利率最新变化", "#8c1b21", "#d0454c", "利率"),
    "2026/shouji-yinhang.png": ("手机银行", "转账、理财、缴费随时办", "#0f5e7a", "#2c9cc2", "掌上"),
}

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>
html, body {{ margin: 0; width: 750px; height: 400px; overflow: hidden; }}
body {{ position: relative; background: {dark};
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; color: #fff; }}
.brand {{ position: absolute; top: 30px; left: 48px; font-size: 26px; letter-spacing: 4px; opacity: .92; }}
.title {{ position: absolute; left: 48px; bottom: 112px; font-size: 68px; font-weight: 700; letter-spacing: 4px; }}
.sub {{ position: absolute; left: 50px; bottom: 62px; font-size: 28px; opacity: .92; }}
.mark {{ position: absolute; right: 56px; top: 92px; width: 190px; height: 190px; border-radius: 50%;
  border: 8px solid rgba(255,255,255,.55); display: flex; align-items: center; justify-content: center;
  font-size: 48px; font-weight: 700; background: {light}; }}
.note {{ position: absolute; right: 24px; bottom: 14px; font-size: 16px; opacity: .7; }}
</style></head><body>
<div class="brand">示例银行</div><div class="mark">{mark}</div>
<div class="title">{title}</div><div class="sub">{sub}</div><div class="note">示例图片</div>
</body></html>"""


def main(root: Path) -> None:
    from playwright.sync_api import sync_playwright

    media = root / "content" / "media"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ.get("WX_CHROMIUM", "/usr/bin/chromium"),
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 750, "height": 400})
        for name, (title, sub, dark, light, mark) in COVERS.items():
            values = {k: html.escape(v) for k, v in
                      {"title": title, "sub": sub, "dark": dark, "light": light, "mark": mark}.items()}
            page.set_content(PAGE.format(**values))
            target = media / name
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target))
            print(target.relative_to(root))
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
