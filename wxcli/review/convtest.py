"""``wx test``: conversation scripts in ``flows/tests/*.yml`` run against the compiled bot.

A file holds one script, or a list of scripts. Each script starts from empty
state (its own state database) on a simulated clock, and talks to a bot
compiled from the project into a temporary database — the same
:func:`wxcli.bot.engine.converse` the server, ``wx ask`` and ``wx chat`` use::

    name: 办信用卡并登记                  # optional; default: the file name
    users: [alice, bob]                  # optional; default: one user “user”
    steps:
      - send: 办信用卡                    # a text message from the first user
        expect: {text: 请选择, node: credit-card/choose}
      - user: bob                        # another user, with a session of his own
        event: subscribe                 # subscribe | unsubscribe | scan | click | view | location
        expect: 欢迎关注                  # a string: the reply contains it
      - event: click:MENU_HOURS          # or event: click + key: MENU_HOURS
      - location: [30.2588, 120.1652]    # a location message (with event: location, the event)
        expect: {text: [湖滨支行, 离您最近]}
      - wait: 11m                        # the clock moves on before this step's message
        send: 1
        expect: {node: null}             # not inside any flow any more

Expectations (every one must hold): ``text`` (contains each), ``not_text``,
``article`` (a news card of these slugs), ``link`` (a text linking to them),
``node`` (``flow/node``, a flow id, or ``null``), ``answer`` (the answer id
that replied), ``rule`` (exact, contains, smart, flow, event, default, menu…),
``silent: true`` (no reply) and ``lead`` (values saved by the flow). A step
without a message checks the user's previous reply again. A script stops at its
first failing step.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from wxcli.bot import yamlsrc
from wxcli.bot.settings import parse_duration
from wxcli.errors import Problem
from wxcli.project import Project

TESTS_FOLDER = "tests"
DEFAULT_USER = "user"
ACCOUNT = "gh_wxtest"
START = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
"""The simulated clock's first tick: fixed, so scripts behave the same on every run."""
STEP_SECONDS = 5.0
SCRIPT_KEYS = {"name", "users", "steps"}
STEP_KEYS = {"user", "send", "event", "key", "location", "label", "wait", "expect"}
EXPECT_KEYS = {"text", "not_text", "article", "link", "node", "answer", "rule", "silent", "lead"}
EVENTS = {"subscribe": "subscribe", "unsubscribe": "unsubscribe", "scan": "SCAN", "click": "CLICK",
          "view": "VIEW", "location": "LOCATION"}
KEYED_EVENTS = ("scan", "click", "view")
_UNSET = object()


class ScriptError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


# ---------------------------------------------------------------- the format


@dataclass
class Expect:
    line: int
    text: list[str] = field(default_factory=list)
    not_text: list[str] = field(default_factory=list)
    article: list[str] = field(default_factory=list)
    link: list[str] = field(default_factory=list)
    node: object = _UNSET  # "flow/node", "flow", None (outside flows) or unset
    answer: str | None = None
    rule: str | None = None
    silent: bool | None = None
    lead: dict | None = None


@dataclass
class Step:
    line: int
    user: str
    fields: dict | None  # message fields for message_from_fields; None = re-check the last reply
    said: str  # how the step reads in a report: 发送“办信用卡”, 事件 subscribe, 位置 (30.2, 120.1)
    wait: float = 0.0
    expect: Expect | None = None


@dataclass
class Script:
    path: str
    line: int
    name: str
    users: list[str]
    steps: list[Step]


def _strings(value, line: int, what: str) -> list[str]:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise ScriptError(line, f"{what} 应是一段文字或文字列表")


def parse_expect(value, line: int) -> Expect:
    """``expect:`` as a string (the reply contains it) or a mapping of checks."""
    if not isinstance(value, dict):
        return Expect(line, text=_strings(value, line, "expect"))
    expect = Expect(line)
    for key, item in value.items():
        at = value.line_of(key)
        if key not in EXPECT_KEYS:
            raise ScriptError(at, f"expect 里不认识的检查 {key!r}（可用：{'、'.join(sorted(EXPECT_KEYS))}）")
        if key in ("text", "not_text", "article", "link"):
            setattr(expect, key, _strings(item, at, key))
        elif key == "node":
            if item is not None and not isinstance(item, str):
                raise ScriptError(at, "node 应是 流程/节点、流程 id，或 null（不在任何流程里）")
            expect.node = item
        elif key in ("answer", "rule"):
            if not isinstance(item, str) or not item.strip():
                raise ScriptError(at, f"{key} 应是一个名字")
            setattr(expect, key, item.strip())
        elif key == "silent":
            if not isinstance(item, bool):
                raise ScriptError(at, "silent 应为 true 或 false")
            expect.silent = item
        else:
            if not isinstance(item, dict) or not item:
                raise ScriptError(at, "lead 应是映射，例如 {phone: '13800000000'}")
            expect.lead = {str(k): str(v) for k, v in item.items()}
    return expect


