"""Typed configuration: dataclasses built from plain mappings (YAML), with every key and type checked."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from graphrec.errors import ConfigError


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'}: expected a mapping, found {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    values = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        values[key] = _convert(hints[key], value, path)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise _located(exc, where, names) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or 'top level'}: {exc}") from None


def _located(exc: ConfigError, where: str, names: set[str]) -> ConfigError:
    """``exc`` from a dataclass's own checks, prefixed with where it was read: ``model.dim must be ...``."""
    text = str(exc)
    if not where or text.startswith(where):
        return exc
    first = text.split(" ", 1)[0].rstrip(":,")
    return ConfigError(f"{where}.{text}" if first in names else f"{where}: {text}")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type) and isinstance(value, tp):
        return value  # parsed already (a section whose concrete class its own keys pick)
    if dataclasses.is_dataclass(tp):
        parse = getattr(tp, "__from_mapping__", None)  # a base whose concrete class the mapping names
        return parse(value, path) if parse is not None else from_dict(tp, value, path)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{path}: unexpected {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: expected one of {list(args)}, found {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, found {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, found {len(value)}")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, found {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, found {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, found {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, found {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported type {tp}")  # pragma: no cover
