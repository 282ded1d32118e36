"""A method variant: a method's name and the settings a user changed (`--method_args`).

Written `NAME:key=value,key=value` on the command line and in study files, and labelled
`NAME(key=value,key=value)` everywhere downstream: result folders, metadata.json's `method`,
the results table and plots, job names (sanitized by `naming.py`). A variant without settings
is labelled by its bare name, so default runs keep the names they always had. The label is
canonical once the methods layer has checked the settings (declared order, declared types,
defaults left out), so `MethodArgs.parse` reads it back in an orchestrator job.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from stbench.model.errors import UserError

Value = bool | int | float | str
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")  # a method's name, an entry point's too
_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
_INT = re.compile(r"^[+-]?\d+$")
_TEXT = re.compile(r"^[A-Za-z0-9_.+-]+$")  # a string value: no separator of the syntax
SYNTAX = "NAME:key=value[,key=value...], e.g. ASHA:reduction_factor=4,grace_period=2"


@dataclass(frozen=True)
class MethodArgs:
    """One method variant; `settings` are (name, value) pairs, values typed by `parse`."""

    method: str
    settings: tuple[tuple[str, Value], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MethodArgs:
        """`NAME`, `NAME:k=v,k=v` (the flag's syntax) or `NAME(k=v,k=v)` (a label)."""
        text = text.strip()
        if text.endswith(")") and "(" in text:
            name, _, body = text[:-1].partition("(")
        else:
            name, _, body = text.partition(":")
        if not NAME.match(name):
            raise UserError(f"--method_args '{text}' does not start with a method name; "
                            f"write {SYNTAX}")
        settings: list[tuple[str, Value]] = []
        for item in filter(None, body.split(",")) if body.strip() else ():
            key, equals, raw = item.strip().partition("=")
            if not equals or not _KEY.match(key) or not raw:
                raise UserError(f"--method_args '{text}': '{item}' is not key=value; write "
                                f"{SYNTAX}")
            if key in dict(settings):
                raise UserError(f"--method_args '{text}' sets {key} twice; set it once")
            settings.append((key, _literal(raw, text)))
        return cls(name, tuple(settings))

    @property
    def text(self) -> str:
        """The `--method_args` form, which `parse` reads back."""
        return f"{self.method}:{self._body}" if self.settings else self.method

    @property
    def label(self) -> str:
        """What results, tables and job names call this variant."""
        return f"{self.method}({self._body})" if self.settings else self.method

    @property
    def _body(self) -> str:
        return ",".join(f"{k}={format_value(v)}" for k, v in self.settings)


def tag_value(label: str) -> str:
    """A label in SageMaker's tag-value alphabet (no parentheses or commas)."""
    return label.replace("(", ":").replace(")", "").replace(",", " ")


def format_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:g}"
    return str(value)


def _literal(raw: str, text: str) -> Value:
    """true/false, an integer, a number, else a word."""
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(raw):
        return int(raw)
    try:
        number = float(raw)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            raise UserError(f"--method_args '{text}': {raw} is not a finite number")
        return number
    if not _TEXT.match(raw):
        raise UserError(f"--method_args '{text}': value '{raw}' may use only letters, digits "
                        "and _ . + -")
    return raw


def variants_of(methods: tuple[str, ...], method_args: tuple[MethodArgs, ...]
                ) -> tuple[MethodArgs, ...]:
    """What runs: each --method once with its defaults, or once per --method_args entry
    naming it (a bare `NAME` entry adds its defaults beside the variants)."""
    named = {args.method for args in method_args}
    for args in method_args:
        if args.method not in methods:
            raise UserError(f"--method_args '{args.text}' is for {args.method}, which --method "
                            f"does not list; add it: --method {' '.join(methods)} {args.method}")
    out: list[MethodArgs] = []
    for name in methods:
        if name in named:
            out += [args for args in method_args if args.method == name]
        else:
            out.append(MethodArgs(name))
    labels = [v.label for v in out]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise UserError(f"method {twice[0]} is given twice; give each method or variant once")
    return tuple(out)
