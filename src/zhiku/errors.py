"""One error hierarchy for zhiku.

Every error a user can cause is a :class:`ZhikuError`: its message says what is wrong and its
``hint`` says how to fix it. The CLI prints ``error: <message> (<hint>)`` on one line and exits
with ``exit_code``; the web API maps ``http_status``. Anything that is *not* a ZhikuError is a bug
and keeps its traceback.
"""

from __future__ import annotations


class ZhikuError(Exception):
    """Base class: a problem the user can fix."""

    exit_code: int = 1
    http_status: int = 400
    code: str = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        return f"{text}. {self.hint}" if self.hint else text

    def __str__(self) -> str:
        return self.one_line()


class UsageError(ZhikuError):
    """Bad arguments: an empty query, a negative k, conflicting options."""

    exit_code = 2
    code = "bad_request"


class ConfigError(ZhikuError):
    """A KB setting or a config file that cannot be used."""

    exit_code = 2
    code = "bad_config"


class NotFoundError(ZhikuError):
    """A KB, document, path or model that does not exist."""

    exit_code = 3
    http_status = 404
    code = "not_found"


class UnknownNameError(NotFoundError):
    """A name that is not in a registry; the message lists the registered names."""

    code = "unknown_name"


class AlreadyExistsError(ZhikuError):
    exit_code = 2
    http_status = 409
    code = "conflict"


class IngestError(ZhikuError):
    """A single file that cannot be ingested: the rest of the run goes on."""

    exit_code = 4
    http_status = 422
    code = "ingest_failed"


class UnsupportedFormatError(IngestError):
    http_status = 415
    code = "unsupported_format"


class DecodeError(IngestError):
    code = "undecodable"


class CorruptFileError(IngestError):
    code = "corrupt_file"


class EmptyFileError(IngestError):
    code = "empty_file"


class FileTooLargeError(IngestError):
    http_status = 413
    code = "too_large"


class IndexError_(ZhikuError):
    """An index that is missing, stale or unreadable (named with a trailing _ to keep the builtin)."""

    exit_code = 5
    http_status = 409
    code = "index_unavailable"


class DependencyMissingError(ZhikuError):
    """An optional backend whose package is not installed."""

    exit_code = 6
    http_status = 501
    code = "dependency_missing"


class BackendError(ZhikuError):
    """A remote service (LLM server, embedding server, Milvus) failed or cannot be reached."""

    exit_code = 7
    http_status = 502
    code = "backend_error"


class DatasetError(ZhikuError):
    """An evaluation dataset that is malformed, empty or of an unknown format."""

    exit_code = 2
    http_status = 422
    code = "bad_dataset"


class LockedError(ZhikuError):
    """Another process is writing to this knowledge base."""

    exit_code = 8
    http_status = 423
    code = "locked"


class CatalogDamagedError(ZhikuError):
    """``catalog.sqlite`` is not a readable SQLite database (truncated, overwritten, a disk error)."""

    exit_code = 9
    http_status = 503
    code = "catalog_damaged"


def catalog_damaged(path: object, cause: BaseException) -> CatalogDamagedError:
    return CatalogDamagedError(
        f"catalog damaged: {path} is not a readable SQLite database ({cause})",
        f"Restore it from a backup, or move it aside (mv {path} {path}.damaged) and ingest your files "
        "again: the indexes are rebuilt from the catalog",
    )
