"""The server's listening socket, bound before anything is announced.

Uvicorn binds late and reports a taken port as a raw ``[Errno 98]`` after "serving on …" was
already printed; binding here first turns it into one line saying what to do.
"""

from __future__ import annotations

import errno
import socket

from zhiku.errors import UsageError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6), or a UsageError saying why not."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(
            f"cannot listen on {host}: {e.strerror}", "Check --host (e.g. 127.0.0.1 or 0.0.0.0)"
        ) from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses the port at once
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use (another zhiku serve?)",
                f"Stop that server, or pass another port: --port {port + 1}",
            ) from None
        if e.errno == errno.EACCES:
            raise UsageError(
                f"no permission to listen on port {port}", "Ports below 1024 need root: use --port 8000"
            ) from None
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror}", "Check --host and --port") from None
    sock.set_inheritable(True)
    return sock
