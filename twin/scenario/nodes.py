"""Typed, marked access to YAML mapping nodes: every error names the file, the line and the field.

`NodeReader` wraps one mapping node of a document loaded with yaml's node API (so marks survive):
numbers, integers and strings with bounds, nested mappings and sequences, and an unknown-key
check when a section is done. `twin.scenario.reader` builds the scenario with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import yaml

T = TypeVar("T")


class ScenarioError(ValueError):
    """The scenario file is wrong: its author is at fault. Names file, line and field."""

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        super().__init__(f"{source}:{line}: {field}: {message}")
        self.source = source
        self.line = line
        self.field = field


class NodeReader:
    """Typed access to one mapping node, with marks for errors and an unknown-key check."""

    def __init__(self, loader: yaml.SafeLoader, node: yaml.Node, field: str, source: str) -> None:
        self.loader = loader
        self.node = node
        self.field = field
        self.source = source
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, field, "expected a mapping")
        self.items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.fail(key_node, field, "keys must be plain strings")
            if key in self.items:
                self.fail(key_node, self.sub(key), "duplicate key")
            self.items[key] = (key_node, value_node)
        self.used: set[str] = set()

    def fail(self, node: yaml.Node, field: str, message: str) -> NoReturn:
        raise ScenarioError(self.source, node.start_mark.line + 1, field or "<root>", message)

    def sub(self, key: str) -> str:
        return f"{self.field}.{key}" if self.field else key

    def has(self, key: str) -> bool:
        return key in self.items

    def value_node(self, key: str) -> yaml.Node:
        if key not in self.items:
            self.fail(self.node, self.sub(key), "required field is missing")
        self.used.add(key)
        return self.items[key][1]

    def scalar(self, key: str) -> tuple[Any, yaml.Node]:
        node = self.value_node(key)
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, self.sub(key), "expected a single value")
        return self.loader.construct_object(node, deep=True), node

    def number(
        self,
        key: str,
        default: float | None = None,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
    ) -> float:
        if default is not None and key not in self.items:
            return default
        value, node = self.scalar(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(node, self.sub(key), f"expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            self.fail(node, self.sub(key), "must be finite")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            self.fail(node, self.sub(key), f"must be {'>' if lo_open else '>='} {lo:g}, got {value:g}")
        if hi is not None and value > hi:
            self.fail(node, self.sub(key), f"must be <= {hi:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int | None = None, lo: int = 0, hi: int | None = None) -> int:
        if default is not None and key not in self.items:
            return default
        value, node = self.scalar(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, self.sub(key), f"expected an integer, got {value!r}")
        if value < lo:
            self.fail(node, self.sub(key), f"must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            self.fail(node, self.sub(key), f"must be <= {hi}, got {value}")
        return int(value)

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        if default is not None and key not in self.items:
            return default
        value, node = self.scalar(key)
        if not isinstance(value, str) or not value:
            self.fail(node, self.sub(key), f"expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            self.fail(node, self.sub(key), f"must be one of {', '.join(choices)}; got {value!r}")
        return str(value)

    def mapping(self, key: str) -> NodeReader:
        return NodeReader(self.loader, self.value_node(key), self.sub(key), self.source)

    def sequence(self, key: str, item: Callable[[NodeReader], T], allow_empty: bool = False) -> tuple[T, ...]:
        if allow_empty and key not in self.items:
            return ()
        node = self.value_node(key)
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, self.sub(key), "expected a list")
        if not node.value and not allow_empty:
            self.fail(node, self.sub(key), "must not be empty")
        out = []
        for i, child in enumerate(node.value):
            reader = NodeReader(self.loader, child, f"{self.sub(key)}[{i}]", self.source)
            out.append(item(reader))
            reader.done()
        return tuple(out)

    def done(self) -> None:
        for key, (key_node, _) in self.items.items():
            if key not in self.used:
                self.fail(key_node, self.sub(key), "unknown field")
