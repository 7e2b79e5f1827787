"""The one YAML loader for specs, spaces, experiments and configs: safe (plain data only), strict
about duplicate keys, YAML 1.2 floats (`1e-3` is a number), one-line errors. Aliases are refused
(none of these files needs one, and an alias bomb expands to gigabytes); nesting is capped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from nas.errors import SpecError

MAX_YAML_BYTES = 10 * 1024**2  # specs, spaces and configs are a few KB; refuse before reading
MAX_YAML_DEPTH = 50  # the deepest shipped file nests 5 levels; deeper is not a nas file


class StrictSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that also refuses a key given twice (plain YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # unhashable keys get SafeLoader's own error
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"alias *{event.anchor} is not allowed (nas files take no anchors or"
                " aliases: write the value out)", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.1 (PyYAML) reads `1e9` and `1e-3` as strings: a dot and a signed exponent are required.
# Read them as numbers, as YAML 1.2 and OmegaConf do, so `lr: 1e-3` is not "must be a number".
StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass


def dump_yaml(data: Any) -> str:
    """Plain data as block YAML, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False)


def read_yaml(path: str | Path) -> Any:
    """Safe-load a YAML file with a one-line error for missing, huge, binary or malformed files."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{path}: is a folder, not a YAML file")
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise SpecError(f"{path}: {size:,} bytes is too large for a YAML file"
                            f" (at most {MAX_YAML_BYTES:,}); is it the right file?")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not a text (UTF-8) file: byte {err.start} is invalid") from None
    except OSError as err:
        raise SpecError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        return safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise SpecError(f"{path}:{where}: malformed YAML: {problem}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to read") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise SpecError(f"{path}: unreadable value: {' '.join(str(err).split())[:200]}") from None
