"""Images pasted or dropped into the editor: checked, shrunk when huge, saved under content/media/.

The type is what Pillow finds in the bytes, never what the file name or the
browser claims, so a script renamed ``x.png`` is refused.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import datetime
from pathlib import Path

from wxcli.errors import WxError
from wxcli.fsutil import atomic_write_bytes
from wxcli.project import Project

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_SIDE = 1600  # pixels: wider than any phone screen shows at 2x, far smaller than a camera's
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
_UNSAFE_NAME = re.compile(r"[^a-z0-9]+")


def _stem(filename: str) -> str:
    stem = _UNSAFE_NAME.sub("-", Path(filename or "").stem.lower()).strip("-")
    return stem[:40] or "image"


def shrink(data: bytes) -> tuple[bytes, str, tuple[int, int]]:
    """(bytes to save, extension, size): the image as sent, or re-encoded at most MAX_SIDE on its long side."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = 80_000_000
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in FORMATS:
                raise WxError(f"不支持的图片格式 {kind}：只接受 PNG、JPEG、GIF、WebP")
            image.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise WxError("文件不是可识别的图片：只接受 PNG、JPEG、GIF、WebP") from None
    extension = FORMATS[kind]
    if max(image.size) <= MAX_SIDE or kind == "GIF":  # an animated GIF would lose its frames
        return data, extension, image.size
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if kind == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    else:
        image.save(out, kind)
    return out.getvalue(), extension, image.size


def save_image(project: Project, filename: str, data: bytes, now: datetime | None = None) -> str:
    """Save an uploaded image; returns its path relative to content/ (``media/2026/x-1a2b3c4d.png``).

    The same picture uploaded twice is stored once (the name carries its hash).
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise WxError(f"图片太大：{len(data) / 1048576:.1f} MB，上限 {MAX_UPLOAD_BYTES // 1048576} MB")
    if not data:
        raise WxError("没有收到图片内容")
    stored, extension, _size = shrink(data)
    year = f"{(now or datetime.now(project.timezone)).year}"
    name = f"{_stem(filename)}-{hashlib.sha256(stored).hexdigest()[:8]}.{extension}"
    target = project.media_dir / year / name
    if not target.exists():
        atomic_write_bytes(target, stored)
    return f"media/{year}/{name}"


def markdown_link(rel: str, alt: str = "图片") -> str:
    """The Markdown an article (one folder below content/) uses for ``rel``."""
    return f"![{alt}](../{rel})"
