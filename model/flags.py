"""Configuration dataclasses as command-line flags: each setting's default, choices and help live on its field.

A field declared with `option(...)` carries a `Flag` in its metadata; `add_flags` turns the fields of a
dataclass into argparse options and `flag_values` reads them back as keyword arguments for the dataclass, so
a setting is written once, in its dataclass, and every command that offers it gets the same flag.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Flag:
    """How a dataclass field appears on the command line."""

    help: str
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    # The flag's spelling when it is not the field's name (--max-images for max_images_per_request).
    name: str | None = None
    # Older spellings that keep working.
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    # An environment variable whose value, when set, is the flag's default.
    env: str | None = None
    # The default as a user would type it (it is parsed like a typed value): 64 for 64 MiB in bytes.
    typed_default: Callable[[Any], str] | None = None
    # Commands that refuse the flag, each with the reason it prints (exit status 2).
    refused_by: Mapping[str, str] = field(default_factory=dict)
    # A field without a default whose flag may be left out: the command then fills the value in.
    optional: bool = False


def option(default: Any = MISSING, *, default_factory: Any = MISSING, **flag: Any) -> Any:
    """A dataclass field with a command-line flag (keyword arguments of `Flag`)."""
    return field(default=default, default_factory=default_factory, metadata={"flag": Flag(**flag)})


def flag_of(item: Field) -> Flag | None:
    """The field's Flag, or None for a setting that has no flag."""
    return item.metadata.get("flag")


def flagged_fields(config_class: type) -> Iterator[tuple[Field, Flag]]:
    """(field, flag) for every field of `config_class` that has a flag, in declaration order."""
    for item in fields(config_class):
        flag = flag_of(item)
        if flag is not None:
            yield item, flag


def spelling(item: Field, flag: Flag) -> str:
    """The flag as users type it: --batch-size for batch_size unless the Flag names another."""
    return flag.name or "--" + item.name.replace("_", "-")


def add_flags(
    parser: argparse.ArgumentParser,
    config_class: type,
    *,
    only: Collection[str] | None = None,
    skip: Collection[str] = (),
    command: str | None = None,
) -> None:
    """Add a flag for each flagged field of `config_class` (those in `only`, if given, less `skip`).

    A flag whose `refused_by` names `command` is still recognised, so that it fails with its reason
    instead of being silently dropped or ignored.
    """
    for item, flag in flagged_fields(config_class):
        if (only is not None and item.name not in only) or item.name in skip:
            continue
        names = (spelling(item, flag), *flag.aliases)
        if command in flag.refused_by:
            parser.add_argument(*names, action=Refused, reason=flag.refused_by[command], nargs=_arity(item))
            continue
        parser.add_argument(*names, dest=item.name, **_argument_options(item, flag))


def flag_values(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The parsed values of `config_class`'s flags, as keyword arguments for it."""
    return {
        item.name: getattr(args, item.name) for item, _ in flagged_fields(config_class) if item.name in args
    }


def _argument_options(item: Field, flag: Flag) -> dict[str, Any]:
    if item.default is not MISSING and isinstance(item.default, bool):  # a switch turns its default over
        return {"help": flag.help, "action": "store_false" if item.default else "store_true"}
    options: dict[str, Any] = {"help": flag.help, "type": flag.parse, "choices": flag.choices}
    if not flag.choices:  # named for the flag, not the field (MAX_REQUEST_MB, not MAX_REQUEST_BYTES)
        options["metavar"] = flag.metavar or spelling(item, flag).lstrip("-").replace("-", "_").upper()
    if item.default is MISSING and item.default_factory is MISSING:
        return options | {"required": not flag.optional}
    default = item.default if item.default_factory is MISSING else item.default_factory()
    if isinstance(default, list):
        return options | {"action": "append", "default": default}
    if flag.env:
        default = os.environ.get(flag.env, default)
    elif flag.typed_default is not None:
        default = flag.typed_default(default)
    return options | {"default": default}


def _arity(item: Field) -> int | None:
    return 0 if isinstance(item.default, bool) else None


class Refused(argparse.Action):
    """A flag a command recognises only to refuse it with a reason (hidden from its --help)."""

    def __init__(self, option_strings, dest, reason: str, nargs=None, **kwargs):
        super().__init__(
            option_strings, argparse.SUPPRESS, nargs=nargs, default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        self.reason = reason

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string}: {self.reason}")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, unless its text already names it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = (
            action.option_strings
            and action.nargs != 0  # a switch's default is only its absence
            and action.default not in (None, False, [], argparse.SUPPRESS)
        )
        if shown and "default" not in text and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def whole_number(text: str) -> int:
    """argparse type: any integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def number(text: str) -> float:
    """argparse type: any real number."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def bounded(
    convert: Callable[[str], Any], accept: Callable[[Any], bool], problem: str
) -> Callable[[str], Any]:
    """An argparse type: `convert`, then refuse a value `accept` rejects with `problem` (formatted with
    `value`). Its `check(value)` applies the same bound to a value set in Python (`check_values`), so the
    range is declared once, with the flag."""

    def check(value: Any) -> str | None:
        return None if accept(value) else problem.format(value=value)

    def parse(text: str) -> Any:
        value = convert(text)
        message = check(value)
        if message:
            raise argparse.ArgumentTypeError(message)
        return value

    parse.check = check  # type: ignore[attr-defined]
    return parse


positive_int = bounded(whole_number, lambda value: value >= 1, "must be at least 1, got {value}")
non_negative_int = bounded(whole_number, lambda value: value >= 0, "must not be negative, got {value}")
positive_float = bounded(number, lambda value: value > 0, "must be positive, got {value}")
non_negative_float = bounded(number, lambda value: value >= 0, "must not be negative, got {value}")
fraction = bounded(number, lambda value: 0 <= value < 1, "must be in [0, 1), got {value}")
port = bounded(
    whole_number, lambda value: 0 <= value <= 65535, "a port is 0-65535 (0: any free port), got {value}"
)


def check_values(config: Any) -> None:
    """ValueError naming the flag when a field holds a value its flag would refuse: one outside its choices,
    or one its type's bound rejects (for settings set in Python); None stands for "not set" and passes a bound."""
    for item, flag in flagged_fields(type(config)):
        value = getattr(config, item.name)
        if flag.choices is not None and value not in flag.choices:
            raise ValueError(
                f"{spelling(item, flag)} must be one of {', '.join(flag.choices)}, got {value!r}"
            )
        check = getattr(flag.parse, "check", None)
        message = check(value) if check is not None and value is not None else None
        if message:
            raise ValueError(f"{spelling(item, flag)}: {message}")
