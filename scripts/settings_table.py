"""Print docs/settings.md's table from gateway.settings (run it after changing a setting)."""

from __future__ import annotations

from enum import Enum

import msgspec

from gateway.settings import Settings, field_docs


def table() -> str:
    """The settings as a Markdown table: variable, flag, default, meaning."""
    docs = field_docs()
    rows = ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for field in msgspec.structs.fields(Settings):
        default = field.default
        if isinstance(default, tuple):
            default = ",".join(default)
        if isinstance(default, Enum):
            default = default.value
        shown = f"`{default}`" if str(default) != "" else "empty"
        rows.append(f"| `{field.name.upper()}` | `--{field.name.replace('_', '-')}` | {shown} | {docs[field.name]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
