"""Command-line flags generated from the config dataclasses, and one-line errors."""
from __future__ import annotations

import argparse
import dataclasses
import decimal
import json
import re
import sys
from typing import Any, NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """Reports bad arguments in one line on stderr and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_bool(text: str) -> bool:
    lowered = str(text).lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def parse_int(text: str) -> int:
    """An integer, also as written in scientific notation (``--steps 1e6``), exactly."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        value = decimal.Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'")
    return int(value)


def parse_json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got '{text}' ({error.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got '{text}'")
    return value


def _field_type(f: dataclasses.Field) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def add_config_flags(parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag-name`` per field; defaults are suppressed so only explicit flags are set."""
    for f in dataclasses.fields(config_class):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = _field_type(f)
        help_text = f"{f.metadata.get('help', '')} (default: {json.dumps(default)})"
        common = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if kind == "bool":
            parser.add_argument(flag, type=parse_bool, nargs="?", const=True, metavar="BOOL", **common)
        elif kind == "dict":
            parser.add_argument(flag, type=parse_json_dict, metavar="JSON", **common)
        elif kind in ("int", "float", "str"):
            parser.add_argument(flag, type={"int": parse_int, "float": float, "str": str}[kind],
                                choices=f.metadata.get("choices"), **common)
        else:  # pragma: no cover - a new field type needs a parser here
            raise TypeError(f"no command-line parser for field {f.name}: {kind}")


def explicit_settings(namespace: argparse.Namespace, config_class: type) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in vars(namespace).items() if k in names}


def fail(message: str) -> NoReturn:
    """Prints ``error: message`` on stderr, on one line (a message quoting a space or an array may
    span several), and exits with status 2."""
    one_line = re.sub(r"\s*\n\s*", " ", message.strip())
    print(f"error: {one_line}", file=sys.stderr)
    raise SystemExit(2)
