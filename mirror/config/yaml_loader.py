"""Reading PyYAML nodes into typed values, with errors that point at the node.

Split from :mod:`mirror.config.model` so the model and its rules read on their own. We walk the
node graph instead of calling ``yaml.safe_load`` because nodes keep their marks (for
``file:line:column``) and show duplicate keys, which ``safe_load`` silently merges.
``${env:VAR}`` (or ``${env:VAR:-default}``) and ``${file:PATH}`` in string values are
expanded here so secrets never sit in the YAML; ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ENV_RE = re.compile(r"\$\$\{|\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{file:([^}]+)\}")


class ConfigError(ValueError):
    """A config file problem, located precisely enough to fix without searching."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        column: int | None = None,
        key_path: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.key_path = key_path

    @property
    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def __str__(self) -> str:
        where = f" at {self.key_path}" if self.key_path else ""
        return f"{self.location}: invalid config{where}: {self.message}"


def parse_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6addr]:port`` -> (host, port); ValueError with a sentence."""
    text = text.strip()
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s\[\]]+):(\d+)", text)
    if not m:
        raise ValueError(f"{text!r} is not host:port")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} in {text!r} is not between 1 and 65535")
    return host, port


# -- reading nodes -----------------------------------------------------------------------


def kind(node: yaml.Node, value: Any = None) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return "a string"


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class NodeReader:
    """Converts nodes to values, raising ConfigError at the offending node."""

    file: str
    base_dir: Path
    env: Mapping[str, str]
    loader: yaml.SafeLoader
    marks: dict[str, yaml.Mark] = field(default_factory=dict)

    def error(self, node: yaml.Node | None, path: str, message: str) -> ConfigError:
        mark = node.start_mark if node is not None else self._nearest_mark(path)
        if mark is None:
            return ConfigError(message, file=self.file, key_path=path)
        return ConfigError(
            message, file=self.file, line=mark.line + 1, column=mark.column + 1, key_path=path
        )

    def _nearest_mark(self, path: str) -> yaml.Mark | None:
        """The mark of ``path``, or of its closest ancestor when the key was defaulted."""
        while path:
            if path in self.marks:
                return self.marks[path]
            path = re.sub(r"(\.[^.\[\]]*|\[\d+\])$", "", path)
        return None

    def mapping(self, node: yaml.Node, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, f"expected a mapping, got {kind(node, self.plain(node))}")
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                raise self.error(key_node, path, f"keys must be strings, got {kind(key_node, key)}")
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise self.error(
                    key_node, self.join(path, key), f"duplicate key {key!r} (first given on line {first})"
                )
            seen[key] = key_node
        self.loader.flatten_mapping(node)
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node)
            out[key] = (key_node, value_node)
            self.marks[self.join(path, key)] = value_node.start_mark
        return out

    @staticmethod
    def join(path: str, key: str | int) -> str:
        if isinstance(key, int):
            return f"{path}[{key}]"
        return f"{path}.{key}" if path else key

    def check_keys(
        self,
        items: dict[str, tuple[yaml.Node, yaml.Node]],
        node: yaml.Node,
        path: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> None:
        for key, (key_node, _) in items.items():
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f"; known keys: {', '.join(allowed)}"
                raise self.error(key_node, self.join(path, key), f"unknown key {key!r}{hint}")
        for key in required:
            if key not in items:
                raise self.error(node, self.join(path, key), f"missing required key {key!r}")

    def plain(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node)
        return None

    def expand(self, node: yaml.Node, path: str, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            if m.group(3) is not None:
                return self._read_secret_file(node, path, m.group(3))
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            message = f"environment variable {name} is not set (referenced as ${{env:{name}}})"
            raise self.error(node, path, message)

        return _ENV_RE.sub(sub, text)

    def _read_secret_file(self, node: yaml.Node, path: str, name: str) -> str:
        """``${file:PATH}``: the file's text (KIP-297 style), never quoted in an error."""
        file = Path(name.strip()).expanduser()
        if not file.is_absolute():
            file = self.base_dir / file
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            message = f"cannot read {file} (referenced as ${{file:{name}}}): {exc.strerror or type(exc).__name__}"
            raise self.error(node, path, message) from None
        except UnicodeDecodeError:
            raise self.error(node, path, f"{file} (referenced as ${{file:{name}}}) is not UTF-8 text") from None
        return text[:-1] if text.endswith("\n") else text

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node
        value = self.loader.construct_object(node)
        if isinstance(value, str):
            value = self.expand(node, path, value)
        return value

    def string(self, node: yaml.Node, path: str, what: str = "a string") -> str:
        value = self.scalar(node, path)
        if not isinstance(value, str) or not isinstance(node, yaml.ScalarNode):
            raise self.error(node, path, f"expected {what}, got {kind(node, value)}")
        return value

    def number(self, node: yaml.Node, path: str, *, integer: bool, minimum: float) -> Any:
        value = self.scalar(node, path)
        if isinstance(value, str) and isinstance(node, yaml.ScalarNode):
            try:  # an expanded ${env:...} reference
                value = int(value) if integer else float(value)
            except ValueError:
                pass
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if not ok or isinstance(value, bool) or not isinstance(node, yaml.ScalarNode):
            want = "an integer" if integer else "a number"
            raise self.error(node, path, f"expected {want}, got {kind(node, value)}")
        if value < minimum:
            raise self.error(node, path, f"must be at least {minimum:g}, got {value}")
        return value if integer else float(value)

    def boolean(self, node: yaml.Node, path: str) -> bool:
        value = self.scalar(node, path)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(node, path, f"expected true or false, got {kind(node, value)}")
        return value

    def choice(self, node: yaml.Node, path: str, choices: tuple[str, ...]) -> Any:
        value = self.string(node, path, what=f"one of {', '.join(choices)}")
        if value not in choices:
            hint = did_you_mean(value, choices)
            raise self.error(node, path, f"{value!r} is not one of {', '.join(choices)}{hint}")
        return value

    def strings(self, node: yaml.Node, path: str, what: str = "strings") -> list[str]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, path, f"expected a list of {what}, got {kind(node, self.plain(node))}")
        return [self.string(item, self.join(path, i)) for i, item in enumerate(node.value)]

    def regexes(self, node: yaml.Node, path: str) -> list[str]:
        patterns = self.strings(node, path, what="regular expressions")
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.error(
                    node.value[i], self.join(path, i), f"{pattern!r} is not a valid regular expression: {exc}"
                ) from None
        return patterns

    def path_value(self, node: yaml.Node, path: str) -> Path:
        raw = Path(self.string(node, path, what="a path")).expanduser()
        return raw if raw.is_absolute() else (self.base_dir / raw).resolve()


