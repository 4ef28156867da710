"""Issue 28 (1): KB names that some file system cannot hold are refused where a KB is created
(Home.create: the CLI and POST /kbs; KnowledgeBase.open by name), with one line that says why.
The fuzzer had created KBs named NUL, LPT1 and "3."; non-ASCII names stay welcome."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from zhiku.errors import AlreadyExistsError, UsageError, ZhikuError
from zhiku.home import Home
from zhiku.service import KnowledgeBase
from zhiku.store.layout import check_kb_name, check_new_kb_name

REFUSED = [
    "NUL", "nul", "Con", "prn", "AUX", "com1", "COM9", "lpt1", "LPT9", "nul.txt", "CON.tar.gz", "COM¹",
    "3.", "kb..", "a.",  # a final dot: Windows drops it ("3." and "3" are one folder)
    ".", "..", "...", ".hidden",  # only dots, or a leading dot
    "a/b", "a\\b", "../x", "/abs",  # path separators
    "a\x00b", "a\nb", "kb\n", "a\tb", "\x7f",  # control characters
    "a b", " kb", "kb ",  # spaces
    "x" * 65, "知" * 65,  # over 64 characters
    "",
]  # fmt: skip
ALLOWED = ["laws", "知识库", "法律法规-2024", "4æ", "Straße", "kb.v2", "COM10", "console", "nullable"]
ALLOWED += ["a" * 64]


@pytest.mark.parametrize("name", REFUSED)
def test_unportable_names_are_refused_by_home_create(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError) as e:
        Home(tmp_path).create(name).close()
    assert "\n" not in e.value.one_line().strip() and e.value.hint
    assert not any(tmp_path.iterdir()), "nothing is written for a refused name"


@pytest.mark.parametrize("name", ["NUL", "lpt1.md", "3."])
def test_unportable_names_are_refused_when_a_kb_is_made_by_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        KnowledgeBase.open(name, home=tmp_path, create=True)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ALLOWED)
def test_portable_names_are_created(tmp_path: Path, name: str) -> None:
    Home(tmp_path).create(name).close()
    assert Home(tmp_path).names() == [name]


def test_names_are_nfc_normalised(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Café")
    assert decomposed != "Café"
    Home(tmp_path).create(decomposed).close()
    assert Home(tmp_path).names() == ["Café"]
    assert Home(tmp_path).exists("Café") and Home(tmp_path).exists(decomposed)
    assert check_kb_name(decomposed) == "Café"


def test_a_name_differing_only_in_case_is_refused(tmp_path: Path) -> None:
    Home(tmp_path).create("Laws").close()
    with pytest.raises(AlreadyExistsError) as e:
        Home(tmp_path).create("laws")
    assert "only in case" in e.value.message
    with pytest.raises(AlreadyExistsError):
        KnowledgeBase.open("LAWS", home=tmp_path, create=True)


def test_an_existing_kb_with_an_old_unportable_name_still_opens_and_deletes(tmp_path: Path) -> None:
    """Made before this check (the fuzzer's "NUL"): it can still be opened and removed."""
    KnowledgeBase.open(tmp_path / "NUL", create=True).close()  # by path: not held to the new rules
    assert Home(tmp_path).names() == ["NUL"]
    Home(tmp_path).open("NUL").close()
    Home(tmp_path).delete("NUL")
    assert Home(tmp_path).names() == []


def test_check_new_kb_name_is_a_zhiku_error() -> None:
    with pytest.raises(ZhikuError):
        check_new_kb_name("aux.txt")


def test_post_kbs_refuses_a_device_name_with_400(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from zhiku.api.app import create_app

    with TestClient(create_app(tmp_path)) as client:
        r = client.post("/kbs", json={"name": "LPT1"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "bad_request"
        assert "reserved for a device on Windows" in r.json()["error"]["message"]
        assert client.post("/kbs", json={"name": "4."}).status_code == 400
        assert client.post("/kbs", json={"name": "法规"}).status_code == 201
    assert Home(tmp_path).names() == ["法规"]
