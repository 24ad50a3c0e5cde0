"""Click's and Typer's own messages in Chinese ("Missing option", "Show this message and exit.").

Click marks every message it prints with ``gettext`` (``from gettext import gettext
as _`` in each of its modules), which is its documented hook for translations.
Going through the process-wide gettext domain would depend on the user's locale
variables (``LANG=C`` on a server would undo it), so :func:`install` points those
module-level ``_``/``ngettext`` names at this catalog instead; Typer's Rich help
panels read a few constants, which are set here too.

Typer 0.20 and later carry their own copy of Click (``typer._click``) whose
messages are plain f-strings with no gettext hook; for those, the finished
message of each usage error is translated by pattern (:data:`PATTERNS`), and the
help option's text and the usage prefix are set where the command builds them.
Anything not recognised stays in English rather than break.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import re
import sys

MESSAGES = {
    "Usage:": "用法：",
    "Options": "选项",
    "Arguments": "参数",
    "Commands": "命令",
    "Error": "错误",
    "Aborted!": "已中止。",
    "Aborted.": "已中止。",
    "Show this message and exit.": "显示这条帮助并退出。",
    "Show the version and exit.": "显示版本并退出。",
    "Missing command.": "缺少命令。",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing parameter: {param_name}": "缺少参数：{param_name}",
    "Missing {param_type}": "缺少{param_type}",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "No such option: {name}": "没有选项：{name}",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的值无效：{message}",
    "Invalid value: {message}": "值无效：{message}",
    "Error: {message}": "错误：{message}",
    "Error: invalid input": "错误：输入无效",
    "Error: The two entered values do not match.": "错误：两次输入不一致。",
    "Try '{command} {option}' for help.": "运行 '{command} {option}' 查看帮助。",
    "Try [blue]'{command_path} {help_option}'[/] for help.": "运行 [blue]'{command_path} {help_option}'[/] 查看帮助。",
    "Option {name!r} does not take a value.": "选项 {name!r} 不接受值。",
    "Option {name!r} requires an argument.": "选项 {name!r} 需要一个值。",
    "Option {name!r} requires {nargs} arguments.": "选项 {name!r} 需要 {nargs} 个值。",
    "Argument {name!r} takes {nargs} values.": "参数 {name!r} 需要 {nargs} 个值。",
    "Got unexpected extra argument ({args})": "多出了参数（{args}）",
    "Got unexpected extra arguments ({args})": "多出了参数（{args}）",
    "Did you mean {possibility}?": "您是不是想找 {possibility}？",
    "(Did you mean one of: {possibilities}?)": "（您是不是想找：{possibilities}？）",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的{number_type}。",
    "{value!r} is not a valid boolean. Recognized values: {states}": "{value!r} 不是有效的是/否值，可用：{states}",
    "{value} is not in the range {range}.": "{value} 不在范围 {range} 内。",
    "{value!r} is not {choice}.": "{value!r} 不是 {choice}。",
    "{value!r} is not one of {choices}.": "{value!r} 不在可选值 {choices} 之中。",
    "Choose from:\n\t{choices}": "可选：\n\t{choices}",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a file.": "{name} {filename!r} 是文件。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是目录。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} 不可读。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} 不可写。",
    "Could not open file {filename!r}: {message}": "无法打开文件 {filename!r}：{message}",
    "file": "文件",
    "directory": "目录",
    "path": "路径",
    "unknown error": "未知错误",
    "Repeat for confirmation": "再输入一次确认",
    "Press any key to continue...": "按任意键继续……",
    "Do you want to continue?": "是否继续？",
    "Confirm the action without prompting.": "不询问，直接确认。",
    "default: {default}": "默认：{default}",
    "env var: {var}": "环境变量：{var}",
    "required": "必填",
    "(dynamic)": "（动态）",
    "deprecated": "已弃用",
    "(deprecated) ": "（已弃用）",
    "[default: {}]": "[默认：{}]",
    "[env var: {}]": "[环境变量：{}]",
    "[required]": "[必填]",
}

_CLICK_MODULES = ("core", "exceptions", "types", "parser", "termui", "decorators", "formatting", "utils")
_RICH_CONSTANTS = {
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commands",
    "ERRORS_PANEL_TITLE": "Error",
    "ABORTED_TEXT": "Aborted.",
    "RICH_HELP": "Try [blue]'{command_path} {help_option}'[/] for help.",
    "DEPRECATED_STRING": "(deprecated) ",
    "DEFAULT_STRING": "[default: {}]",
    "ENVVAR_STRING": "[env var: {}]",
    "REQUIRED_LONG_STRING": "[required]",
}


HELP_TEXT = "显示这条帮助并退出。"
USAGE_PREFIX = "用法："

PATTERNS = [(re.compile(pattern), replacement) for pattern, replacement in (
    (r"^Missing argument(.*?)\.(?: (.*))?$", r"缺少参数\1。\2"),
    (r"^Missing option(.*?)\.(?: (.*))?$", r"缺少选项\1。\2"),
    (r"^Missing parameter(.*?)\.(?: (.*))?$", r"缺少参数\1。\2"),
    (r"^Missing parameter: (.*)$", r"缺少参数：\1"),
    (r"^Missing command\.$", "缺少命令。"),
    (r"^No such option: (.*?)(?: \(Possible options: (.*)\))?$", r"没有选项 \1。可用的选项：\2"),
    (r"^No such command (.*?)\.?(?=$| Did|\. Did)", r"没有命令 \1"),
    (r"。?\.? ?Did you mean (.+)\?$", r"。您是不是想找 \1？"),
    (r"^Invalid value for (.+?): (.*)$", r"\1 的值无效：\2"),
    (r"^Invalid value: (.*)$", r"值无效：\1"),
    (r"Input should be a valid integer.*$", "应是整数"),
    (r"Input should be a valid number.*$", "应是数字"),
    (r"^(.*) is not a valid integer\.?$", r"\1 不是整数"),
    (r"^(.*) is not one of (.*)\.$", r"\1 不在可选值 \2 之中"),
    (r"^Got unexpected extra argument(?:s|\(s\))? \((.*)\)$", r"多出了参数（\1）"),
    (r"^Option (.+) requires an argument\.$", r"选项 \1 需要一个值。"),
    (r"^Option (.+) requires (\d+) arguments\.$", r"选项 \1 需要 \2 个值。"),
    (r"^Option (.+) does not take a value\.$", r"选项 \1 不接受值。"),
    (r"可用的选项：$", ""),
)]


def translate(message: str) -> str:
    """A finished English usage-error message in Chinese, pattern by pattern."""
    for pattern, replacement in PATTERNS:
        message = pattern.sub(replacement, message)
    return message


def gettext(message: str) -> str:
    return MESSAGES.get(message, message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return gettext(singular if count == 1 else plural)


def install() -> None:
    """Route Click's and Typer's messages through :data:`MESSAGES` and :data:`PATTERNS` (idempotent)."""
    for name in _CLICK_MODULES:
        _patch(_optional(f"click.{name}"))
    for name in ("typer.core", "typer.main"):
        _patch(_optional(name))
    if "typer.rich_utils" in sys.modules:
        _chinese_rich(sys.modules["typer.rich_utils"])
    elif not any(isinstance(finder, _WhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WhenImported("typer.rich_utils", _chinese_rich))
    for package in ("typer._click", "click"):
        _translate_errors(_optional(f"{package}.exceptions"))
        _chinese_usage(_optional(f"{package}.formatting"))
    _chinese_help_option(_optional("typer.core"))


def _chinese_rich(rich_utils) -> None:
    _patch(rich_utils)
    for constant, english in _RICH_CONSTANTS.items():
        if hasattr(rich_utils, constant):
            setattr(rich_utils, constant, gettext(english))


class _WhenImported(importlib.abc.MetaPathFinder):
    """Run ``then(module)`` right after ``name`` is first imported.

    Typer imports its Rich help module (which pulls in rich.markdown and pygments,
    ~40 ms) only to print help or an error; importing it just to translate it
    would make every command start slower.
    """

    def __init__(self, name: str, then):
        self.name = name
        self.then = then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader, then = spec.loader, self.then

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                then(module)

        spec.loader = Loader()
        return spec


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _patch(module) -> None:
    if module is None:
        return
    if hasattr(module, "_"):
        module._ = gettext
    if hasattr(module, "ngettext"):
        module.ngettext = ngettext


def _translate_errors(module) -> None:
    """Every Click error's ``format_message`` ends in :func:`translate`."""
    base = getattr(module, "ClickException", None)
    if base is None:
        return
    for cls in [*base.__mro__, *_subclasses(base)]:
        original = cls.__dict__.get("format_message")
        if original is None or getattr(original, "translated", False):
            continue

        def format_message(self, _original=original):
            return translate(_original(self))

        format_message.translated = True
        cls.format_message = format_message


def _subclasses(cls) -> list:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _chinese_usage(module) -> None:
    formatter = getattr(module, "HelpFormatter", None)
    if formatter is None or getattr(formatter.write_usage, "translated", False):
        return
    original = formatter.write_usage

    def write_usage(self, prog, args="", prefix=None):
        return original(self, prog, args, USAGE_PREFIX if prefix is None else prefix)

    write_usage.translated = True
    formatter.write_usage = write_usage


def _chinese_help_option(core) -> None:
    for name in ("TyperCommand", "TyperGroup"):
        cls = getattr(core, name, None)
        if cls is None or getattr(cls.get_help_option, "translated", False):
            continue
        original = cls.get_help_option

        def get_help_option(self, ctx, _original=original):
            option = _original(self, ctx)
            if option is not None:
                option.help = HELP_TEXT
            return option

        get_help_option.translated = True
        cls.get_help_option = get_help_option
