"""Tool names as the API accepts them (`^[a-zA-Z0-9_-]{1,64}$`), mapped back to the names we gave.

MCP tool names may contain dots, slashes or spaces and be of any length; the API refuses them. A
`NameMap` turns every name offered for a request into a wire name, reversibly and deterministically:
the same set of names always maps the same way, whatever order it comes in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

MAX_LENGTH = 64
WIRE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
NAMESPACE_SEPARATOR = "__"
_INVALID = re.compile(r"[^a-zA-Z0-9_-]+")
_HASH_CHARS = 8


def namespaced(server: str, tool: str) -> str:
    """The name an MCP server's tool is offered under: `SERVER__tool` (cleaned later by a NameMap)."""
    return f"{server}{NAMESPACE_SEPARATOR}{tool}"


def _digest(name: str, length: int) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:length]


def clean_name(name: str) -> str:
    """`name` with every run of characters the API refuses replaced by `_`, shortened to 64 characters.

    A name that had to change in any way but replacement gets a hash suffix of the original, so two long
    names that share their first 64 characters still differ.
    """
    cleaned = _INVALID.sub("_", name) or "tool"
    if len(cleaned) <= MAX_LENGTH:
        return cleaned
    suffix = "_" + _digest(name, _HASH_CHARS)
    return cleaned[: MAX_LENGTH - len(suffix)] + suffix


class NameMap:
    """Original names <-> wire names for one set of tools.

    Names that are already valid keep themselves. Every other name is cleaned; when a cleaned name is
    taken (by a valid name, or by another name cleaned the same way), it gets a hash suffix of its
    original, lengthened until it is free. Originals are handled in sorted order, so the outcome never
    depends on the order tools were registered in.
    """

    def __init__(self, names: Iterable[str]) -> None:
        originals = sorted(set(names))
        self._wire: dict[str, str] = {}
        self._original: dict[str, str] = {}
        for name in originals:
            if WIRE_NAME.match(name):
                self._bind(name, name)
        for name in originals:
            if name not in self._wire:
                self._bind(name, self._free_name(name))

    def _bind(self, original: str, wire: str) -> None:
        self._wire[original] = wire
        self._original[wire] = original

    def _free_name(self, name: str) -> str:
        cleaned = clean_name(name)
        length = _HASH_CHARS
        while cleaned in self._original:
            suffix = "_" + _digest(name, length)
            base = _INVALID.sub("_", name) or "tool"
            cleaned = base[: MAX_LENGTH - len(suffix)] + suffix
            length += 1
        return cleaned

    def wire(self, original: str) -> str:
        """The wire name of a name given to the map; KeyError for any other name."""
        return self._wire[original]

    def original(self, wire: str) -> str | None:
        """The name a wire name stands for, or None when no offered tool has that wire name."""
        return self._original.get(wire)
