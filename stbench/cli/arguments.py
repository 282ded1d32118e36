"""The parser every `stbench` command shares, and `ExperimentSpec`'s flags.

One option per spec field, in both spellings (`--experiment_tag` and `--experiment-tag`), for
`run` and `launch` alike. Its own module, so `main.py` and the commands it loads on use
import it and not each other.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, fields
from typing import Any, NoReturn

from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we want one line and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)  # `--bench` must not silently mean --benchmark
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message}; see `{self.prog} --help`")


def _scalar_type(annotation: Any) -> type:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is tuple:
        return args[0]
    return args[0] if args else annotation


FLAG_VALUES = {"1": True, "true": True, "0": False, "false": False}


def flag_value(text: str) -> bool:
    """The value of an on/off flag given one: 1 or 0 (true or false)."""
    value = FLAG_VALUES.get(text.strip().lower())
    if value is None:
        hint = ": give the study file first" if text.endswith((".yaml", ".yml")) else ""
        raise argparse.ArgumentTypeError(f"expected 1 or 0 (or no value), got '{text}'{hint}")
    return value


def add_spec_arguments(parser: argparse.ArgumentParser, only_given: bool = False) -> None:
    """One option per spec field; with `only_given`, absent flags stay out of the namespace
    (so they can't override a study file) and none is required."""
    hints = typing.get_type_hints(ExperimentSpec)
    for spec_field in fields(ExperimentSpec):
        if spec_field.name == "extra_args":
            continue
        meta = spec_field.metadata
        names = [f"--{spec_field.name}"]
        if "_" in spec_field.name:
            names.append(f"--{spec_field.name.replace('_', '-')}")
        options: dict[str, Any] = {"help": meta["help"], "dest": spec_field.name}
        kind = _scalar_type(hints[spec_field.name])
        if kind is bool and "nargs" not in meta.get("argparse", {}):
            options["action"] = "store_true"
        else:  # a bool with nargs="?" also takes 1 or 0 (Syne Tune's `--warm_pool 1`)
            options["type"] = kind
            if kind is bool:
                options.update(type=flag_value, metavar="1|0")
            options.update(meta.get("argparse", {}))
        if only_given:
            options["default"] = argparse.SUPPRESS
        elif spec_field.default is MISSING and spec_field.default_factory is MISSING:
            options["required"] = True
        elif spec_field.default is not MISSING:
            options["default"] = spec_field.default
        parser.add_argument(*names, **options)


def parse_extra_args(tokens: list[str]) -> dict[str, str]:
    """Benchmark arguments: `--key value` pairs the benchmark validates later."""
    extra: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("--") or index + 1 >= len(tokens):
            raise UserError(
                f"unexpected argument '{token}'; benchmark arguments are given as --key value"
            )
        extra[token[2:].replace("-", "_")] = tokens[index + 1]
        index += 2
    return extra
