"""Matching reference values to INPUT classes: the CLASS_NAMES text ('reference value =
INPUT class'), and the case- and space-insensitive keys that names and codes match by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ..errors import UserInputError


def match_key(text: str) -> str:
    """Case- and space-insensitive form of a class name or value; numbers canonical
    ('2', '2.0' and ' 2 ' are the same key)."""
    key = " ".join(str(text).lower().split())
    try:
        number = float(key)
    except ValueError:
        return key
    return str(int(number)) if number.is_integer() else key


def parse_class_names(text: Optional[str], param: str = "CLASS_NAMES") -> list[tuple[str, str]]:
    """'1=water; 2=trees; Asphalt=roads' → [('1', 'water'), ('2', 'trees'),
    ('Asphalt', 'roads')]: reference value = INPUT class (name or code). Entries are
    separated by ';' or new lines. Empty text: []."""
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    example = "e.g. '1=water; 2=trees; Asphalt=roads'"
    for chunk in (text or "").replace("\n", ";").split(";"):
        if not chunk.strip():
            continue
        reference, sep, target = chunk.partition("=")
        reference, target = reference.strip(), target.strip()
        if not sep or not reference or not target:
            raise UserInputError(
                f"{param}: '{chunk.strip()}' is not 'reference value = INPUT class'. Write "
                f"one entry per reference value, separated by ';', {example}."
            )
        if match_key(reference) in seen:
            raise UserInputError(
                f"{param}: the reference value '{reference}' is given twice. Give each "
                f"reference value once (several values may map to the same INPUT class)."
            )
        seen[match_key(reference)] = target
        pairs.append((reference, target))
    return pairs


@dataclass
class Value:
    """A reference value while matching: its display label, the keys CLASS_NAMES may
    use for it, and its default INPUT class."""

    label: str
    keys: set
    default: Optional[int]
    numeric: bool = True  # False for a text field


def find_input_class(target: str, names: Sequence[str]) -> Optional[int]:
    """The INPUT class (1..C) a name or code designates, or None."""
    key = match_key(target)
    for code, name in enumerate(names, start=1):
        if match_key(name) == key:
            return code
    if key.isdigit() and 1 <= int(key) <= len(names):
        return int(key)
    return None


def match_values(values: dict, names: Sequence[str], pairs: list[tuple[str, str]],
           warnings: list) -> dict:
    """{reference id: INPUT class or None}. Without CLASS_NAMES the default matching of
    each value applies; with it, CLASS_NAMES is the whole mapping."""
    if not pairs:
        return {rid: value.default for rid, value in values.items()}
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names, start=1))
    matched: dict = dict.fromkeys(values)
    for reference, target in pairs:
        code = find_input_class(target, names)
        if code is None:
            raise UserInputError(
                f"CLASS_NAMES: '{target}' (given for '{reference}') is not a class of INPUT. "
                f"Its classes are {shorten(listing)}; name one of them or give its code."
            )
        hits = [rid for rid, value in values.items() if match_key(reference) in value.keys]
        if not hits:
            warnings.append(f"CLASS_NAMES: no reference pixel on INPUT's grid has the value "
                            f"'{reference}'.")
        for rid in hits:
            matched[rid] = code
    return matched


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def sort_key(label: str):
    key = match_key(label)
    return (0, int(key), "") if key.isdigit() else (1, 0, key)
