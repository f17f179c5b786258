"""`dir(qwen_nb)` lists the public API, lazy names included, so Tab completion finds it,
and listing or completing imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("httpx", "PIL", "ipywidgets", "markdown_it", "numpy", "anywidget", "pydantic",
         "qwen_nb.api", "qwen_nb.panel", "qwen_nb._batch", "qwen_nb.client")


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dir_lists_every_public_name_without_importing_anything_heavy():
    result = run(
        "import json, sys, qwen_nb\n"
        "names = dir(qwen_nb)\n"
        "print(json.dumps({'names': names, 'all': qwen_nb.__all__,\n"
        f"  'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    assert result["heavy"] == []
    assert set(result["all"]) <= set(result["names"])
    assert {"ask", "stream", "batch", "Panel", "BatchResult", "__version__"} <= set(
        result["names"])
    assert result["names"] == sorted(result["names"])


def test_every_listed_public_name_resolves():
    import qwen_nb

    for name in qwen_nb.__all__:
        assert getattr(qwen_nb, name) is not None, name


def test_ipython_completes_the_lazy_names():
    """In a real IPython shell, `qwen_nb.as<Tab>` offers `ask`, still without httpx."""
    result = run(
        "import json, sys\n"
        "from IPython.core.completer import provisionalcompleter\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_cell('import qwen_nb')\n"
        "found = {}\n"
        "for typed in ('qwen_nb.as', 'qwen_nb.Pa', 'qwen_nb.ba', 'qwen_nb.str'):\n"
        "    with provisionalcompleter():\n"
        "        offered = ip.Completer.completions(typed, len(typed))\n"
        "        found[typed] = sorted({c.text for c in offered})\n"
        "print(json.dumps({'found': found, 'httpx': 'httpx' in sys.modules}))\n"
    )
    found = result["found"]
    assert found == {"qwen_nb.as": ["ask"], "qwen_nb.Pa": ["Panel"], "qwen_nb.ba": ["batch"],
                     "qwen_nb.str": ["stream"]}
    assert result["httpx"] is False
