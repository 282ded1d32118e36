"""A method's settings: typed, documented, with defaults, checked where the user gives them.

`Setting` declares one keyword argument of a scheduler factory (the name Syne Tune's
constructor uses); `check_args` turns a user's `MethodArgs` into the canonical variant (declared
types and order, defaults left out, so `ASHA:grace_period=1` is plain `ASHA`), and
`resolve` gives the factory every setting's value. Bad values are one-line UserErrors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stbench.model.errors import UserError, did_you_mean
from stbench.model.method_args import MethodArgs, Value, format_value

_KINDS: dict[type, str] = {int: "an integer", float: "a number", bool: "true or false",
                           str: "a word"}


@dataclass(frozen=True)
class Setting:
    """One setting: its factory keyword, type, default (None: `auto` decides) and meaning."""

    name: str
    kind: type
    default: Value | None
    meaning: str
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False  # the minimum itself is not allowed
    choices: tuple[str, ...] = ()
    auto: str = ""  # what a None default means

    def describe_default(self) -> str:
        return f"auto ({self.auto})" if self.default is None else format_value(self.default)

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + "|".join(self.choices)
        low = "" if self.minimum is None else f"{'>' if self.above else '>='} {self.minimum:g}"
        high = "" if self.maximum is None else f"<= {self.maximum:g}"
        return ", ".join(p for p in (low, high) if p)

    def coerce(self, method: str, value: Value) -> Value:
        """The value as this setting's type, or a UserError saying what it must be."""
        ok: Value | None = None
        if self.kind is bool:
            ok = value if isinstance(value, bool) else None
        elif isinstance(value, bool):
            ok = None
        elif self.kind is int:
            ok = value if isinstance(value, int) else None
        elif self.kind is float:
            ok = float(value) if isinstance(value, int | float) else None
        elif self.kind is str:
            ok = format_value(value)
        wanted = self.describe_range()
        if ok is None:
            raise UserError(f"{method} setting {self.name} must be {_KINDS[self.kind]}"
                            f"{f' ({wanted})' if wanted else ''}, got {format_value(value)}")
        if self.choices and ok not in self.choices:
            raise UserError(f"{method} setting {self.name} must be one of "
                            f"{', '.join(self.choices)}, got {ok}"
                            f"{did_you_mean(str(ok), self.choices)}")
        if not isinstance(ok, str | bool):
            too_low = self.minimum is not None and (
                ok < self.minimum or (self.above and ok == self.minimum))
            too_high = self.maximum is not None and ok > self.maximum
            if too_low or too_high:
                raise UserError(f"{method} setting {self.name} must be {wanted}, got "
                                f"{format_value(ok)}")
        return ok


def check_args(method: str, settings: tuple[Setting, ...], args: MethodArgs) -> MethodArgs:
    """The canonical variant of `args`: every key known, values typed, defaults left out."""
    declared = {s.name: s for s in settings}
    given = dict(args.settings)
    for key in given:
        if key not in declared:
            valid = ", ".join(declared) if declared else "none"
            raise UserError(f"{method} has no setting '{key}'; valid ones: {valid}"
                            f"{did_you_mean(key, declared)} (see `stbench methods --details`)")
    canonical = []
    for setting in settings:
        if setting.name in given:
            value = setting.coerce(method, given[setting.name])
            if value != setting.default:
                canonical.append((setting.name, value))
    return MethodArgs(args.method, tuple(canonical))


def resolve(settings: tuple[Setting, ...], args: MethodArgs) -> Mapping[str, Any]:
    """Every setting's value for the factory: the variant's, else the default."""
    given = dict(args.settings)
    return {s.name: given.get(s.name, s.default) for s in settings}
