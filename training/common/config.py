"""Typed YAML configs: a file read into nested frozen dataclasses, every key and type checked.

A trainer's config is a frozen dataclass whose fields are plain values (bool, int, float,
str, ``Literal``, optional values, fixed-length tuples) or further frozen dataclasses, one
per YAML section. Unknown keys, wrong types and values a section's ``__post_init__``
refuses (by raising ``ConfigValueError``) become one ``UserInputError`` sentence naming the
key and the file.
"""
from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from backend.errors import UserInputError

T = TypeVar("T")


class ConfigValueError(ValueError):
    """A section's value breaks a rule: ``key`` (the field name) ``requirement`` (a phrase)."""

    def __init__(self, key: str, requirement: str) -> None:
        super().__init__(f"{key} {requirement}")
        self.key = key
        self.requirement = requirement


def require(condition: bool, key: str, requirement: str) -> None:
    """Raise ``ConfigValueError(key, requirement)`` unless ``condition``; for ``__post_init__``."""
    if not condition:
        raise ConfigValueError(key, requirement)


def load_config(path: str | Path, schema: type[T]) -> T:
    """Read the YAML file at ``path`` into ``schema`` (a frozen dataclass)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"config file {path} does not exist; give the path of a YAML config "
                             "(see training/README.md).")
    yaml = _import_yaml()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserInputError(f"config file {path} is not valid YAML{where}; fix its syntax.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"config file {path} cannot be read ({type(error).__name__}); "
                             "give a UTF-8 YAML text file.") from None
    return from_mapping(schema, {} if data is None else data, str(path))


def from_mapping(schema: type[T], data: Any, source: str, prefix: str = "", base: Any = None) -> T:
    """Build ``schema`` from a mapping (a parsed YAML section); ``source`` names the file.

    Keys the mapping leaves out take their values from ``base`` (an instance of ``schema``)
    when given, else the field defaults; a section's own default (a ``default_factory``)
    is the base of that section.
    """
    where = f"section '{prefix[:-1]}'" if prefix else "the top level"
    if not isinstance(data, dict):
        raise UserInputError(f"{source}: {where} must be a mapping of keys to values, not {_shown(data)}; "
                             "fix it in the file.")
    hints = get_type_hints(schema)
    fields = {field.name: field for field in dataclasses.fields(schema)}
    for key in data:
        if key not in fields:
            raise UserInputError(f"{source}: unknown key '{prefix}{key}'; the keys of {where} are "
                                 f"{', '.join(fields)}.")
    values = {}
    for name, field in fields.items():
        hint, default = hints[name], _default(field, base)
        if dataclasses.is_dataclass(hint) and (name in data or default is dataclasses.MISSING):
            values[name] = from_mapping(hint, data.get(name, {}), source, f"{prefix}{name}.",
                                        None if default is dataclasses.MISSING else default)
        elif name in data:
            values[name] = _convert(hint, data[name], prefix + name, source)
        elif default is not dataclasses.MISSING:
            values[name] = default
        else:
            raise UserInputError(f"{source}: '{prefix}{name}' is missing; add it to the file.")
    try:
        return schema(**values)
    except ConfigValueError as error:
        raise UserInputError(f"{source}: '{prefix}{error.key}' {error.requirement}; fix it in the file.") from None


def _default(field: dataclasses.Field, base: Any) -> Any:
    if base is not None:
        return getattr(base, field.name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def with_overrides(config: T, overrides: dict[str, Any], source: str = "the command line") -> T:
    """A copy of ``config`` with dotted keys (``train.out_dir``) replaced; None values are skipped."""
    for dotted, value in overrides.items():
        if value is not None:
            config = _replace(config, dotted.split("."), value, dotted, source)
    return config


def as_dict(config: Any) -> dict[str, Any]:
    """The config as plain YAML-friendly values (tuples become lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return plain(dataclasses.asdict(config))


def dump_config(config: Any, path: Path) -> None:
    """Write the resolved config as YAML (the run's record of what it ran with)."""
    path.write_text(_import_yaml().safe_dump(as_dict(config), sort_keys=False), encoding="utf-8")


def _replace(config: Any, keys: list[str], value: Any, dotted: str, source: str) -> Any:
    names = {field.name for field in dataclasses.fields(config)}
    if keys[0] not in names:
        raise ValueError(f"no config key {dotted}")  # a programming error, not the user's
    if len(keys) > 1:
        value = _replace(getattr(config, keys[0]), keys[1:], value, dotted, source)
    try:
        return dataclasses.replace(config, **{keys[0]: value})
    except ConfigValueError as error:
        raise UserInputError(f"{source}: '{dotted}' {error.requirement}.") from None


def _convert(hint: Any, value: Any, key: str, source: str) -> Any:
    """``value`` checked (and numbers widened) against the type ``hint``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        if value is None and len(options) < len(args):
            return None
        return _convert(options[0], value, key, source) if len(options) == 1 else _refuse(hint, value, key, source)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            _refuse(hint, value, key, source)
        return tuple(_convert(arg, item, key, source) for arg, item in zip(args, value))
    if origin is Literal:
        return value if value in args else _refuse(hint, value, key, source)
    if hint is bool:
        return value if isinstance(value, bool) else _refuse(hint, value, key, source)
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _refuse(hint, value, key, source)
    if hint is float:
        return _as_float(value) if _as_float(value) is not None else _refuse(hint, value, key, source)
    if hint is str:
        return value if isinstance(value, str) else _refuse(hint, value, key, source)
    raise TypeError(f"config type {hint!r} of {key} is not supported")  # a schema error, not the user's


def _as_float(value: Any) -> float | None:
    """Numbers, and number texts such as ``1e-4`` (which YAML 1.1 reads as a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [_describe(arg) for arg in args if arg is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in args else "")
    if origin is tuple:
        return f"a list of {len(args)} {'numbers' if all(a is float for a in args) else 'values'}"
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}.get(hint, str(hint))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _refuse(hint: Any, value: Any, key: str, source: str) -> Any:
    raise UserInputError(f"{source}: '{key}' must be {_describe(hint)}, not {_shown(value)}; fix it in the file.")


def _import_yaml():
    try:
        import yaml
    except ImportError:
        raise UserInputError("PyYAML is not installed; install the training extra: "
                             "pip install -e '.[train]'.") from None
    return yaml