Field = Callable[[NodeReader, yaml.Node, str], Any]


def read_fields(
    r: NodeReader,
    node: yaml.Node,
    path: str,
    fields: Mapping[str, Field],
    required: tuple[str, ...] = (),
    extensions: bool = False,
) -> tuple[dict[str, Any], dict[str, tuple[yaml.Node, yaml.Node]]]:
    """Read a mapping with a fixed key table. With ``extensions``, keys starting with
    ``x-`` are ignored (as in docker compose) so users can hold YAML anchors there."""
    items = r.mapping(node, path)
    if extensions:
        items = {k: v for k, v in items.items() if not k.startswith("x-")}
    r.check_keys(items, node, path, tuple(fields), required)
    values = {key: fields[key](r, value_node, r.join(path, key)) for key, (_, value_node) in items.items()}
    return values, items


def int_field(minimum: int) -> Field:
    return lambda r, n, p: r.number(n, p, integer=True, minimum=minimum)


def float_field(minimum: float) -> Field:
    return lambda r, n, p: r.number(n, p, integer=False, minimum=minimum)


def choice_field(*choices: str) -> Field:
    return lambda r, n, p: r.choice(n, p, choices)


def str_field(r: NodeReader, n: yaml.Node, p: str) -> str:
    return r.string(n, p)


def bool_field(r: NodeReader, n: yaml.Node, p: str) -> bool:
    return r.boolean(n, p)


def regexes_field(r: NodeReader, n: yaml.Node, p: str) -> list[str]:
    return r.regexes(n, p)


def path_field(r: NodeReader, n: yaml.Node, p: str) -> Path:
    return r.path_value(n, p)


def topic_configs_field(r: NodeReader, n: yaml.Node, p: str) -> dict[str, str]:
    items = r.mapping(n, p)
    out = {}
    for key, (_, value_node) in items.items():
        value = r.scalar(value_node, r.join(p, key))
        if not isinstance(value_node, yaml.ScalarNode) or value is None:
            raise r.error(value_node, r.join(p, key), f"expected a scalar, got {kind(value_node, value)}")
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def bootstrap_field(r: NodeReader, n: yaml.Node, p: str) -> list[str]:
    """``host:port``, ``"h1:p1,h2:p2"`` or a list: clients accept all three spellings."""
    entries: list[tuple[str, yaml.Node, str]]
    if isinstance(n, yaml.SequenceNode):
        entries = [(r.string(item, r.join(p, i)), item, r.join(p, i)) for i, item in enumerate(n.value)]
    else:
        text = r.string(n, p, what="host:port, a comma-separated string or a list")
        entries = [(part.strip(), n, p) for part in text.split(",")]
    if not entries:
        raise r.error(n, p, "needs at least one host:port")
    for entry, item, item_path in entries:
        try:
            parse_host_port(entry)
        except ValueError as exc:
            raise r.error(item, item_path, f"{exc} (expected e.g. 127.0.0.1:9092)") from None
    return [entry for entry, _, _ in entries]




def node_field(r: NodeReader, n: yaml.Node, p: str) -> yaml.Node:
    """Defer reading: the caller reads this sub-tree with its own field table."""
    return n
