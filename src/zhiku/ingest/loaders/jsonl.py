"""JSON records (.json, .jsonl): each record's text field, one section per record.

``.jsonl`` has one JSON value per line; ``.json`` holds a list of records, or an object whose one
list value is the records. A record is an object (its ``ingest.json_text_field``, and
``ingest.json_title_field`` when present, become the section's text and heading) or a plain string.
The record's number is recorded as the chunk's page, so a citation says which record it came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zhiku.errors import CorruptFileError, EmptyFileError
from zhiku.ingest.loaders import LOADERS, LoadOptions, LoadedText
from zhiku.ingest.loaders.text import decode_text


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    text = decode_text(data, path)
    records = _jsonl(text, path) if path.suffix.lower() == ".jsonl" else _json(text, path)
    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    offset = 0
    for number, record in enumerate(records, start=1):
        body, heading = _fields(record, options)
        if not body:
            continue
        part = f"# {heading or f'Record {number}'}\n\n{body}"
        pages.append((offset, number))
        parts.append(part)
        offset += len(part) + 2
    if records and not parts:
        raise EmptyFileError(
            f"{path} has {len(records)} records but none with a text field {options.json_text_field!r}",
            "set ingest.json_text_field in zhiku.toml to the field that holds the text",
        )
    return LoadedText("\n\n".join(parts), path.stem, path.suffix.lower().lstrip("."), tuple(pages))


def _fields(record: Any, options: LoadOptions) -> tuple[str, str]:
    if isinstance(record, str):
        return record.strip(), ""
    if not isinstance(record, dict):
        return "", ""
    body = record.get(options.json_text_field)
    heading = record.get(options.json_title_field)
    body = body.strip() if isinstance(body, str) else ""
    title = " ".join(str(heading).split()) if isinstance(heading, str | int | float) else ""
    return body, title


def _jsonl(text: str, path: Path) -> list[Any]:
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise CorruptFileError(
                f"{path} line {line_no} is not valid JSON: {e.msg}", "fix or remove that line"
            ) from e
    return records


def _json(text: str, path: Path) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorruptFileError(
            f"{path} is not valid JSON: {e.msg} at line {e.lineno}", "fix the file, or save records as .jsonl"
        ) from e
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 else [value]
    if not isinstance(value, list):
        raise CorruptFileError(f"{path} holds a single JSON value, not records", "save a list of records")
    return value


LOADERS.add(".json", load)
LOADERS.add(".jsonl", load)
