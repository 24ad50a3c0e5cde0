"""The WeChat Official Account callback protocol, and nothing else.

Signatures, safe parsing of message XML, passive-reply XML, AES safe mode, and
the client half (what WeChat itself sends) used by ``wx chat --url`` and tests.
No bot logic and no web framework live here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lxml import etree

TEXT_LIMIT = 2048
"""WeChat's limit for a passive text reply, in UTF-8 bytes."""

MAX_NEWS_ITEMS = 8
AES_BLOCK = 32
"""WeChat pads to 32 bytes (PKCS#7 with a 32-byte block), not to AES's 16."""

ELLIPSIS = "…"

# Characters XML 1.0 forbids even inside CDATA; a reply containing one is
# rejected by WeChat as a whole, so they are dropped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


class ProtocolError(Exception):
    """A request that does not follow the WeChat protocol."""

    status = 400


class BadXML(ProtocolError):
    """The body is not a WeChat message: garbage, wrong root, DTD or entities."""

    status = 400


class BadSignature(ProtocolError):
    """Signature, msg_signature, AES padding or app id does not check out."""

    status = 403


# --- signatures ---------------------------------------------------------


def sign(*parts: str) -> str:
    """SHA-1 hex of the parts sorted and concatenated, as WeChat signs."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def _same(expected: str, given: str | None) -> bool:
    if not given:
        return False
    # compare_digest refuses non-ASCII str, so compare bytes.
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


def check_signature(
    token: str, signature: str | None, timestamp: str | None, nonce: str | None
) -> bool:
    """True when ``signature`` = sign(token, timestamp, nonce); False for missing parts."""
    if not token or timestamp is None or nonce is None:
        return False
    return _same(sign(token, timestamp, nonce), signature)


# --- parsing ------------------------------------------------------------


def _parser() -> etree.XMLParser:
    """A parser that never fetches, loads a DTD or expands an entity.

    Made per call: lxml parsers must not be shared between threads."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _parse_root(body: bytes | str) -> etree._Element:
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body or not body.strip():
        raise BadXML("请求体为空，不是 XML 消息")
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise BadXML(f"请求体不是合法的 XML：{exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise BadXML("XML 含有 DOCTYPE/DTD，已拒绝")
    if root.tag != "xml":
        raise BadXML(f"XML 根元素应为 <xml>，收到 <{root.tag}>")
    return root


def _leaf_text(element: etree._Element) -> str:
    """The text of an element without element children.

    Comments and PIs are dropped by the parser, so a node left inside a leaf
    can only be an unexpanded entity reference: refused, never silently cut.
    """
    if len(element):
        raise BadXML("XML 含有实体引用，已拒绝")
    return element.text or ""


def _flatten(root: etree._Element) -> dict[str, str]:
    """Leaf children by tag; leaves of nested blocks (ScanCodeInfo, SendLocationInfo…)
    are lifted to the top unless a top-level field of the same name exists."""
    flat: dict[str, str] = {}
    containers = []
    for child in root:
        tag = child.tag
        if not isinstance(tag, str):
            raise BadXML("XML 含有实体引用，已拒绝")
        if len(child) and any(isinstance(node.tag, str) for node in child):
            containers.append(child)
        elif tag not in flat:
            flat[tag] = _leaf_text(child)
    for container in containers:
        for leaf in container.iter():
            if not isinstance(leaf.tag, str):
                raise BadXML("XML 含有实体引用，已拒绝")
            if leaf is not container and not len(leaf) and leaf.tag not in flat:
                flat[leaf.tag] = leaf.text or ""
    return flat


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The fields of a WeChat ``<xml>`` document as a flat dict of strings.

    Refuses (BadXML) anything with a DOCTYPE or entities, so billion-laughs and
    XXE payloads are rejected without being expanded. The first of duplicate
    fields wins.
    """
    return _flatten(_parse_root(body))


# --- messages -----------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One inbound message or event, fields named as the bot wants them."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    msg_id: str | None = None
    event: str | None = None
    event_key: str | None = None
    content: str = ""
    lat: float | None = None
    lng: float | None = None
    scale: str | None = None
    precision: str | None = None
    label: str | None = None
    pic_url: str | None = None
    media_id: str | None = None
    thumb_media_id: str | None = None
    format: str | None = None
    url: str | None = None
    title: str | None = None
    description: str | None = None
    ticket: str | None = None
    raw: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"

    @property
    def dedup_key(self) -> str:
        """WeChat's retry key: user + MsgId, or user + CreateTime + event for events."""
        if self.msg_id:
            return f"{self.from_user}:{self.msg_id}"
        return f"{self.from_user}:{self.create_time}:{self.event or self.msg_type}"


def _optional(fields: Mapping[str, str], name: str) -> str | None:
    value = fields.get(name, "").strip()
    return value or None


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise BadXML(f"消息缺少字段 {name}")
    return value


def _coordinate(fields: Mapping[str, str], name: str, bound: float) -> float | None:
    value = _optional(fields, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadXML(f"{name} 不是数字：{value!r}") from None
    if not math.isfinite(number) or abs(number) > bound:
        raise BadXML(f"{name} 超出范围：{value!r}")
    return number


CREATE_TIME_DIGITS = 12
"""A CreateTime is Unix seconds (10 digits until 2286); longer ones are refused
before ``int()`` (4,300 digits and up raise) or SQLite (2^63 and up overflow) see them."""


def message_from_fields(fields: Mapping[str, str]) -> Message:
    """A Message from the flat dict of parse_xml (BadXML when a field is wrong)."""
    msg_type = _required(fields, "MsgType").lower()
    create_time = _required(fields, "CreateTime")
    if not (create_time.isascii() and create_time.isdigit()) or len(create_time) > CREATE_TIME_DIGITS:
        raise BadXML(f"CreateTime 不是 {CREATE_TIME_DIGITS} 位以内的整数：{create_time[:40]!r}")
    event = _optional(fields, "Event")
    if "Location_X" in fields:  # location message, or location_select event
        lat_name, lng_name = "Location_X", "Location_Y"
    else:  # LOCATION event
        lat_name, lng_name = "Latitude", "Longitude"
    content = fields.get("Content", "")
    if msg_type == "voice":
        content = fields.get("Recognition", "") or content
    return Message(
        to_user=_required(fields, "ToUserName"),
        from_user=_required(fields, "FromUserName"),
        create_time=int(create_time),
        msg_type=msg_type,
        msg_id=_optional(fields, "MsgId") or _optional(fields, "MsgID"),
        event=event.lower() if event else None,
        event_key=_optional(fields, "EventKey"),
        content=content,
        lat=_coordinate(fields, lat_name, 90),
        lng=_coordinate(fields, lng_name, 180),
        scale=_optional(fields, "Scale"),
        precision=_optional(fields, "Precision"),
        label=_optional(fields, "Label"),
        pic_url=_optional(fields, "PicUrl"),
        media_id=_optional(fields, "MediaId"),
        thumb_media_id=_optional(fields, "ThumbMediaId"),
        format=_optional(fields, "Format"),
        url=_optional(fields, "Url"),
        title=fields.get("Title"),
        description=fields.get("Description"),
        ticket=_optional(fields, "Ticket"),
        raw=dict(fields),
    )


def parse_message(body: bytes | str) -> Message:
    """Parse a (plain or already decrypted) message body into a Message."""
    return message_from_fields(parse_xml(body))


# --- writing XML --------------------------------------------------------


def cdata(value: Any) -> str:
    """``value`` as a CDATA section; ``]]>`` is split across two sections."""
    text = _XML_ILLEGAL.sub("", str(value))
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(name: str, value: Any) -> str:
    if not _XML_NAME.match(name):
        raise ValueError(f"不是合法的 XML 元素名：{name!r}")
    if isinstance(value, str):
        inner = cdata(value)
    elif isinstance(value, bool):
        raise ValueError(f"{name}: 布尔值没有约定的 XML 写法")
    elif isinstance(value, (int, float)):
        inner = str(value)
    elif isinstance(value, Mapping):
        inner = "".join(_element(k, v) for k, v in value.items() if v is not None)
    elif isinstance(value, (list, tuple)):
        inner = "".join(_element("item", v) for v in value)
    else:
        inner = cdata(value)
    return f"<{name}>{inner}</{name}>"


def build_message_xml(fields: Mapping[str, Any]) -> str:
    """An ``<xml>`` document from a dict: numbers bare, text in CDATA, dicts
    nested, lists as repeated ``<item>``; None values are left out."""
    return "<xml>" + "".join(_element(k, v) for k, v in fields.items() if v is not None) + "</xml>"


def truncate_utf8(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary,
    ending with "…" when something was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode("utf-8"))
    if room < 0:
        raise ValueError(f"limit {limit} 太小，放不下省略号")
    end = room
    while end > 0 and (data[end] & 0xC0) == 0x80:  # don't split a character
        end -= 1
    return data[:end].decode("utf-8") + ELLIPSIS


# --- replies (server side) ------------------------------------------------


def _reply(msg: Message, msg_type: str, body: str, now: int | None) -> str:
    """The reply envelope around ``body`` (elements already written), as
    :func:`build_message_xml` would write it — spelled out because every
    answered message goes through here."""
    created = int(time.time()) if now is None else int(now)
    return (f"<xml><ToUserName>{cdata(msg.from_user)}</ToUserName><FromUserName>{cdata(msg.to_user)}</FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType>{cdata(msg_type)}</MsgType>{body}</xml>")


def text_reply(msg: Message, content: str, star: bool = False, now: int | None = None) -> str:
    """A passive text reply, cut to WeChat's 2048-byte limit; star sets FuncFlag 1."""
    body = f"<Content>{cdata(truncate_utf8(_XML_ILLEGAL.sub('', content)))}</Content>"
    return _reply(msg, "text", body + "<FuncFlag>1</FuncFlag>" if star else body, now)


def news_reply(msg: Message, items: list[Mapping[str, str]], now: int | None = None) -> str:
    """A news (图文) reply of 1–8 items, each a dict of title/description/url/picurl.

    How many items WeChat shows depends on the message kind; the caller decides.
    """
    if not 1 <= len(items) <= MAX_NEWS_ITEMS:
        raise ValueError(f"图文消息需要 1–{MAX_NEWS_ITEMS} 条，收到 {len(items)} 条")
    articles = [
        {
            "Title": item.get("title", ""),
            "Description": item.get("description", ""),
            "PicUrl": item.get("picurl", ""),
            "Url": item.get("url", ""),
        }
        for item in items
    ]
    return _reply(msg, "news", _element("ArticleCount", len(articles)) + _element("Articles", articles), now)


def transfer_reply(msg: Message, kf_account: str = "", now: int | None = None) -> str:
    """``transfer_customer_service``: WeChat hands the conversation to human agents
    (to ``kf_account`` when given, else to whichever agent is on duty)."""
    body = f"<TransInfo><KfAccount>{cdata(kf_account)}</KfAccount></TransInfo>" if kf_account else ""
    return _reply(msg, "transfer_customer_service", body, now)


def image_reply(msg: Message, media_id: str, now: int | None = None) -> str:
    """A passive image reply of an already uploaded media id."""
    return _reply(msg, "image", _element("Image", {"MediaId": media_id}), now)


# --- safe mode (AES) ------------------------------------------------------


def _pad(data: bytes) -> bytes:
    size = AES_BLOCK - len(data) % AES_BLOCK
    return data + bytes([size]) * size


def _unpad(data: bytes) -> bytes:
    size = data[-1] if data else 0
    if not 1 <= size <= AES_BLOCK or size > len(data) or data[-size:] != bytes([size]) * size:
        raise BadSignature("解密失败：填充不正确（密钥不对或密文被篡改）")
    return data[:-size]


def _aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise ValueError(
            f"EncodingAESKey 必须是 43 个字符（公众平台生成的那串），当前 {len(encoding_aes_key)} 个字符"
        )
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError("EncodingAESKey 含有非 Base64 字符") from None
    if len(key) != 32:
        raise ValueError("EncodingAESKey 解码后不是 32 字节")
    return key


class Crypto:
    """WeChat safe mode: AES-256-CBC, IV = key[:16], 32-byte PKCS#7 padding.

    Plaintext = 16 random bytes + 4-byte big-endian length + XML + app id.
    """

    def __init__(self, token: str, encoding_aes_key: str, app_id: str):
        if not token:
            raise ValueError("安全模式需要 Token")
        if not app_id:
            raise ValueError("安全模式需要 AppID")
        self.token = token
        self.app_id = app_id
        self._key = _aes_key(encoding_aes_key)

    def __repr__(self) -> str:
        return f"Crypto(app_id={self.app_id!r})"

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt_text(self, text: str, random16: bytes | None = None) -> str:
        """The base64 ``Encrypt`` value for ``text``."""
        prefix = secrets.token_bytes(16) if random16 is None else random16
        if len(prefix) != 16:
            raise ValueError("random16 必须正好 16 字节")
        data = text.encode("utf-8")
        plain = prefix + struct.pack(">I", len(data)) + data + self.app_id.encode("utf-8")
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(_pad(plain)) + encryptor.finalize()
        return base64.b64encode(sealed).decode("ascii")

    def encrypt(self, xml: str, nonce: str, timestamp: str, random16: bytes | None = None) -> str:
        """The signed ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`` envelope."""
        encrypted = self.encrypt_text(xml, random16)
        return build_message_xml(
            {
                "Encrypt": encrypted,
                "MsgSignature": sign(self.token, str(timestamp), str(nonce), encrypted),
                "TimeStamp": str(timestamp),
                "Nonce": str(nonce),
            }
        )

    def decrypt(self, encrypted_b64: str) -> str:
        """The XML inside an ``Encrypt`` value; BadSignature unless it decrypts
        cleanly and ends with this account's app id."""
        try:
            sealed = base64.b64decode(encrypted_b64, validate=True)
        except (binascii.Error, ValueError):
            raise BadSignature("解密失败：Encrypt 不是合法的 Base64") from None
        if not sealed or len(sealed) % 16:
            raise BadSignature("解密失败：密文长度不对")
        decryptor = self._cipher().decryptor()
        plain = _unpad(decryptor.update(sealed) + decryptor.finalize())
        if len(plain) < 20:
            raise BadSignature("解密失败：明文太短")
        (length,) = struct.unpack(">I", plain[16:20])
        if length > len(plain) - 20:
            raise BadSignature("解密失败：长度字段不对")
        body, app_id = plain[20 : 20 + length], plain[20 + length :]
        if not hmac.compare_digest(app_id, self.app_id.encode("utf-8")):
            raise BadSignature("解密失败：AppID 不匹配")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadSignature("解密失败：明文不是 UTF-8") from None

    def check(
        self, msg_signature: str | None, timestamp: str | None, nonce: str | None, encrypted: str
    ) -> None:
        """Raise BadSignature unless msg_signature = sign(token, timestamp, nonce, encrypted)."""
        if timestamp is None or nonce is None:
            raise BadSignature("msg_signature 校验失败：缺少 timestamp 或 nonce")
        if not _same(sign(self.token, timestamp, nonce, encrypted), msg_signature):
            raise BadSignature("msg_signature 校验失败")

    def decrypt_request(
        self, body: bytes | str, msg_signature: str | None, timestamp: str | None, nonce: str | None
    ) -> bytes:
        """The inner message XML of a safe-mode request.

        The signature is checked before decrypting, so forged ciphertexts never
        reach the padding check (no padding oracle).
        """
        encrypted = parse_xml(body).get("Encrypt", "").strip()
        if not encrypted:
            raise BadXML("安全模式的消息缺少 Encrypt 字段")
        self.check(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted).encode("utf-8")


# --- client side (acting as WeChat) ---------------------------------------


def _now() -> str:
    return str(int(time.time()))


def _nonce() -> str:
    return str(secrets.randbelow(10**10))


def build_text_xml(
    to_user: str,
    from_user: str,
    content: str,
    msg_id: str | int | None = None,
    create_time: int | None = None,
) -> str:
    """A text message as WeChat posts it: ``to_user`` is the account (gh_…),
    ``from_user`` the user's openid. A random MsgId is made when none is given."""
    return build_message_xml(
        {
            "ToUserName": to_user,
            "FromUserName": from_user,
            "CreateTime": int(time.time()) if create_time is None else int(create_time),
            "MsgType": "text",
            "Content": content,
            "MsgId": secrets.randbits(63) if msg_id is None else msg_id,
        }
    )


def _encrypt_value(encrypted_body: str | bytes) -> str:
    """Accept either the Encrypt value itself or a whole envelope."""
    if isinstance(encrypted_body, bytes):
        encrypted_body = encrypted_body.decode("utf-8")
    if encrypted_body.lstrip().startswith("<"):
        value = parse_xml(encrypted_body).get("Encrypt", "").strip()
        if not value:
            raise ValueError("信封里没有 Encrypt 字段")
        return value
    return encrypted_body.strip()


def signed_query(
    token: str,
    timestamp: str | None = None,
    nonce: str | None = None,
    crypto: Crypto | None = None,
    encrypted_body: str | bytes | None = None,
    openid: str | None = None,
) -> dict[str, str]:
    """The query parameters WeChat adds to a callback POST.

    In safe mode (``crypto`` given) ``encrypted_body`` — the Encrypt value or the
    whole envelope — is needed for ``msg_signature``.
    """
    timestamp = _now() if timestamp is None else str(timestamp)
    nonce = _nonce() if nonce is None else str(nonce)
    params = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid is not None:
        params["openid"] = openid
    if crypto is not None:
        if encrypted_body is None:
            raise ValueError("安全模式需要 encrypted_body 来计算 msg_signature")
        params["encrypt_type"] = "aes"
        encrypted = _encrypt_value(encrypted_body)
        params["msg_signature"] = sign(crypto.token, timestamp, nonce, encrypted)
    return params


def encrypt_request(
    crypto: Crypto,
    xml: str,
    timestamp: str | None = None,
    nonce: str | None = None,
    compatible: bool = False,
) -> tuple[bytes, dict[str, str]]:
    """Body and query parameters of a safe-mode POST, exactly as WeChat sends them.

    The body is ``<xml><ToUserName/><Encrypt/></xml>``; ``compatible`` also keeps
    the plaintext fields beside Encrypt, as compatible mode does.
    """
    timestamp = _now() if timestamp is None else str(timestamp)
    nonce = _nonce() if nonce is None else str(nonce)
    fields = parse_xml(xml)
    encrypted = crypto.encrypt_text(xml)
    if compatible:
        envelope: dict[str, Any] = {**fields, "Encrypt": encrypted}
    else:
        envelope = {"ToUserName": fields.get("ToUserName", ""), "Encrypt": encrypted}
    params = signed_query(crypto.token, timestamp, nonce, crypto=crypto, encrypted_body=encrypted)
    return build_message_xml(envelope).encode("utf-8"), params


def _articles(root: etree._Element) -> list[dict[str, str]]:
    return [
        {leaf.tag: leaf.text or "" for leaf in item if not len(leaf)}
        for item in root.iterfind("Articles/item")
    ]


def parse_reply(body: bytes | str, crypto: Crypto | None = None) -> dict[str, Any]:
    """A server's passive reply as a dict (empty for ``success`` or an empty body).

    With ``crypto`` the reply must be a signed safe-mode envelope, as WeChat
    requires in safe mode; it is checked and decrypted. Without it an envelope
    comes back as is. News replies also get ``Articles``: one dict per item.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if raw.strip() in (b"", b"success"):
        return {}
    root = _parse_root(raw)
    fields = _flatten(root)
    if crypto is not None:
        encrypted = fields.get("Encrypt", "").strip()
        if not encrypted:
            raise ProtocolError("安全模式下回复应当加密，但回复里没有 Encrypt")
        crypto.check(
            fields.get("MsgSignature", "").strip(),
            fields.get("TimeStamp", "").strip(),
            fields.get("Nonce", "").strip(),
            encrypted,
        )
        root = _parse_root(crypto.decrypt(encrypted))
        fields = _flatten(root)
    reply: dict[str, Any] = dict(fields)
    if root.find("Articles") is not None:
        reply["Articles"] = _articles(root)
    return reply
