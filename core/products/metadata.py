"""Reading the metadata files and fields that products carry beside or inside their
images: numbers, ENVI header lists and headers, sibling files, metadata XML, AVIRIS names."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from typing import Optional

import numpy as np

from ..errors import UserInputError


def _floats(values, what: str, path: str) -> np.ndarray:
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise UserInputError(f"INPUT: {what} in '{path}' are not numbers.") from None


def _envi_list(text: Optional[str]) -> Optional[list[str]]:
    """'{1, 2, 3}' → ['1', '2', '3']."""
    if text is None:
        return None
    items = [t for t in re.split(r"[,\s{}]+", str(text)) if t]
    return items or None


def _read_envi_header(path: str) -> dict:
    """Key → value of an ENVI header (values in braces joined across lines)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    items = {}
    for match in re.finditer(r"^\s*([^=\n]+?)\s*=\s*(\{[^}]*\}|[^\n]*)", text, re.M):
        items[match.group(1).strip().lower()] = match.group(2).strip()
    return items


def _sibling(path: str, old: str, candidates: tuple[str, ...]) -> tuple[Optional[str], str]:
    """The first existing file named as ``path`` with the suffix from ``old`` replaced by
    one of ``candidates``; also the name expected (for the error when none exists)."""
    folder, name = os.path.split(path)
    stem = name[:name.upper().rfind(old.upper())]
    for suffix in candidates:
        full = os.path.join(folder, stem + suffix)
        if os.path.isfile(full):
            return full, full
    return None, os.path.join(folder, stem + candidates[0])


def _parse_xml(path: str):
    try:
        return ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise UserInputError(f"INPUT: the product's metadata file '{path}' cannot be read "
                             f"({exc}). Download the product again.") from None


def _aviris_name(name: str) -> Optional[str]:
    lower = name.lower()
    if lower.startswith("av3"):
        return "AVIRIS-3"
    if lower.startswith("ang"):
        return "AVIRIS-NG"
    if re.match(r"^f\d{6}t\d{2}", lower):
        return "AVIRIS"
    return None