def _coordinates(value, line: int) -> tuple[float, float]:
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        lat, lng = float(value[0]), float(value[1])
        if -90 <= lat <= 90 and -180 <= lng <= 180:
            return lat, lng
    raise ScriptError(line, "location 应是 [纬度, 经度]，例如 [30.2588, 120.1652]")


def _event_fields(step, line: int) -> tuple[dict, str]:
    name = step["event"]
    if not isinstance(name, str) or not name.strip():
        raise ScriptError(line, "event 应是 subscribe、unsubscribe、scan、click、view 或 location")
    kind, _, key = name.strip().partition(":")
    kind = kind.lower()
    key = key or (str(step["key"]) if step.get("key") is not None else "")
    if kind not in EVENTS:
        raise ScriptError(line, f"不认识的事件 {name!r}（可用：{'、'.join(EVENTS)}）")
    if kind != "location" and "location" in step:
        raise ScriptError(step.line_of("location"), "location 只能和 event: location 一起用，或单独作为一条位置消息")
    fields = {"MsgType": "event", "Event": EVENTS[kind]}
    if kind in KEYED_EVENTS:
        if not key and kind != "scan":
            raise ScriptError(line, f"{kind} 事件需要 key，例如 event: {kind}:MENU_HOURS")
        fields["EventKey"] = key
        return fields, f"事件 {kind}" + (f":{key}" if key else "")
    if kind == "location":
        if "location" not in step:
            raise ScriptError(line, "location 事件需要 location: [纬度, 经度]")
        lat, lng = _coordinates(step["location"], step.line_of("location"))
        fields.update({"Latitude": str(lat), "Longitude": str(lng), "Precision": "30"})
        return fields, f"位置事件 ({lat}, {lng})"
    return fields, f"事件 {kind}"


def parse_step(raw, line: int, users: list[str]) -> Step:
    if not isinstance(raw, dict):
        raise ScriptError(line, "每一步应是映射：send / event / location、expect……")
    for key in raw:
        if key not in STEP_KEYS:
            raise ScriptError(raw.line_of(key), f"步骤里不认识的字段 {key!r}（可用：{'、'.join(sorted(STEP_KEYS))}）")
    user = str(raw.get("user", users[0]))
    if user not in users:
        raise ScriptError(raw.line_of("user"), f"用户 {user!r} 不在 users 里（{'、'.join(users)}）")
    kinds = [k for k in ("send", "event") if k in raw] + (["location"] if "location" in raw and "event" not in raw else [])
    if len(kinds) > 1:
        raise ScriptError(line, "一步只能发一条消息：send、event、location 选一个")
    fields, said = None, "（再检查上一条回复）"
    if kinds == ["send"]:
        text = raw["send"]
        if isinstance(text, bool) or not isinstance(text, (str, int, float)) or not str(text).strip():
            raise ScriptError(raw.line_of("send"), "send 应是一段非空文字")
        fields, said = {"MsgType": "text", "Content": str(text)}, f"发送“{text}”"
    elif kinds == ["event"]:
        fields, said = _event_fields(raw, raw.line_of("event"))
    elif kinds == ["location"]:
        lat, lng = _coordinates(raw["location"], raw.line_of("location"))
        label = str(raw.get("label") or "我的位置")
        fields = {"MsgType": "location", "Location_X": str(lat), "Location_Y": str(lng), "Scale": "15", "Label": label}
        said = f"发送位置 ({lat}, {lng})"
    wait = 0.0
    if "wait" in raw:
        try:
            wait = parse_duration(raw["wait"])
        except ValueError as exc:
            raise ScriptError(raw.line_of("wait"), str(exc)) from None
    expect = parse_expect(raw["expect"], raw.line_of("expect")) if "expect" in raw else None
    if fields is None and expect is None:
        raise ScriptError(line, "这一步什么也没做：需要 send、event、location 或 expect")
    return Step(line=line, user=user, fields=fields, said=said, wait=wait, expect=expect)


