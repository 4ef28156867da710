"""Prepare a Milvus standalone data folder; run by the *server's* venv (.milvus-venv), not zhiku's.

The PyPI package ``milvus`` bundles the server binary (lzma-packed) and a config template. Its own
``MilvusServer`` starts the binary as a child of the Python process that calls it; a test needs the
process under its own control (kill -9 and restart on the same data folder), so this script only does
the package's two preparation steps and prints what the caller needs to launch the binary itself:

    python milvus_prepare.py DATA_DIR BIN_ROOT  ->  {"exe": ..., "proxy_port": ...}

Every listen port is an ephemeral one chosen by the kernel, so several servers (and other programs on
a shared machine) never meet on the defaults (19530, 2379, ...).
"""

from __future__ import annotations

import json
import os
import socket
import sys

import milvus  # the package from PyPI, only importable inside .milvus-venv


def free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def main(data_dir: str, bin_root: str) -> None:
    config = milvus.MilvusServerConfig(data_dir=data_dir)
    keys = [k for k in config.configurable_items if k.endswith("_port")]
    *ports, peer = free_ports(len(keys) + 1)
    config.update(**dict(zip(keys, ports, strict=True)))
    config.resolve()  # writes DATA_DIR/configs/milvus.yaml with those ports and the data paths
    # The embedded etcd listens on 2379/2380 whatever the template says unless it gets its own
    # config file (``etcd.config.path``, absent from the template): a second server would die.
    client = f"http://127.0.0.1:{config.get('etcd_port')}"
    peer_url = f"http://127.0.0.1:{peer}"
    etcd_yaml = os.path.join(data_dir, "configs", "embedEtcd.yaml")
    with open(etcd_yaml, "w", encoding="utf-8") as f:
        f.write(
            f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer_url}\ninitial-advertise-peer-urls: {peer_url}\n"
            f"initial-cluster: default={peer_url}\n"
        )
    path = os.path.join(data_dir, "configs", "milvus.yaml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_yaml}\n", 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    # The binaries are unpacked once per venv (≈ 300 MB; the md5 stamps make a second call a no-op).
    milvus._initialize_data_files(bin_root)
    exe = os.path.join(bin_root, "bin", "milvus")
    print(json.dumps({"exe": exe, "proxy_port": int(config.get("proxy_port"))}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
