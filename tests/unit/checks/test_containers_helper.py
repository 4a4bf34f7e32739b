"""checks.containers without an engine: parsing the setup's output, pinging nothing."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from checks.containers import SETUP, engine_answers, parse_exports


def test_parse_exports_reads_only_export_lines() -> None:
    text = ("podman-setup: starting\nexport DOCKER_HOST=unix:///var/tmp/p/podman.sock\n"
            "export TC_HOST=127.0.0.1\nexport X='a b'\nnot an export\n")
    assert parse_exports(text) == {"DOCKER_HOST": "unix:///var/tmp/p/podman.sock",
                                   "TC_HOST": "127.0.0.1", "X": "a b"}


def test_engine_answers_false_without_a_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'none.sock'}")
    assert engine_answers(timeout=1) is False
    monkeypatch.setenv("DOCKER_HOST", "ssh://somewhere")
    assert engine_answers(timeout=1) is False


def test_engine_answers_true_for_a_ping_that_says_200(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "api.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    t = threading.Thread(target=answer)
    t.start()
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        assert engine_answers(timeout=5) is True
    finally:
        t.join(5)
        server.close()


def test_setup_script_is_shipped_and_executable() -> None:
    assert SETUP.exists() and SETUP.stat().st_mode & 0o111
    text = SETUP.read_text()
    for needle in ('runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
                   "nproc=32768:32768", "TESTCONTAINERS_RYUK_DISABLED=true",
                   "TESTCONTAINERS_CONNECTION_MODE=docker_host", "debootstrap --variant=minbase"):
        assert needle in text, needle
