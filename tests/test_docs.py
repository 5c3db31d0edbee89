"""The documentation's code samples run, and every hook is documented.

Which blocks run, and how:

- a ```` ```python ```` block runs with the page's earlier blocks, in one namespace per page;
- a ```` ```python ```` block whose first line is a ``# test_<name>.py`` comment is a test
  module of a user's suite (it asks for the ``helpkit_`` pytest fixtures): it is written to that
  file and run by pytest in a fresh process, as the user's suite would be;
- a ```` ```toml ```` block is a ``helpkit.toml`` example and must load with
  ``DeskConfig.from_dict``, unless it is a ``pyproject.toml`` fragment (a ``[project...]`` table);
- other blocks are not code: shell commands (``bash``, ``text``), diagrams, Sphinx directives.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpkit import DeskConfig, hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
TOML_FENCE = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)
TEST_MODULE = re.compile(r"\A# (test_\w+\.py)\n")
PAGES = sorted(DOCS.glob("*.md"))


def _blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


def _test_modules() -> list[tuple[Path, str, str]]:
    """(page, file name, code) of every block that is a test module of a user's suite."""
    found = []
    for page in PAGES:
        for block in _blocks(page):
            match = TEST_MODULE.match(block)
            if match:
                found.append((page, match.group(1), block))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_samples_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for index, block in enumerate(_blocks(page)):
        if TEST_MODULE.match(block):
            continue  # test_pytest_samples_pass runs it
        code = compile(block, f"{page.name}[block {index + 1}]", "exec")
        exec(code, namespace)


def test_pytest_samples_pass(tmp_path: Path) -> None:
    modules = _test_modules()
    assert any(page.name == "testing.md" for page, _, _ in modules), "testing.md has no test file"
    names = [name for _, name, _ in modules]
    assert len(set(names)) == len(names), f"two samples claim the same file name: {names}"
    for _, name, code in modules:
        (tmp_path / name).write_text(code, encoding="utf-8")
    tests = sum(len(re.findall(r"^def test_", code, re.MULTILINE)) for _, _, code in modules)
    # A fresh process in a directory of its own, as a user's suite: no configuration of ours,
    # and helpkit's fixtures come from its pytest11 entry point alone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{tests} passed" in output, output


def test_config_samples_load() -> None:
    samples = 0
    for page in PAGES:
        for block in TOML_FENCE.findall(page.read_text(encoding="utf-8")):
            data = tomllib.loads(block)
            if "project" in data:
                continue  # a pyproject.toml fragment (entry points)
            DeskConfig.from_dict(data)
            samples += 1
    assert samples >= 2


def test_every_hookspec_is_documented_with_its_signature() -> None:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    specs = [
        name
        for name, obj in vars(hookspecs).items()
        if name.startswith("helpkit_") and callable(obj)
    ]
    assert specs, "no hookspecs found"
    for name in specs:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"## `{name}({params})`" in text, f"{name} has no section in docs/hooks.md"
        assert f"Signature: `{name}(" in text, f"{name} has no signature line"
