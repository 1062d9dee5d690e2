"""A real local HTTP server speaking the OpenAI (and Anthropic) wire format, for tests.

It is not a mock: a Starlette app runs under uvicorn on a loopback port and is driven over HTTP
by the real ``openai`` SDK (or anything else that speaks the protocol)::

    with LocalOpenAIServer() as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk-test")
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert srv.count("/v1/chat/completions") == 1

Endpoints: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/models``,
OpenAI Responses ``/v1/responses`` and Anthropic Messages ``/v1/messages`` (the ``anthropic``
SDK's ``base_url`` is ``url``, without ``/v1``; it needs the ``anthropic-version`` header, as
the real API does). Streams are SSE: ``data:`` chunks ending with ``data: [DONE]`` for chat and
completions, typed ``event:`` + ``data:`` events for Responses (``response.created`` ...
``response.completed``) and Messages (``message_start`` ... ``message_stop``).

Answers are deterministic functions of the request: chat, legacy completions, Responses and
Messages echo the last user message (``"echo: <text>"``, plus ``" (after <id>)"`` for a
Responses ``previous_response_id``) unless a ``responder`` is given; embeddings are unit vectors
seeded from the SHA-256 of each input text. Token usage is counted in whitespace-separated words;
ids count up (``chatcmpl-1``, ``resp_2``, ``msg_3``), so a replayed answer is told by its id.
``max_tokens`` / ``max_output_tokens`` cut the answer (``finish_reason="length"``, a Responses
status ``incomplete`` with a ``response.incomplete`` event, Anthropic's ``max_tokens``).

Faults can be injected from the test thread while the server runs: ``fail_next`` (error
responses, Anthropic-shaped on ``/v1/messages``), ``break_stream_after`` (the connection drops
mid-stream), ``fail_stream_next`` (a stream ends with the API's own failure: an ``error`` chunk,
``response.failed``, an ``error`` event), ``delay`` (latency before each answer),
``stream_delay`` (latency between stream chunks) and ``require_api_key`` (a bearer token, or
``x-api-key`` on ``/v1/messages``).

Run ``python tests/llm_server.py --port 8099`` to serve in the foreground (benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

try:
    from tests import llm_wire as wire
except ModuleNotFoundError:  # run as a script: python tests/llm_server.py
    import llm_wire as wire  # type: ignore[no-redef, import-not-found]

__all__ = [
    "DEFAULT_EMBEDDING_DIMENSIONS",
    "Embedder",
    "LocalOpenAIServer",
    "RecordedCall",
    "Responder",
    "StreamAborted",
    "default_responder",
    "hash_embedding",
    "main",
    "word_count",
]

logger = logging.getLogger(__name__)

#: Maps a chat/completions request body to the assistant's text.
Responder = Callable[[dict[str, Any]], str]
#: Maps (input text, dimensions) to an embedding vector; the server L2-normalises it.
Embedder = Callable[[str, int], Sequence[float]]

DEFAULT_EMBEDDING_DIMENSIONS = 1536
MODEL_IDS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
_MODEL_CREATED = 1_700_000_000
_HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class StreamAborted(Exception):
    """Raised inside a streaming body so uvicorn drops the connection (``break_stream_after``)."""


def _is_stream_abort(exc: BaseException | None) -> bool:
    if isinstance(exc, StreamAborted):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_is_stream_abort(inner) for inner in exc.exceptions)
    return False


class _DropStreamAbortLogs(logging.Filter):
    """Keep uvicorn from logging a traceback for every deliberately broken stream."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _is_stream_abort(exc)


_DROP_STREAM_ABORT_LOGS = _DropStreamAbortLogs()


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One HTTP request the server received."""

    method: str
    path: str
    #: The parsed JSON body, or None when the body was empty or not JSON.
    body: Any
    #: Request headers, names lowercased.
    headers: dict[str, str]
    #: The bearer token of the Authorization header, else the ``x-api-key`` header, if any.
    api_key: str | None
    time: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        """Alias of ``body``."""
        return self.body

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed answer."""
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


@dataclass(slots=True)
class _Fault:
    status: int
    remaining: int
    path: str | None
    message: str | None
    headers: dict[str, str]


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


# --------------------------------------------------------------------------- answers


def word_count(text: str) -> int:
    """The server's notion of a token: one whitespace-separated word."""
    return len(text.split())


