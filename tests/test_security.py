"""Connection security: ACL users and passwords in URLs, TLS (``rediss://``).

Secrets must work and must never show: not in ``repr(cache)``, not in any log record (at
DEBUG, every logger), not in exception messages or ``CacheResult.reason``. A wrong
password is a cache failure like any other: the user's call still returns.

The bundled Redis has no TLS ("Missing implement of connection type tls"), so TLS is
tested through a small TLS terminator in this file: an asyncio TLS server on loopback with
a self-signed certificate made here, forwarding bytes to the plain Redis port.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import shutil
import ssl
import subprocess
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cachekit import (
    Budgets,
    CacheBackendError,
    CacheConfigError,
    LLMCache,
    cached_llm,
    last_result,
)
from cachekit._server import RedisServer

USER = "alice-acl"
PASSWORD = "S3cr3t-Pa55-q7Zx"
WRONG = "Wr0ng-Pa55-k9Lm"
GENEROUS = Budgets(lookup=10, store=10, command=10, connect=10, pool_wait=10)
#: Fails fast: a refused connection or a bad password should not cost much.
QUICK = Budgets(lookup=2, store=2, command=2, connect=2, pool_wait=2)


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    """Redis where only ``alice-acl`` (with a password) may do anything but PING."""
    default = ["--user", "default", "on", "nopass", "-@all", "+ping"]
    alice = ["--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all"]
    server = RedisServer(extra_args=[*default, *alice]).start()
    yield server
    server.stop()


def url_for(port: int, user: str = USER, password: str = PASSWORD, scheme: str = "redis") -> str:
    return f"{scheme}://{user}:{password}@127.0.0.1:{port}/0"


def assert_secret_free(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret leaked into: {text[:300]!r}"


def exception_text(exc: BaseException) -> str:
    """Message, repr and full formatted chain of an exception."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def test_default_user_can_only_ping(acl_server: RedisServer) -> None:
    """The premise: without alice's credentials nothing but PING works."""
    anonymous = redis.Redis(port=acl_server.port)
    try:
        assert anonymous.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            anonymous.get("x")
    finally:
        anonymous.close()


