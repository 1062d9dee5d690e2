"""``cachekit demo`` against a real Redis: its report says how tokens were really counted.

The semantic layer is left off (no MiniLM load) and the offline stand-in answers at once;
what varies is tiktoken: missing (its import made to fail: it is an optional package),
installed without its encoding files (the offline case), or working (a real tiktoken
``Encoding`` with a byte-level vocabulary, so no download is needed).
"""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

from cachekit import _demo, _tokens


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> object:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(_demo, "STAND_IN_LATENCY_S", 0.0)
    monkeypatch.setattr(_demo, "_make_embedder", lambda out: None)
    monkeypatch.setattr(_tokens, "_encodings", _tokens._Encodings())  # nothing loaded yet

    def run() -> str:
        out = io.StringIO()
        asyncio.run(_demo._run(redis_url, out))
        return out.getvalue()

    return run


def saved_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("Saved so far"))


def test_demo_without_tiktoken_says_chars_per_token(
    demo: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # `import tiktoken` fails
    line = saved_line(demo())  # type: ignore[operator]
    assert "with tiktoken" not in line
    assert "4 characters per token" in line
    assert "tiktoken is not installed" in line


def test_demo_with_tiktoken_but_no_encoding_files_says_so(
    demo: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tiktoken")
    # What an offline machine ends up with: the encoding could not be loaded.
    monkeypatch.setattr(_tokens._encodings, "_state", {"o200k_base": False})
    line = saved_line(demo())  # type: ignore[operator]
    assert "with tiktoken" not in line
    assert "4 characters per token" in line
    assert "could not be loaded" in line


def test_demo_with_a_working_tiktoken_says_tiktoken(
    demo: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiktoken = pytest.importorskip("tiktoken")
    encoding = tiktoken.Encoding(
        "bytes",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={},
    )
    monkeypatch.setattr(_tokens._encodings, "_state", {"o200k_base": encoding})
    line = saved_line(demo())  # type: ignore[operator]
    assert "token counts estimated with tiktoken" in line
    assert "characters per token" not in line


def test_the_note_for_a_mix_of_both_counts_each() -> None:
    before = {_tokens.TIKTOKEN: 1, _tokens.CHARS_PER_TOKEN: 5}
    after = {_tokens.TIKTOKEN: 4, _tokens.CHARS_PER_TOKEN: 7}
    note = _demo._estimate_note(before, after)
    assert "3 with tiktoken, 2 at 4 characters per token" in note
    assert _demo._estimate_note(after, after) == ""
