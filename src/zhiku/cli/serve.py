"""``zhiku serve``: the web API and web page on Uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the web API (OpenAI-compatible too) and the web page",
        description="Serve every knowledge base under the home folder: the web page at /, the API docs "
        "at /docs, OpenAI-compatible endpoints under /v1. Listens on 127.0.0.1 unless told "
        "otherwise.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--home", default=None, help="where knowledge bases live (default: $ZHIKU_HOME or the user data dir)"
    )
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="bearer token required to change anything (and to read, beyond 127.0.0.1); "
        "default: $ZHIKU_API_KEY (prefer it, or --api-key-file: other users see "
        "command lines in `ps`)",
    )
    p.add_argument(
        "--api-key-file",
        default=None,
        metavar="PATH",
        help="read the API key from this file (its first line)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this Host name (repeatable); by default only the --host address "
        "(and localhost names on loopback) is answered",
    )
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="allow listening beyond 127.0.0.1 without an API key (only on a trusted network)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest upload accepted (default 50 MB)"
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(run=run_serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _key_from_file(path: str | None) -> str | None:
    if not path:
        return None
    from zhiku.errors import UsageError

    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            f"cannot read the API key file {path}: {e}", "Check the path and its permissions"
        ) from e
    key = lines[0].strip() if lines else ""
    if not key:
        raise UsageError(f"the API key file {path} is empty", "Put the key on its first line")
    return key


def run_serve(args: argparse.Namespace) -> int:
    from zhiku.errors import UsageError

    key = args.api_key or _key_from_file(args.api_key_file) or os.environ.get("ZHIKU_API_KEY") or None
    local = is_loopback(args.host)
    if not local and key is None and not args.no_auth:
        raise UsageError(
            f"refusing to listen on {args.host} without an API key: anyone who can reach it could change "
            "your knowledge bases",
            "Pass --api-key KEY (or set ZHIKU_API_KEY), or --no-auth if the network is trusted",
        )
    if args.max_upload_mb <= 0:
        raise UsageError(
            f"--max-upload-mb must be positive, got {args.max_upload_mb:g}", "Use 50, for example"
        )
    from zhiku.api.listen import bind

    sock = bind(args.host, args.port)  # a taken port is one clear line, before "serving on"
    import uvicorn

    from zhiku.api.app import create_app
    from zhiku.api.origin import allowed_hosts
    from zhiku.api.writer_process import NICE

    app = create_app(
        Path(args.home) if args.home else None,
        api_key=key,
        max_upload_mb=args.max_upload_mb,
        auth_reads=not local and key is not None,
        allowed_hosts=allowed_hosts(args.host, args.allowed_host),
        start_writer=True,
        # uploads and deletes yield the CPU to searches and answers (api/writer_process.py)
        writer_nice=NICE,
    )
    where = f"http://{args.host}:{args.port}"
    auth = "API key required for changes" + ("" if local else " and reads") if key else "no API key"
    print(
        f"zhiku serving on {where} (web page at /, API docs at /docs; {auth}); Ctrl-C stops", file=sys.stderr
    )
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0
