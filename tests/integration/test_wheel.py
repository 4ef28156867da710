"""`pip install zhiku` from a built wheel: the package data is inside, and the CLI runs from it.

Builds use ``python -m build --no-isolation`` (with setuptools from the test environment): an isolated
build would download setuptools, and tests run offline. Builds run on a copy of the project, since
setuptools writes ``build/`` and ``*.egg-info`` next to the sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "zhiku"


def _clean_env(**extra: str) -> dict[str, str]:
    # No PYTHONPATH: the installed wheel, not the source tree, must be what runs.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


def build(tmp: Path, *what: str) -> Path:
    project = tmp / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", project / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    out = tmp / "dist"
    cmd = [sys.executable, "-m", "build", "--no-isolation", *what, "--outdir", str(out), str(project)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def package_files() -> set[str]:
    """Every file of the zhiku package in the source tree, as a wheel names it."""
    return {
        "zhiku/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_the_wheel_holds_every_package_file_and_the_extras(tmp_path: Path) -> None:
    (wheel,) = build(tmp_path, "--wheel").glob("zhiku-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    in_package = {n for n in names if n.startswith("zhiku/")}
    assert in_package == package_files()  # nothing left out (stop words, the web page), nothing extra
    for data in ("zhiku/data/stopwords_zh.txt", "zhiku/api/static/index.html", "zhiku/py.typed"):
        assert data in names
    assert not any(n.startswith("tests/") for n in names)
    assert "zhiku = zhiku.cli.app:entry" in entry_points
    for extra in ("all", "qdrant", "langchain", "llamaindex", "milvus", "serve"):
        assert f"Provides-Extra: {extra}" in meta
    assert 'qdrant-client>=1.12; extra == "qdrant"' in meta


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_the_cli_runs(tmp_path: Path) -> None:
    dist = build(tmp_path)  # sdist and wheel, as `python -m build` makes them for a release
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as t:
        members = {m.name.split("/", 1)[1] for m in t.getmembers() if "/" in m.name}
    assert {"src/zhiku/data/stopwords_zh.txt", "src/zhiku/api/static/index.html", "pyproject.toml"} <= members

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # venv seeds an old setuptools, which would shadow the one the dependencies need (torch, llama-index)
    subprocess.run(
        [str(py), "-m", "pip", "uninstall", "-q", "-y", "setuptools"], check=True, env=_clean_env()
    )
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
        check=True,
        env=_clean_env(),
    )
    # Offline and fast: the dependencies are not installed again but come from this environment's
    # site-packages, appended to the new venv's path by a .pth file. The venv is not a
    # --system-site-packages one, and its own site-packages (the wheel) comes first on the path.
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "zz_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    env = _clean_env(ZHIKU_HOME=str(tmp_path / "home"))
    where = subprocess.run(
        [str(py), "-c", "import zhiku, importlib.resources as r; print(zhiku.__file__); "
         "print(r.files('zhiku.api').joinpath('static/index.html').is_file())"],
        capture_output=True, text=True, check=True, env=env, cwd=tmp_path,
    ).stdout.split()  # fmt: skip
    assert where[0].startswith(site) and where[1] == "True"
    # every requirement of the wheel is met by what the venv sees (the .pth adds no undeclared need)
    check = subprocess.run([str(py), "-m", "pip", "check"], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout

    zhiku = venv / "bin" / "zhiku"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "员工手册.txt").write_text(
        "年假按照工龄计算，工作满一年不满十年的，年休假五天。", encoding="utf-8"
    )
    (docs / "garden.md").write_text("# Garden\n\nTomatoes need six hours of sunlight.", encoding="utf-8")

    def run(*args: str) -> str:
        done = subprocess.run([str(zhiku), *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "ingest" in run("--help")
    run("ingest", str(docs), "--kb", "wheel")
    found = run("search", "年休假 几天", "--kb", "wheel", "-k", "1")
    assert "员工手册" in found and "garden" not in found