def parse_script(raw, path: str, line: int, default_name: str) -> Script:
    if not isinstance(raw, dict):
        raise ScriptError(line, "测试脚本应是映射：name、users、steps")
    for key in raw:
        if key not in SCRIPT_KEYS:
            raise ScriptError(raw.line_of(key), f"脚本里不认识的字段 {key!r}（可用：name、users、steps）")
    users = _strings(raw["users"], raw.line_of("users"), "users") if "users" in raw else [DEFAULT_USER]
    if len(set(users)) != len(users):
        raise ScriptError(raw.line_of("users"), "users 里有重复的名字")
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScriptError(raw.line_of("steps") if "steps" in raw else line, "脚本需要 steps：至少一步")
    parsed = [parse_step(item, steps.line_of(i), users) for i, item in enumerate(steps)]
    name = str(raw.get("name") or default_name)
    return Script(path=path, line=line, name=name, users=users, steps=parsed)


def load_scripts(path: Path, shown: str) -> tuple[list[Script], list[Problem]]:
    """The scripts in one file; a file with a mistake gives a problem instead of scripts."""
    try:
        data = yamlsrc.load_file(path, shown)
    except yamlsrc.YamlError as exc:
        return [], [Problem(shown, exc.line, str(exc))]
    items = data if isinstance(data, list) else [data]
    lines = data.item_lines if isinstance(data, list) else [getattr(data, "line", 1)]
    scripts = []
    for index, (item, line) in enumerate(zip(items, lines)):
        default = path.stem if len(items) == 1 else f"{path.stem} #{index + 1}"
        try:
            scripts.append(parse_script(item, shown, line, default))
        except ScriptError as exc:
            return [], [Problem(shown, exc.line, str(exc))]
    if not scripts:
        return [], [Problem(shown, 1, "文件里没有测试脚本")]
    return scripts, []


# ---------------------------------------------------------------- checking a reply


@dataclass
class Seen:
    """What a step produced, as the checks look at it."""

    outcome: object  # wxcli.bot.engine.Outcome
    position: str | None  # flow/node the user is at afterwards


def _slug_of(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def unmet(expect: Expect, seen: Seen) -> list[str]:
    """The expectations that do not hold, each as the line to show under 期望."""
    from wxcli.bot import replies

    reply = seen.outcome.reply
    plain = replies.as_plain(reply)
    missed = [f"回复包含“{t}”" for t in expect.text if t not in plain]
    missed += [f"回复不包含“{t}”" for t in expect.not_text if t in plain]
    cards = [_slug_of(i.get("url", "")) for i in reply.items] if reply.kind == "news" else []
    missed += [f"图文卡片：{slug}" for slug in expect.article if slug not in cards]
    text = reply.text if reply.kind == "text" else ""
    missed += [f"文字里有文章链接：{slug}" for slug in expect.link if f"/{slug}/" not in text]
    if expect.node is not _UNSET:
        where = seen.position
        wanted = expect.node
        if wanted is None and where is not None:
            missed.append("不在任何流程里")
        elif wanted is not None and (where is None or (where != wanted and where.partition("/")[0] != wanted)):
            missed.append(f"停在流程节点 {wanted}")
    if expect.answer is not None and seen.outcome.answer != expect.answer:
        missed.append(f"由应答 {expect.answer} 回复")
    if expect.rule is not None and seen.outcome.rule != expect.rule:
        missed.append(f"命中规则 {expect.rule}")
    if expect.silent is not None and (reply.kind == "none") != expect.silent:
        missed.append("不回复" if expect.silent else "有回复")
    if expect.lead is not None:
        leads = [values for _, values in seen.outcome.leads]
        if not any(all(str(v.get(k)) == want for k, want in expect.lead.items()) for v in leads):
            shown = "，".join(f"{k}={v}" for k, v in expect.lead.items())
            missed.append(f"登记线索 {shown}")
    return missed


def describe(seen: Seen) -> str:
    """The reply and why, for the 实际 part of a failure."""
    from wxcli.bot import replies

    outcome = seen.outcome
    facts = [f"规则 {outcome.rule}"]
    if outcome.answer:
        facts.append(f"应答 {outcome.answer}")
    facts.append(f"流程位置 {seen.position}" if seen.position else "不在流程里")
    if outcome.leads:
        facts.append("线索 " + "；".join(str(values) for _, values in outcome.leads))
    return f"{replies.as_plain(outcome.reply)}\n（{'，'.join(facts)}）"


# ---------------------------------------------------------------- running


@dataclass
class Failure:
    path: str
    line: int
    step: int
    user: str
    said: str
    expected: list[str]
    got: str

    def __str__(self) -> str:
        head = f"{self.path}:{self.line}: 第 {self.step} 步（{self.user} {self.said}）"
        expected = "\n".join(f"    {e}" for e in self.expected)
        got = "\n".join(f"    {line}" for line in self.got.splitlines() or [""])
        return f"{head}\n  期望：\n{expected}\n  实际：\n{got}"

    def as_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "step": self.step, "user": self.user, "said": self.said,
                "expected": self.expected, "got": self.got}


