from __future__ import annotations

from pathlib import Path

from zhiku.store.catalog import Catalog, ChunkRecord, DocumentRecord
from zhiku.types import Chunk


def doc(source: str, text: str, digest: str) -> tuple[DocumentRecord, list[ChunkRecord]]:
    d = DocumentRecord(f"id-{digest}", source, "T", "text", digest, text, len(text), 0.0)
    chunks = [
        ChunkRecord(Chunk(f"{digest}{i:02d}abcdef0123", d.id, i, text, 0, len(text)), "h", "tok")
        for i in range(2)
    ]
    return d, chunks


def test_put_replace_delete_and_fingerprint(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite")
    empty = cat.fingerprint()
    cat.put_document(*doc("/a.txt", "alpha", "aaaa"))
    fp1 = cat.fingerprint()
    cat.put_document(*doc("/b.txt", "beta", "bbbb"))
    assert cat.chunk_count() == 4 and cat.fingerprint() != fp1
    # a new version of /a.txt replaces the old one entirely
    cat.put_document(*doc("/a.txt", "alpha2", "cccc"))
    assert cat.content_hash_of("/a.txt") == "cccc" and cat.chunk_count() == 4
    assert len(cat.find_documents("a.txt")) == 1
    cat.delete_documents([d.id for d in cat.find_documents("/b.txt")])
    cat.delete_documents([d.id for d in cat.find_documents("/a.txt")])
    assert cat.chunk_count() == 0 and cat.fingerprint() == empty  # order-independent, exact
    cat.close()


def test_fingerprint_is_order_independent(tmp_path: Path) -> None:
    c1, c2 = Catalog(tmp_path / "1.sqlite"), Catalog(tmp_path / "2.sqlite")
    c1.put_document(*doc("/a", "a", "aaaa"))
    c1.put_document(*doc("/b", "b", "bbbb"))
    c2.put_document(*doc("/b", "b", "bbbb"))
    c2.put_document(*doc("/a", "a", "aaaa"))
    assert c1.fingerprint() == c2.fingerprint()


def test_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite")
    cat.put_document(*doc("/a", "a", "aaaa"))
    d, chunks = doc("/b", "b", "bbbb")
    dup = chunks + [chunks[0]]  # duplicate primary key: the insert fails half-way
    try:
        cat.put_document(d, dup)
    except Exception:
        pass
    assert [x.source for x in cat.documents()] == ["/a"] and cat.chunk_count() == 2


def test_staged_dir_publishes_atomically_and_keeps_the_previous_version(tmp_path: Path) -> None:
    from zhiku.store.files import staged_dir

    final = tmp_path / "indexes" / "bm25"
    for version in ("v1", "v2", "v3"):
        with staged_dir(final) as d:
            (d / "data.txt").write_text(version)
            assert not final.exists() or (final / "data.txt").read_text() != version  # not visible yet
        assert (final / "data.txt").read_text() == version
    versions = [p for p in final.parent.iterdir() if p.name.startswith(".bm25.") and not p.is_symlink()]
    assert len(versions) == 2  # the current one and the previous one, for readers still loading it
    try:
        with staged_dir(final) as d:
            (d / "data.txt").write_text("broken")
            raise RuntimeError("build failed")
    except RuntimeError:
        pass
    assert (final / "data.txt").read_text() == "v3"
    assert len([p for p in final.parent.iterdir() if not p.is_symlink()]) == 2


def test_chunk_pages_are_stored_and_a_version_1_catalog_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    # A catalog as zhiku wrote it before pages existed (schema version 1: no chunks.page column).
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1'), ('fingerprint', '0:0');"
        "CREATE TABLE documents (id TEXT PRIMARY KEY, source TEXT NOT NULL UNIQUE, title TEXT NOT NULL,"
        " format TEXT NOT NULL, content_hash TEXT NOT NULL, text TEXT NOT NULL, chars INTEGER NOT NULL,"
        " n_chunks INTEGER NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL, ingested_at REAL NOT NULL);"
        "CREATE TABLE chunks (id TEXT PRIMARY KEY,"
        " doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
        ' ord INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, heading TEXT NOT NULL,'
        " text TEXT NOT NULL, text_hash TEXT NOT NULL, tokens TEXT NOT NULL);"
        "INSERT INTO documents VALUES ('d1', '/old.txt', 'Old', 'text', 'hh', 'old text', 8, 1, 8, 0, 0);"
        "INSERT INTO chunks VALUES ('c1aaaaaaaaaaaaaaa', 'd1', 0, 0, 8, '', 'old text', 'h', 'old text');"
    )
    old.commit()
    old.close()

    cat = Catalog(path)
    assert cat._meta("schema_version") == "2"  # the catalog's own record of its schema
    assert cat.chunks_of("d1")[0].page == 0  # kept, with "no page"
    d = DocumentRecord("d2", "/scan.pdf", "Scan", "pdf", "pp", "page one\n\npage two", 18, 0.0)
    chunk = Chunk("c2bbbbbbbbbbbbbbb", "d2", 0, "page two", 10, 18, "", 2)
    cat.put_document(d, [ChunkRecord(chunk, "h", "t")])
    chunk, info = cat.chunks(["c2bbbbbbbbbbbbbbb"])["c2bbbbbbbbbbbbbbb"]
    assert chunk.page == 2 and info.format == "pdf"
    cat.close()
    assert Catalog(path).chunks_of("d2")[0].page == 2  # reopening migrates nothing twice


def test_the_document_list_follows_changes_of_this_and_other_connections(tmp_path: Path) -> None:
    """``documents()`` is kept between changes (issue 28: a busy server lists often); a change
    committed by another connection (the server's writer process) or by this one shows at once."""
    reader, writer = Catalog(tmp_path / "c.sqlite"), Catalog(tmp_path / "c.sqlite")
    reader.put_document(*doc("/a", "a", "aaaa"))
    assert [d.source for d in reader.documents()] == ["/a"]
    writer.put_document(*doc("/b", "b", "bbbb"))
    assert [d.source for d in reader.documents()] == ["/a", "/b"]
    writer.delete_documents([d.id for d in writer.find_documents("/a")])
    assert [d.source for d in reader.documents()] == ["/b"]
    reader.put_document(*doc("/b", "b2", "cccc"))  # this connection's own change
    assert [(d.source, d.content_hash) for d in reader.documents()] == [("/b", "cccc")]
    listed = reader.documents()
    listed.clear()  # a caller's copy: the kept list is not touched
    assert len(reader.documents()) == 1
    reader.close()
    writer.close()