def _content_text(content: Any) -> str:
    """Text of a chat message ``content``: a string or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        ]
        return " ".join(texts)
    return str(content)


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return json.dumps(prompt)


def default_responder(body: dict[str, Any]) -> str:
    """``"echo: <last user message>"`` for chat, Messages and Responses (its last user item of
    ``input``), ``"echo: <prompt>"`` for legacy completions."""
    if "messages" in body:
        return f"echo: {_last_user_text(body['messages'])}"
    if "input" in body:
        return f"echo: {wire.input_text(body['input'])}"
    return f"echo: {_prompt_text(body.get('prompt', ''))}"


def _split_words(text: str) -> list[str]:
    """Split into word pieces that concatenate back to ``text`` exactly."""
    pieces = re.findall(r"\s*\S+", text)
    rest = text[len("".join(pieces)) :]
    if rest:
        if pieces:
            pieces[-1] += rest
        else:
            pieces.append(rest)
    return pieces


def _truncate(text: str, limit: Any) -> tuple[str, str]:
    """Apply ``max_tokens`` (in words): returns (text, finish_reason)."""
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        pieces = _split_words(text)
        if len(pieces) > limit:
            return "".join(pieces[:limit]), "length"
    return text, "stop"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def hash_embedding(text: str, dimensions: int) -> npt.NDArray[np.float64]:
    """A unit vector seeded from the SHA-256 of ``text``; a prefix of any longer one."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimensions)
    return vector / np.linalg.norm(vector)


def _error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    if status == 401:
        kind, code = "invalid_request_error", code or "invalid_api_key"
    elif status == 429:
        kind, code = "requests", code or "rate_limit_exceeded"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = _error_body(status, message, param=param, code=code)
    return JSONResponse(body, status_code=status, headers=headers)


def _anthropic_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}
    kinds |= {429: "rate_limit_error", 529: "overloaded_error"}
    kind = kinds.get(status, "api_error")
    return JSONResponse(wire.anthropic_error(kind, message), status_code=status, headers=headers)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


# --------------------------------------------------------------------------- server