async def test_acl_user_in_the_url_works_and_never_shows(
    acl_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cache = LLMCache.from_url(url_for(acl_server.port), budgets=GENEROUS)
    assert_secret_free(repr(cache), PASSWORD, USER)

    @cached_llm(namespace="acl", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt.upper()

    assert await ask("hello") == "HELLO"
    assert last_result().status == "miss"  # type: ignore[union-attr]
    await cache.drain()
    assert await ask("hello") == "HELLO"
    r = last_result()
    assert r is not None and r.status == "exact", r  # proves the URL's user authenticated
    assert_secret_free(repr(cache), PASSWORD, USER)
    await cache.aclose()
    assert_secret_free(caplog.text, PASSWORD)
    for record in caplog.records:
        assert_secret_free(repr(record.args), PASSWORD)


@pytest.mark.parametrize("caller", ["async", "sync"])
async def test_wrong_password_fails_open_and_leaks_nothing(
    acl_server: RedisServer, caplog: pytest.LogCaptureFixture, caller: str
) -> None:
    caplog.set_level(logging.DEBUG)
    cache = LLMCache.from_url(url_for(acl_server.port, password=WRONG), budgets=QUICK)
    calls: list[str] = []

    if caller == "async":

        @cached_llm(namespace="acl-wrong", cache=cache)
        async def ask_async(prompt: str) -> str:
            calls.append(prompt)
            return prompt.upper()

        assert await ask_async("hello") == "HELLO"
    else:

        @cached_llm(namespace="acl-wrong", cache=cache)
        def ask_sync(prompt: str) -> str:
            calls.append(prompt)
            return prompt.upper()

        assert await asyncio.to_thread(ask_sync, "hello") == "HELLO"
    r = last_result() if caller == "async" else None
    if r is not None:
        assert r.status == "error", r
        assert_secret_free(str(r), WRONG, PASSWORD)
    assert calls == ["hello"]
    with pytest.raises(CacheBackendError) as info:
        await cache.connect()
    assert_secret_free(exception_text(info.value), WRONG, PASSWORD)
    assert_secret_free(repr(cache), WRONG, PASSWORD, USER)
    await cache.aclose()
    assert_secret_free(caplog.text, WRONG, PASSWORD)
    assert any("failed" in rec.getMessage() for rec in caplog.records)


def test_sync_wrong_password_reports_error_status(acl_server: RedisServer) -> None:
    cache = LLMCache.from_url(url_for(acl_server.port, password=WRONG), budgets=QUICK)

    @cached_llm(namespace="acl-wrong-sync", cache=cache)
    def ask(prompt: str) -> str:
        return prompt.upper()

    assert ask("hello") == "HELLO"
    r = last_result()
    assert r is not None and r.status == "error", r
    assert_secret_free(str(r), WRONG)
    cache.close()


async def test_password_in_the_query_string_never_shows(acl_server: RedisServer) -> None:
    url = f"redis://127.0.0.1:{acl_server.port}/0?username={USER}&password={PASSWORD}"
    cache = LLMCache.from_url(url, budgets=GENEROUS)

    @cached_llm(namespace="acl-query", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt.upper()

    await ask("hello")
    await cache.drain()
    await ask("hello")
    r = last_result()
    await cache.aclose()
    assert r is not None and r.status == "exact", r  # the query-string credentials work
    assert_secret_free(repr(cache), PASSWORD)


def test_bad_url_errors_do_not_echo_the_password() -> None:
    for url in (f"http://{USER}:{PASSWORD}@host:1/0", f"ftp://{USER}:{PASSWORD}@h/"):
        with pytest.raises(CacheConfigError) as info:
            LLMCache.from_url(url)
        assert_secret_free(exception_text(info.value), PASSWORD)


def test_url_without_scheme_is_a_config_error_without_the_password() -> None:
    with pytest.raises(CacheConfigError) as info:
        LLMCache.from_url(f"{USER}:{PASSWORD}@host:6379")
    assert_secret_free(exception_text(info.value), PASSWORD)


# -- TLS ---------------------------------------------------------------------------------


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1 and localhost, made with cryptography or openssl."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("TLS test needs the cryptography package or the openssl command")
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        args += ["-nodes", "-days", "2"]
        args += ["-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        args += ["-keyout", str(key), "-out", str(cert)]
        subprocess.run([openssl, *args], check=True, capture_output=True)
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


class TLSTerminator:
    """TLS on a loopback port, plain TCP to Redis behind it (its own thread and loop)."""

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.port = 0
        self.handshakes = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> TLSTerminator:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1  # the TLS handshake is done before a handler runs
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    return {name: _self_signed(directory, name) for name in ("server", "stranger")}


@pytest.fixture(scope="module")
def tls(acl_server: RedisServer, certs: dict[str, tuple[Path, Path]]) -> Iterator[TLSTerminator]:
    cert, key = certs["server"]
    terminator = TLSTerminator(acl_server.port, cert, key).start()
    yield terminator
    terminator.stop()


async def test_rediss_with_a_verified_certificate_and_acl_user(
    tls: TLSTerminator,
    certs: dict[str, tuple[Path, Path]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ca = certs["server"][0]
    url = url_for(tls.port, scheme="rediss") + f"?ssl_cert_reqs=required&ssl_ca_certs={ca}"
    before = tls.handshakes
    cache = LLMCache.from_url(url, budgets=GENEROUS)

    @cached_llm(namespace="tls", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt[::-1]

    assert await ask("encrypted") == "detpyrcne"
    await cache.drain()
    assert await ask("encrypted") == "detpyrcne"
    r = last_result()
    assert r is not None and r.status == "exact", r
    assert tls.handshakes > before, "the cache did not go through the TLS terminator"
    assert_secret_free(repr(cache), PASSWORD)
    await cache.aclose()
    assert_secret_free(caplog.text, PASSWORD)


async def test_rediss_with_an_untrusted_certificate_fails_open(
    tls: TLSTerminator, certs: dict[str, tuple[Path, Path]]
) -> None:
    stranger = certs["stranger"][0]
    url = url_for(tls.port, scheme="rediss") + f"?ssl_cert_reqs=required&ssl_ca_certs={stranger}"
    cache = LLMCache.from_url(url, budgets=QUICK)

    @cached_llm(namespace="tls-bad", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt[::-1]

    assert await ask("encrypted") == "detpyrcne"
    r = last_result()
    assert r is not None and r.status == "error", r
    assert_secret_free(str(r), PASSWORD)
    with pytest.raises(CacheBackendError) as info:
        await cache.connect()
    assert "certificate" in str(info.value).lower() or "ssl" in str(info.value).lower()
    assert_secret_free(exception_text(info.value), PASSWORD)
    await cache.aclose()


async def test_plain_redis_url_against_the_tls_port_fails_open(tls: TLSTerminator) -> None:
    cache = LLMCache.from_url(url_for(tls.port), budgets=QUICK)

    @cached_llm(namespace="tls-plain", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt[::-1]

    assert await ask("abc") == "cba"
    assert last_result().status == "error"  # type: ignore[union-attr]
    await cache.aclose()
