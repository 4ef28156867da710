"""Citations that are always true (generate/citations.py), in whole texts and in streams."""

from __future__ import annotations

import pytest

from zhiku.generate.citations import CitationFilter, drop_invalid, filtered

TEXT = "答案[1]，另见[9]和[2]；[12]不在；[1234]不是引用；末尾[3"


def test_drop_invalid_keeps_only_numbers_of_sources() -> None:
    assert drop_invalid(TEXT, {1, 2, 3}) == "答案[1]，另见和[2]；不在；[1234]不是引用；末尾[3"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_a_stream_cut_anywhere_gives_the_same_text(size: int) -> None:
    f = CitationFilter({1, 2, 3})
    pieces = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
    out = "".join(f.feed(p) for p in pieces) + f.flush()
    assert out == drop_invalid(TEXT, {1, 2, 3})


def test_a_marker_split_across_pieces_is_held_until_known() -> None:
    f = CitationFilter({1, 2, 3})
    assert f.feed("另见[") == "另见"  # "[" may start a marker: held
    assert f.feed("9") == ""
    assert f.feed("]。") == "。"  # [9] points at no source: dropped
    assert f.feed("见[") == "见" and f.feed("2]") == "[2]"


def test_filtered_sends_nothing_empty() -> None:
    sent: list[str] = []
    send, finish = filtered(sent.append, {1})
    for p in ["a[", "9", "]", "b[1", "]"]:
        send(p)
    finish()
    assert "".join(sent) == "ab[1]" and all(sent)
