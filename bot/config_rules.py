"""How a config section checks itself (``bot/config.py`` declares the sections).

Each section is a frozen stdlib dataclass: every field is converted to its declared type and its rules
applied when the section is built, from YAML or in code, and what is wrong is said at its key path, in
our words. The rules are few: types, bounds, Literals, id shapes and each section's cross-field check.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union


class Invalid(ValueError):
    """What is wrong in one section, each problem at its key path (innermost key last)."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def within(self, key: str) -> Invalid:
        return Invalid([((key, *path), message) for path, message in self.problems])

    def __str__(self) -> str:
        return "; ".join(
            f"{'.'.join(path)}: {message}" if path else message for path, message in self.problems
        )


# --- rules on one value (in Annotated[...]; each takes the value and returns it, or raises) -----------


@dataclass(frozen=True)
class Bounds:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def __call__(self, value: Any) -> Any:
        if value is None:
            return value
        if self.ge is not None and value < self.ge:
            raise ValueError(f"must be at least {self.ge:g}, not {value!r}")
        if self.gt is not None and value <= self.gt:
            raise ValueError(f"must be more than {self.gt:g}, not {value!r}")
        if self.le is not None and value > self.le:
            raise ValueError(f"must be at most {self.le:g}, not {value!r}")
        return value


def at_least(n: float) -> Bounds:
    return Bounds(ge=n)


def above(n: float) -> Bounds:
    return Bounds(gt=n)


def between(low: float, high: float) -> Bounds:
    return Bounds(ge=low, le=high)


@dataclass(frozen=True)
class Shape:
    pattern: str
    what: str

    def __call__(self, value: Any) -> Any:
        if value is not None and not re.fullmatch(self.pattern, value):
            raise ValueError(f"{value!r} is not {self.what}")
        return value


@dataclass(frozen=True)
class PlatformId(Shape):
    """A platform id as YAML gives it, a whole number or a string, kept as text: YAML reads a
    snowflake as an exact Python int, but a float (or true/false) has already lost what it was."""

    def text(self, value: Any) -> Any:
        if isinstance(value, bool | float):
            raise ValueError("write the id as a whole number or in quotes")
        if isinstance(value, int):
            return str(value)
        return value.strip() if isinstance(value, str) else value


def known_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/London)") from None
    return value


# --- the checking --------------------------------------------------------------------------------------


def _kind(hint: Any) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    if isinstance(hint, type) and issubclass(hint, Section):
        return "a mapping of keys"
    return str(hint)


def convert(hint: Any, value: Any) -> Any:
    """``value`` as the type ``hint`` describes, or Invalid naming what is wrong (at the path below
    this value: a list index, a mapping key, a section's keys)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *rules = typing.get_args(hint)
        for rule in rules:
            if isinstance(rule, PlatformId):
                value = _one(rule.text, value)
        value = convert(base, value)
        for rule in rules:
            value = _one(rule, value)
        return value
    if origin is Union or origin is types.UnionType:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]  # only `X | None` is used here
        return convert(inner, value)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise Invalid([((), f"{value!r} is not one of {', '.join(repr(a) for a in allowed)}")])
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise Invalid([((), f"expected a list, not {value!r}")])
        (item,) = typing.get_args(hint)
        return _each(enumerate(value), item, lambda pairs: [v for _, v in pairs])
    if origin is dict:
        if not isinstance(value, dict):
            raise Invalid([((), f"expected a mapping of keys, not {value!r}")])
        _, item = typing.get_args(hint)
        return _each(value.items(), item, dict)
    if isinstance(hint, type) and issubclass(hint, Section):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise Invalid([((), f"expected a mapping of keys, not {value!r}")])
        unknown = [str(k) for k in value if k not in hint.field_types()]
        if unknown:
            raise Invalid([((k,), "not a known key") for k in unknown])
        return hint(**value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not hint:  # bool is an int to Python, not to a config
        raise Invalid([((), f"expected {_kind(hint)}, not {value!r}")])
    return value


def _one(rule: Callable[[Any], Any], value: Any) -> Any:
    try:
        return rule(value)
    except Invalid:
        raise
    except ValueError as err:
        raise Invalid([((), str(err))]) from None


def _each(pairs: Any, hint: Any, build: Callable[[Any], Any]) -> Any:
    out, problems = [], []
    for key, value in pairs:
        try:
            out.append((key, convert(hint, value)))
        except Invalid as err:
            problems += err.within(str(key)).problems
    if problems:
        raise Invalid(problems)
    return build(out)


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


class Section:
    """A frozen config section: every field is converted to its type and checked when the section is
    built (from YAML or in code), then ``_check`` relates fields to each other."""

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """Each field's name and its type, as written (with its rules)."""
        hints = _FIELD_TYPES.get(cls)
        if hints is None:
            every = typing.get_type_hints(cls, include_extras=True)
            fields = dataclasses.fields(typing.cast(Any, cls))
            hints = _FIELD_TYPES[cls] = {f.name: every[f.name] for f in fields}
        return hints

    def __post_init__(self) -> None:
        problems = []
        for name, hint in self.field_types().items():
            try:
                object.__setattr__(self, name, convert(hint, getattr(self, name)))
            except Invalid as err:
                problems += err.within(name).problems
        if problems:
            raise Invalid(problems)
        try:
            self._check()
        except Invalid:
            raise
        except ValueError as err:
            raise Invalid([((), str(err))]) from None

    def _check(self) -> None:
        """Rules across fields; raise ValueError with the reason."""