class LocalOpenAIServer:
    """An OpenAI-compatible HTTP server on a loopback port, run by uvicorn in a thread.

    Use as a context manager or call ``start()`` / ``stop()``. A stopped server can be started
    again; it keeps its port, so a stop/start pair simulates an upstream outage.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
        embedder: Embedder | None = None,
        delay: float = 0.0,
        stream_delay: float = 0.0,
        require_api_key: bool | str = False,
        default_dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self.responder: Responder = responder or default_responder
        self.embedder = embedder
        #: Seconds of added latency before every answer (settable while running).
        self.delay = delay
        #: Seconds between two stream chunks (settable while running).
        self.stream_delay = stream_delay
        #: True: any bearer token is accepted; a str: exactly that token. Else 401.
        self.require_api_key = require_api_key
        self.default_dimensions = default_dimensions
        self.log_level = log_level

        self._requested_port = port
        self._port: int | None = None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self._faults: list[_Fault] = []
        self._stream_breaks: list[int] = []
        self._stream_failures = 0
        self._ids = itertools.count(1)

        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=_HTTP_METHODS)])

    # ----------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server is not started")
        return self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``openai.OpenAI(base_url=...)``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ----------------------------------------------------------------- lifecycle

    def _bind(self) -> socket.socket:
        if self._socket is not None:
            return self._socket
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Port 0 lets the kernel pick a free port; holding the socket means no race.
            sock.bind((self.host, self._port or self._requested_port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._socket = sock
        return sock

    def _make_server(self) -> uvicorn.Server:
        logging.getLogger("uvicorn.error").addFilter(_DROP_STREAM_ABORT_LOGS)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level=self.log_level,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        return uvicorn.Server(config)

    def start(self, timeout: float = 10.0) -> Self:
        """Serve in a background thread; returns once the server accepts requests."""
        if self.running:
            return self
        sock = self._bind()
        server = self._make_server()
        self._server, self._error = server, None

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # SystemExit on startup failure included
                logger.exception("local OpenAI server crashed")
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"openai-server-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local OpenAI server failed to start: {self._error!r}")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the server down and release its port."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout)
        self._server = self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in the calling thread until SIGINT/SIGTERM (used by the CLI)."""
        sock = self._bind()
        server = self._make_server()
        self._server = server
        if on_ready is not None:
            on_ready(self.base_url)
        try:
            server.run(sockets=[sock])
        finally:
            self._server = None
            sock.close()
            self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- observability

    @property
    def calls(self) -> list[RecordedCall]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    @property
    def last_call(self) -> RecordedCall | None:
        with self._lock:
            return self._calls[-1] if self._calls else None

    def count(self, path: str | None = None) -> int:
        """Requests received, all or to ``path`` ("/v1/embeddings" or just "/embeddings")."""
        with self._lock:
            if path is None:
                return len(self._calls)
            return sum(1 for call in self._calls if call.path in (path, f"/v1{path}"))

    def reset(self) -> None:
        """Forget recorded calls and pending one-shot faults (settings like ``delay`` stay)."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._stream_breaks.clear()
            self._stream_failures = 0

    # ----------------------------------------------------------------- fault injection

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        *,
        path: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``times`` requests under /v1 (or to ``path``) with an error.

        The openai SDK retries 408/409/429/5xx (``max_retries=2`` by default, with ~0.5 s
        back-off); ``retry_after`` seconds sends ``retry-after-ms`` so retries come quickly.
        """
        headers = {} if retry_after is None else {"retry-after-ms": str(int(retry_after * 1000))}
        if path is not None and not path.startswith("/v1"):
            path = f"/v1{path}"
        with self._lock:
            self._faults.append(_Fault(status, times, path, message, headers))

    def break_stream_after(self, n_chunks: int, times: int = 1) -> None:
        """Drop the connection of the next ``times`` streamed answers after ``n_chunks`` events.

        The response starts normally (200, headers, ``n_chunks`` ``data:`` events) and then the
        connection is closed without the final chunk or ``[DONE]``.
        """
        with self._lock:
            self._stream_breaks.extend([n_chunks] * times)

    def fail_stream_next(self, times: int = 1) -> None:
        """End the next ``times`` streamed answers with the API's own failure instead of their
        last event: an ``{"error": ...}`` chunk and no ``[DONE]`` (chat, completions), a
        ``response.failed`` event (Responses), an ``error`` event (Messages). The HTTP status is
        200 and the connection closes cleanly: only the events say the answer failed.
        """
        with self._lock:
            self._stream_failures += times

    def _take_stream_failure(self) -> bool:
        with self._lock:
            if self._stream_failures <= 0:
                return False
            self._stream_failures -= 1
            return True

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or fault.path == path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _take_stream_break(self) -> int | None:
        with self._lock:
            return self._stream_breaks.pop(0) if self._stream_breaks else None

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    # ----------------------------------------------------------------- HTTP

    async def _endpoint(self, request: Request) -> Response:
        method, path = request.method, request.url.path
        raw = await request.body()
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: nested thousands deep
                bad_json = True
        headers = {name.lower(): value for name, value in request.headers.items()}
        api_key = _bearer(headers.get("authorization")) or headers.get("x-api-key") or None
        with self._lock:
            self._calls.append(RecordedCall(method, path, body, headers, api_key))

        if self.delay > 0:
            await asyncio.sleep(self.delay)

        if path in ("/", "/health"):
            return JSONResponse({"status": "ok"})
        if not path.startswith("/v1/"):
            return _error(404, f"Invalid URL ({method} {path})")
        # Anthropic's API answers in its own error shape and insists on its version header.
        error = _anthropic_error if path == "/v1/messages" else _error

        required = self.require_api_key
        if required and (api_key is None or (isinstance(required, str) and api_key != required)):
            shown = f"{api_key[:6]}***" if api_key else "none"
            return error(401, f"Incorrect API key provided: {shown}.")

        fault = self._take_fault(path)
        if fault is not None:
            message = fault.message or f"Injected fault: HTTP {fault.status}"
            return error(fault.status, message, headers=fault.headers)

        routes: dict[str, tuple[str, Callable[[dict[str, Any]], Response]]] = {
            "/v1/chat/completions": ("POST", self._chat),
            "/v1/completions": ("POST", self._completions),
            "/v1/embeddings": ("POST", self._embeddings),
            "/v1/responses": ("POST", self._responses),
            "/v1/messages": ("POST", self._messages),
        }
        if path in routes:
            allowed, handler = routes[path]
            if method != allowed:
                return error(405, f"Method {method} not allowed for {path}.")
            if path == "/v1/messages" and not headers.get("anthropic-version"):
                return error(400, "anthropic-version: header is required")
            if bad_json:
                return error(400, "We could not parse the JSON body of your request.")
            if not isinstance(body, dict):
                return error(400, "The request body must be a JSON object.")
            try:
                return handler(body)
            except _BadRequest as exc:
                return error(400, exc.message, param=exc.param)
        if method == "GET" and path == "/v1/models":
            return JSONResponse({"object": "list", "data": [_model(m) for m in MODEL_IDS]})
        if method == "GET" and path.startswith("/v1/models/"):
            return JSONResponse(_model(path.removeprefix("/v1/models/")))
        return _error(404, f"Invalid URL ({method} {path})")

    def _sse(
        self,
        events: Iterable[dict[str, Any]],
        *,
        failure: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> StreamingResponse:
        """Stream ``events``: as ``data:`` chunks and ``[DONE]`` (chat, completions), or, given
        the API's ``failure`` event, as typed ``event:`` + ``data:`` events with no ``[DONE]``
        and a ``sequence_number`` on each (Responses; Messages events ignore it)."""
        break_after = self._take_stream_break()
        items = list(events)
        typed = failure is not None
        injected = self._take_stream_failure()
        if injected:
            if failure is None:
                message = "Injected stream failure"
                items.append({"error": {"message": message, "type": "server_error"}})
            else:
                items[-1] = failure(items)

        def frame(number: int, event: dict[str, Any]) -> bytes:
            if not typed:
                return f"data: {json.dumps(event)}\n\n".encode()
            if str(event.get("type", "")).startswith("response"):
                event = {**event, "sequence_number": number}
            return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()

        async def generate() -> AsyncIterator[bytes]:
            for sent, event in enumerate(items):
                if break_after is not None and sent >= break_after:
                    raise StreamAborted(f"stream broken after {sent} chunks")
                if sent and self.stream_delay > 0:
                    await asyncio.sleep(self.stream_delay)
                yield frame(sent, event)
            if not typed and not injected:
                yield b"data: [DONE]\n\n"

        return StreamingResponse(
            generate(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", **(headers or {})},
        )

    def _answers(self, body: dict[str, Any], n: int) -> list[tuple[str, str]]:
        text = self.responder(body)
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        return [_truncate(text, limit) for _ in range(n)]

    def _chat(self, body: dict[str, Any]) -> Response:
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise _BadRequest("you must provide a model parameter", "model")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("'messages' must be a non-empty array", "messages")
        n = _positive_int(body.get("n", 1), "n")
        answers = self._answers(body, n)
        prompt_tokens = sum(
            word_count(_content_text(m.get("content"))) for m in messages if isinstance(m, dict)
        )
        completion_tokens = sum(word_count(text) for text, _ in answers)
        usage = _usage(prompt_tokens, completion_tokens)
        common = {
            "id": f"chatcmpl-{self._next_id()}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_local",
        }
        if not body.get("stream"):
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reason,
                }
                for i, (text, reason) in enumerate(answers)
            ]
            return JSONResponse(
                {**common, "object": "chat.completion", "choices": choices, "usage": usage}
            )

        include_usage = _include_usage(body)

        def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
            event = {**common, "object": "chat.completion.chunk", "choices": choices}
            if include_usage:
                event["usage"] = None
            return event

        def delta(i: int, payload: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
            return {"index": i, "delta": payload, "logprobs": None, "finish_reason": reason}

        def events() -> Iterable[dict[str, Any]]:
            for i in range(n):
                yield chunk([delta(i, {"role": "assistant", "content": "", "refusal": None})])
            for i, (text, _) in enumerate(answers):
                for piece in _split_words(text):
                    yield chunk([delta(i, {"content": piece})])
            for i, (_, reason) in enumerate(answers):
                yield chunk([delta(i, {}, reason)])
            if include_usage:
                yield {**chunk([]), "usage": usage}

        return self._sse(events())

    def _completions(self, body: dict[str, Any]) -> Response:
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not model:
            raise _BadRequest("you must provide a model parameter", "model")
        if prompt is None:
            raise _BadRequest("'prompt' is required", "prompt")
        prompts: list[Any] = (
            list(prompt)
            if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt)
            else [prompt]
        )
        n = _positive_int(body.get("n", 1), "n")
        answers = [a for p in prompts for a in self._answers({**body, "prompt": p}, n)]
        prompt_tokens = sum(word_count(_prompt_text(p)) for p in prompts)
        usage = _usage(prompt_tokens, sum(word_count(text) for text, _ in answers))
        common = {
            "id": f"cmpl-{self._next_id()}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_local",
        }
        if not body.get("stream"):
            choices = [
                {"text": text, "index": i, "logprobs": None, "finish_reason": reason}
                for i, (text, reason) in enumerate(answers)
            ]
            return JSONResponse({**common, "choices": choices, "usage": usage})

        include_usage = _include_usage(body)

        def chunk(i: int, text: str, reason: str | None = None) -> dict[str, Any]:
            choice = {"text": text, "index": i, "logprobs": None, "finish_reason": reason}
            event = {**common, "choices": [choice]}
            if include_usage:
                event["usage"] = None
            return event

        def events() -> Iterable[dict[str, Any]]:
            for i, (text, _) in enumerate(answers):
                for piece in _split_words(text):
                    yield chunk(i, piece)
            for i, (_, reason) in enumerate(answers):
                yield chunk(i, "", reason)
            if include_usage:
                yield {**common, "choices": [], "usage": usage}

        return self._sse(events())

    def _answer(self, body: dict[str, Any], limit: Any) -> tuple[str, bool]:
        """The responder's text cut at ``limit`` words, and whether it was cut."""
        text, reason = _truncate(self.responder(body), limit)
        return text, reason == "length"

    def _responses(self, body: dict[str, Any]) -> Response:
        model, items = body.get("model"), body.get("input")
        if not isinstance(model, str) or not model:
            raise _BadRequest("you must provide a model parameter", "model")
        if not isinstance(items, str | list) or not items:
            raise _BadRequest("'input' must be a string or a non-empty array", "input")
        text, truncated = self._answer(body, body.get("max_output_tokens"))
        previous = body.get("previous_response_id")
        if isinstance(previous, str) and previous:
            text += f" (after {previous})"  # the answer depends on the server's own state
        usage = (wire.responses_prompt_tokens(body, word_count), word_count(text))
        fields: dict[str, Any] = {
            "response_id": f"resp_{self._next_id()}",
            "text": text,
            "truncated": truncated,
            "usage": usage,
        }
        if not body.get("stream"):
            return JSONResponse(wire.response_body(body, **fields))
        events = wire.response_events(body, **fields, split=_split_words)
        return self._sse(events, failure=wire.response_failed_event)

    def _messages(self, body: dict[str, Any]) -> Response:
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise _BadRequest("model: Field required", "model")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("messages: at least one message is required", "messages")
        limit = body.get("max_tokens")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _BadRequest("max_tokens: Field required (a positive integer)", "max_tokens")
        text, truncated = self._answer(body, limit)
        usage = (wire.messages_prompt_tokens(body, word_count), word_count(text))
        number = self._next_id()
        fields: dict[str, Any] = {
            "message_id": f"msg_{number:024d}",
            "text": text,
            "truncated": truncated,
            "usage": usage,
        }
        headers = {"request-id": f"req_{number:024d}"}
        if not body.get("stream"):
            return JSONResponse(wire.messages_body(body, **fields), headers=headers)
        events = wire.messages_events(body, **fields, split=_split_words)
        return self._sse(events, failure=wire.anthropic_error_event, headers=headers)

    def _embeddings(self, body: dict[str, Any]) -> Response:
        raw_input = body.get("input")
        if raw_input is None or raw_input == []:
            raise _BadRequest("'input' is required", "input")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _BadRequest("you must provide a model parameter", "model")
        dimensions = body.get("dimensions")
        dimensions = (
            self.default_dimensions
            if dimensions is None
            else _positive_int(dimensions, "dimensions")
        )
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise _BadRequest("encoding_format must be 'float' or 'base64'", "encoding_format")
        if isinstance(raw_input, str):
            texts = [raw_input]
        elif isinstance(raw_input, list) and all(isinstance(t, int) for t in raw_input):
            texts = [json.dumps(raw_input)]  # one input given as token ids
        elif isinstance(raw_input, list):
            texts = [t if isinstance(t, str) else json.dumps(t) for t in raw_input]
        else:
            raise _BadRequest("'input' must be a string or an array", "input")

        data = []
        for index, text in enumerate(texts):
            vector = self._embed(text, dimensions)
            embedding: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                if encoding == "base64"
                else vector.astype(np.float32).tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(word_count(text) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})

    def _embed(self, text: str, dimensions: int) -> npt.NDArray[np.float64]:
        if self.embedder is None:
            return hash_embedding(text, dimensions)
        vector = np.asarray(self.embedder(text, dimensions), dtype=np.float64)
        norm = np.linalg.norm(vector)
        return vector / norm if norm > 0 else vector


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _MODEL_CREATED, "owned_by": "cachekit"}


def _positive_int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _BadRequest(f"'{param}' must be a positive integer", param)
    return value


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local OpenAI-compatible test API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--stream-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--dimensions", type=int, default=DEFAULT_EMBEDDING_DIMENSIONS)
    parser.add_argument("--require-api-key", action="store_true", help="401 without a bearer key")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    server = LocalOpenAIServer(
        host=args.host,
        port=args.port,
        delay=args.delay,
        stream_delay=args.stream_delay,
        require_api_key=args.require_api_key,
        default_dimensions=args.dimensions,
        log_level=args.log_level,
    )

    def ready(base_url: str) -> None:
        print(f"OpenAI-compatible test server on {base_url}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(on_ready=ready)


if __name__ == "__main__":
    main()
