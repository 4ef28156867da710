"""``zhiku delete --title TEXT`` (issue 15): list the matches, confirm (or --yes), delete through
the facade; the deleted chunks never come back in search, from any method, after a reopen."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config

from zhiku.cli.app import main

NOTES = "# Gardening notes\n\nCompost heaps need turning every two weeks to stay warm.\n"


class Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's typed answer."""

    def isatty(self) -> bool:
        return True


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    (docs / "notes.md").write_text(NOTES, encoding="utf-8")
    (docs / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    (home / "kb").mkdir(parents=True)
    fast_config().save(home / "kb" / "zhiku.toml")
    code, _, err = run(capsys, "ingest", str(docs), "--kb", "kb", "--home", str(home))
    assert code == 0, err
    return home


def sources(capsys: pytest.CaptureFixture[str], home: Path, *query: str) -> set[str]:
    """File names found by every method for each query."""
    found: set[str] = set()
    for q in query:
        for method in ("bm25", "dense", "hybrid"):
            code, out, err = run(
                capsys, "search", q, "--kb", "kb", "--home", str(home), "--method", method, "--json"
            )
            assert code == 0, err
            found |= {Path(h["path"]).name for h in json.loads(out)}
    return found


def titles(capsys: pytest.CaptureFixture[str], home: Path) -> list[str]:
    code, out, _ = run(capsys, "list", "--kb", "kb", "--home", str(home), "--json")
    return sorted(d["title"] for d in json.loads(out))


def test_title_delete_lists_asks_and_deletes_for_good(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = ("tomatoes sunlight", "compost turning", "保险合同")
    assert sources(capsys, home, *queries) == {"garden.md", "notes.md", "农业保险办法.md"}
    args = ("delete", "--title", "GARDENING", "--kb", "kb", "--home", str(home))

    # A script (stdin not a terminal) without --yes: the list, then a one-line refusal; nothing deleted.
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out.splitlines()[0] == "2 documents titled like 'GARDENING':"
    assert "Gardening guide" in out and "Gardening notes" in out and "示例农业保险办法" not in out
    assert len(err.strip().splitlines()) == 1 and "without confirmation" in err and "--yes" in err
    assert len(titles(capsys, home)) == 3

    # At a terminal: "n" keeps them, "y" deletes both.
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, _ = run(capsys, *args)
    assert code == 1 and "Delete these 2 documents? [y/N]" in out and "nothing deleted" in out
    assert len(titles(capsys, home)) == 3
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "deleted " in out and "garden.md (" in out and "notes.md (" in out
    assert titles(capsys, home) == ["示例农业保险办法"]
    assert sources(capsys, home, *queries) == {"农业保险办法.md"}  # every method, a fresh open each time

    # Nothing matches any more: a not-found error, exit 3.
    code, _, err = run(capsys, *args)
    assert code == 3 and "no document title contains 'GARDENING'" in err


def test_title_delete_with_yes_and_bad_usage(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("--kb", "kb", "--home", str(home))
    code, _, err = run(capsys, "delete", "garden.md", "--title", "x", *base)
    assert code == 2 and "not both or neither" in err
    code, _, err = run(capsys, "delete", *base)
    assert code == 2 and "not both or neither" in err
    # Exact title first in the list; --yes deletes without asking.
    code, out, err = run(capsys, "delete", "--title", "示例农业保险办法", "--yes", *base)
    assert code == 0, err
    assert out.splitlines()[1].startswith("  示例农业保险办法  (") and "deleted " in out
    assert titles(capsys, home) == ["Gardening guide", "Gardening notes"]
    assert "农业保险办法.md" not in sources(capsys, home, "保险合同", "保险金")


def test_refuses_without_a_terminal_through_the_installed_command(home: Path) -> None:
    """The real entry point in a new process, stdin from /dev/null, as in a cron job."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run(
        [sys.executable, "-m", "zhiku", "delete", "--title", "garden", "--kb", "kb", "--home", str(home)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert p.returncode == 2
    assert "2 documents titled like 'garden'" in p.stdout
    assert len(p.stderr.strip().splitlines()) == 1 and "without confirmation" in p.stderr