@dataclass
class ScriptResult:
    path: str
    line: int
    name: str
    steps: int
    ran: int
    failure: Failure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "name": self.name, "steps": self.steps, "ran": self.ran,
                "passed": self.passed, "failure": self.failure.as_dict() if self.failure else None}


@dataclass
class RunReport:
    scripts: list[ScriptResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """Test files that could not be read; each counts as a failure."""
    seconds: float = 0.0

    @property
    def failed(self) -> list[ScriptResult]:
        return [s for s in self.scripts if not s.passed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems and bool(self.scripts)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok, "scripts": len(self.scripts), "passed": len(self.scripts) - len(self.failed),
            "failed": len(self.failed), "seconds": round(self.seconds, 3),
            "problems": [p.as_dict() for p in self.problems], "results": [s.as_dict() for s in self.scripts],
        }


def _message(step: Step, number: int, now: float):
    from wxcli import wechat

    fields = {"ToUserName": ACCOUNT, "FromUserName": step.user, "CreateTime": str(int(now)), **step.fields}
    if fields["MsgType"] != "event":
        fields["MsgId"] = str(number)
    return wechat.message_from_fields(fields)


def run_script(bot, script: Script, state_path: Path) -> ScriptResult:
    """Play ``script`` against ``bot`` with a fresh state database at ``state_path``."""
    from wxcli.bot.engine import converse
    from wxcli.state import StateStore

    store = StateStore(state_path)
    result = ScriptResult(script.path, script.line, script.name, len(script.steps), 0)
    last: dict[str, Seen] = {}
    now = START
    try:
        for number, step in enumerate(script.steps, 1):
            now += step.wait + STEP_SECONDS
            result.ran = number
            if step.fields is not None:
                outcome = converse(bot, store, _message(step, number, now), now)
                session = store.load_session(step.user)
                position = f"{session.flow}/{session.node}" if session is not None and session.in_flow else None
                last[step.user] = Seen(outcome, position)
            seen = last.get(step.user)
            if step.expect is None:
                continue
            if seen is None:
                result.failure = Failure(script.path, step.expect.line, number, step.user, step.said,
                                         ["之前有一条回复"], "（这个用户还没有发过消息）")
                break
            missed = unmet(step.expect, seen)
            if missed:
                result.failure = Failure(script.path, step.expect.line, number, step.user, step.said,
                                         missed, describe(seen))
                break
    finally:
        store.close()
    return result


def script_files(project: Project, files=None) -> list[Path]:
    """The scripts to run: ``files`` as given (a folder means its ``*.yml``), or every
    ``flows/tests/*.yml``."""
    given = [Path(f) for f in files] if files else [project.flows_dir / TESTS_FOLDER]
    found = []
    for path in given:
        if path.is_dir():
            found.extend(sorted(path.glob("*.yml")))
        elif files:
            found.append(path)
    return found


def run_tests(project: Project, files=None, *, bot_path: Path | None = None) -> RunReport:
    """Compile the bot into a temporary database (unless ``bot_path`` is given) and run
    every script; raises :class:`~wxcli.errors.ContentError` when the bot does not compile."""
    from wxcli.bot.compiler import compile_project
    from wxcli.bot.db import CompiledBot

    started = time.perf_counter()
    report = RunReport()
    scripts: list[Script] = []
    for path in script_files(project, files):
        shown = project.relative(path)
        if not path.is_file():
            report.problems.append(Problem(shown, 1, "测试文件不存在"))
            continue
        found, problems = load_scripts(path, shown)
        scripts.extend(found)
        report.problems.extend(problems)
    with tempfile.TemporaryDirectory(prefix="wx-test-") as folder:
        if bot_path is None:
            bot_path = Path(folder) / "wx.db"
            compile_project(project, out=bot_path)
        bot = CompiledBot(bot_path)
        try:
            for index, script in enumerate(scripts):
                report.scripts.append(run_script(bot, script, Path(folder) / f"state-{index}.db"))
        finally:
            bot.close()
    report.seconds = time.perf_counter() - started
    return report
