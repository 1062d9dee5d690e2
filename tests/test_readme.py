"""The README's set-up section: two commands, verbatim, and the CPU-only torch note.

``.ci/run`` runs the README's test command word for word, so the commands must not
change; the CUDA-vs-CPU torch advice lives in prose next to them.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = 'pip install torch==2.13.0 -e ".[local,server]" && python -m cachekit demo'
TESTS = 'pip install torch==2.13.0 -e ".[dev]" && python -m pytest'
CPU_INDEX = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"


def setup_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("## Set-up", 1)[1].split("\n## ", 1)[0]


def test_setup_has_exactly_the_two_commands() -> None:
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", setup_section(), re.M | re.S)
    assert [b.strip() for b in blocks] == [DEMO, TESTS]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert TESTS in ci


def test_setup_documents_the_cpu_only_torch_install() -> None:
    prose = " ".join(setup_section().split())  # the note may wrap
    assert f"`{CPU_INDEX}`" in prose
    assert "CUDA" in prose and "PyPI" in prose
