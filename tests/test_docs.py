"""The documentation's code samples run, and every hook is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from helpkit import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAGES = sorted(DOCS.glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_samples_run(page: Path) -> None:
    blocks = FENCE.findall(page.read_text(encoding="utf-8"))
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for index, block in enumerate(blocks):
        code = compile(block, f"{page.name}[block {index + 1}]", "exec")
        exec(code, namespace)


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
