"""Looking for secrets in what Kartu leaves behind: exported histories, logs, command output.

- ``Needle``: one secret as a regular expression (a PAN in any grouping, a CVV next to its
  field name, a literal secret).
- ``clear_views``: a JSON export as an outsider reads it: the text, plus every base64 string
  decoded (the ``temporal`` CLI prints payload data and metadata as base64).
- ``payload_encodings`` / ``decrypt_payloads``: every payload of an export with its path, and
  the plaintext of the encrypted ones under the codec keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from codec import KartuCodec

ENCRYPTED = "binary/encrypted"
_BASE64 = re.compile(r"^[A-Za-z0-9+/]{8,}={0,2}$")
# Payloads Temporal keeps in clear by design (DESIGN: search attributes and memo).
_CLEAR_BY_DESIGN = ("searchAttributes", "memo", "header")


@dataclass(frozen=True)
class Needle:
    name: str
    pattern: re.Pattern[str]

    @classmethod
    def literal(cls, name: str, value: str) -> Needle:
        return cls(name, re.compile(re.escape(value)))

    @classmethod
    def pan(cls, name: str, pan: str) -> Needle:
        """The digits in order, alone or grouped by spaces, dashes or dots."""
        return cls(name, re.compile(r"(?<![0-9])" + r"[ .\-]?".join(pan) + r"(?![0-9])"))

    @classmethod
    def cvv(cls, cvv: str) -> Needle:
        """``"cvv": "739"``, ``cvv=739``, ``'cvc': 739``, URL-encoded forms."""
        name = r"(?<![a-z])(?:cvv2?|cvc2?|csc|security[ _-]?code)"
        glue = r"(?:%[0-9a-f]{2}|[\s\"'`:=\\,(])*"
        return cls("CVV", re.compile(name + glue + re.escape(cvv) + r"(?![0-9])", re.I))


@dataclass(frozen=True)
class Hit:
    needle: str
    source: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.needle} in {self.source}: ...{self.excerpt}..."


def find(needles: Iterable[Needle], texts: Iterable[tuple[str, str]]) -> list[Hit]:
    hits: list[Hit] = []
    texts = list(texts)
    for needle in needles:
        for source, text in texts:
            for match in needle.pattern.finditer(text):
                start, end = max(match.start() - 40, 0), min(match.end() + 40, len(text))
                hits.append(Hit(needle.name, source, text[start:end].replace("\n", "\\n")))
                break  # one per source is enough to say where
    return hits


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, (*path, str(index)))


def _b64(text: str) -> bytes | None:
    if len(text) % 4 or not _BASE64.match(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def clear_views(source: str, exported: Any) -> list[tuple[str, str]]:
    """The export's JSON text and every base64 string in it, decoded."""
    views = [(source, json.dumps(exported, ensure_ascii=False))]
    decoded = []
    for _, value in _walk(exported):
        if isinstance(value, str):
            raw = _b64(value)
            if raw is not None:
                decoded.append(raw.decode("utf-8", "replace"))
    views.append((f"{source} (base64 decoded)", "\n".join(decoded)))
    return views


def _is_payload(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("metadata"), dict)
        and "encoding" in value["metadata"]
    )


def _encoding(payload: dict[str, Any]) -> str:
    raw = _b64(payload["metadata"]["encoding"]) or b"?"
    return raw.decode("utf-8", "replace")


def payload_encodings(exported: Any) -> list[tuple[str, str, bool]]:
    """(path, encoding, clear-by-design) of every payload in the export."""
    found = []
    for path, value in _walk(exported):
        if _is_payload(value):
            by_design = any(part in _CLEAR_BY_DESIGN for part in path)
            shown = "/".join(p for p in path if not p.isdigit())
            found.append((shown, _encoding(value), by_design))
    return found


async def decrypt_payloads(exported: Any, codec: KartuCodec) -> list[str]:
    """The plaintext of every encrypted payload in the export (what the codec keys reveal)."""
    plain: list[str] = []
    for _, value in _walk(exported):
        if _is_payload(value) and _encoding(value) == ENCRYPTED:
            payload = json_format.ParseDict(value, Payload())
            (inner,) = await codec.decode([payload])
            plain.append(inner.data.decode("utf-8", "replace"))
    return plain
