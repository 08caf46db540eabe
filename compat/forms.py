"""Form fields described once: the parsers read them and the OpenAPI schema shows them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from compat.errors import InvalidRequest

FieldKind = Literal["file", "string", "number", "boolean", "array"]
QUOTED_CHARACTERS = 60  # of a client's value shown in a message: a field may be megabytes
MAX_UNKNOWN_LISTED = 20  # unknown field names logged per request


def quoted(value: str) -> str:
    """A client's value in single quotes for a message or a log line, cut short when long."""
    if len(value) > QUOTED_CHARACTERS:
        value = value[:QUOTED_CHARACTERS] + f"... ({len(value)} characters)"
    return f"'{value}'"


@dataclass(frozen=True)
class FormField:
    """One multipart field of a route.

    Attributes:
        name: the name on the wire (``timestamp_granularities[]`` with its brackets; an array is also
            read as ``name[0]``, ``name[1]``, ..., as PHP and query-string encoders send one).
        kind: how it is typed in the schema.
        description: what it does, for ``/docs``.
        choices: the allowed values, if the field is an enumeration (of items, for arrays).
        default: shown in ``/docs``, and sent by its "Try it out" form as if the user had chosen it, so
            only a value no setting changes (the parser applies its own default).
        required: whether a request without it is refused.
        aliases: other names accepted for the same field.
        keyed: an object may also come as one field per key, ``name[key]``: how the official
            OpenAI SDKs send an object in a multipart form.
    """

    name: str
    kind: FieldKind
    description: str
    choices: tuple[str, ...] = ()
    default: str | float | bool | None = None
    required: bool = False
    aliases: tuple[str, ...] = ()
    keyed: bool = False


class FormReader:
    """Typed access to a multipart form's text fields, raising ``InvalidRequest`` on bad values.

    Args:
        fields: the route's field descriptions.
        values: every text value sent, by field name (a field may repeat).
    """

    def __init__(self, fields: Sequence[FormField], values: Mapping[str, Sequence[str]]) -> None:
        self._fields = {f.name: f for f in fields}
        self._values = values
        known = {name for f in fields for name in (f.name, *f.aliases)}
        keyed = tuple(f.name + "[" for f in fields if f.keyed)
        unknown = sorted(
            name
            for name in values
            if name not in known
            and not (name.startswith(keyed) and name.endswith("]"))
            and _indexed(name, fields) is None
        )
        # for the log: a urlencoded body's names have no length limit, nor their number
        self.unknown = [name[:QUOTED_CHARACTERS] for name in unknown[:MAX_UNKNOWN_LISTED]]

    def _raw(self, name: str) -> list[str]:
        field = self._fields[name]
        out: list[str] = []
        for key in (field.name, *field.aliases):
            out.extend(self._values.get(key, ()))
        if field.kind == "array":
            indexed = sorted((i, key) for key in self._values if (i := _indexed(key, (field,))) is not None)
            for _, key in indexed:
                out.extend(self._values[key])
        return out

    def text(self, name: str) -> str | None:
        """The field's value, stripped; None when absent or blank."""
        raw = self._raw(name)
        if len(raw) > 1:
            raise InvalidRequest(f"'{name}' was sent {len(raw)} times; send it once.", param=name)
        value = raw[0].strip() if raw else ""
        if not value and self._fields[name].required:
            raise InvalidRequest(f"'{name}' is required.", param=name)
        return value or None

    def choice(self, name: str, default: str) -> str:
        """One of the field's choices (case-insensitive), else ``default`` when absent."""
        value = self.text(name)
        if value is None:
            return default
        choices = self._fields[name].choices
        if value.lower() not in choices:
            raise InvalidRequest(
                f"{quoted(value)} is not a valid value for '{name}'; use one of: {', '.join(choices)}.", param=name
            )
        return value.lower()

    def number(self, name: str, *, low: float, high: float) -> float | None:
        """A number within ``[low, high]``, or None when absent."""
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise InvalidRequest(f"'{name}' must be a number, not {quoted(value)}.", param=name) from None
        if not low <= number <= high:
            raise InvalidRequest(f"'{name}' must be between {low:g} and {high:g}, not {number:g}.", param=name)
        return number

    def boolean(self, name: str) -> bool:
        """``true``/``false`` (also 1/0, yes/no); False when absent."""
        value = self.text(name)
        if value is None:
            return False
        lowered = value.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise InvalidRequest(f"'{name}' must be true or false, not {quoted(value)}.", param=name)

    def keys(self, name: str) -> dict[str, str]:
        """A keyed field's ``name[key]`` values by key (empty when it came as one field or not at all)."""
        if not self._fields[name].keyed:
            raise ValueError(f"{name} is not a keyed field")
        prefix = name + "["
        out: dict[str, str] = {}
        for field, raw in self._values.items():
            if field.startswith(prefix) and field.endswith("]"):
                if len(raw) > 1:
                    raise InvalidRequest(f"'{field}' was sent {len(raw)} times; send it once.", param=name)
                out[field[len(prefix) : -1]] = raw[0].strip() if raw else ""
        return out

    def items(self, name: str) -> list[str]:
        """Every value of a repeated field, checked against its choices.

        Comma-separated values are split, and a JSON array of strings is read as its items
        (``["word", "segment"]``, as a client that serialises lists to JSON sends one).
        """
        choices = self._fields[name].choices
        out = []
        for raw in self._raw(name):
            listed = _json_list(raw)
            for item in listed if listed is not None else raw.split(","):
                item = item.strip().lower()
                if not item:
                    continue
                if choices and item not in choices:
                    raise InvalidRequest(
                        f"{quoted(item)} is not a valid value for '{name}'; use any of: {', '.join(choices)}.",
                        param=name,
                    )
                out.append(item)
        return out


def _indexed(key: str, fields: Sequence[FormField]) -> int | None:
    """The index of ``key`` when it is an array field's ``name[N]`` (``timestamp_granularities[0]``), else None."""
    for field in fields:
        base = field.name.removesuffix("[]")
        if field.kind == "array" and key.startswith(base + "[") and key.endswith("]"):
            index = key[len(base) + 1 : -1]
            if index.isdigit() and index.isascii() and len(index) <= 4:
                return int(index)
    return None


def _json_list(raw: str) -> list[str] | None:
    """The strings of a JSON array, when ``raw`` is one (and short, as a list of choices is); else None."""
    text = raw.strip()
    if not (text.startswith("[") and text.endswith("]")) or len(text) > 1024:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None
