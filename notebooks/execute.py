"""Re-execute the demo notebooks headless and save them with their outputs.

    .venv/bin/python notebooks/execute.py                  # every notebook, offline, no key
    .venv/bin/python notebooks/execute.py 01_quickstart.ipynb
    .venv/bin/python notebooks/execute.py --keep-env       # use your own key / provider

By default the kernel gets no API key and no QWEN_NB_* settings, so each notebook's setup
cell picks the offline simulator: the committed outputs are reproducible anywhere and
never contain a key. Each notebook runs in its own folder (so `.qwen_cache/` lands beside
it), without widget state or timing metadata, so re-running changes as little as possible.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Everything that could point a kernel at a real provider, a key, or a cache mode.
SCRUBBED = (
    "AIML_API_KEY", "AIMLAPI_API_KEY", "DASHSCOPE_API_KEY", "OPENROUTER_API_KEY",
    "QWEN_NB_API_KEY", "QWEN_NB_BASE_URL", "QWEN_NB_PROVIDER", "QWEN_NB_MODEL",
    "QWEN_NB_CACHE_MODE", "QWEN_NB_CACHE",
)


def offline_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a kernel that can only use the offline simulator."""
    env = dict(os.environ if base is None else base)
    for name in SCRUBBED:
        env.pop(name, None)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures
    return env


def execute_notebook(path: Path, *, env: Mapping[str, str] | None = None,
                     timeout: float = 300.0, cwd: Path | None = None) -> object:
    """Run `path` top to bottom in a fresh python3 kernel and return the notebook node.

    The kernel runs in `cwd` (default: the notebook's folder) with environment `env`.
    An error in a cell raises nbclient's CellExecutionError.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd or path.parent)}},
        store_widget_state=False,
        record_timing=False,
    )
    client.execute(env=dict(offline_env() if env is None else env))
    return notebook


def notebooks(names: list[str]) -> list[Path]:
    """The notebooks named (a path, or a name in this folder), or every demo notebook."""
    demos = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return demos
    chosen = [Path(name) if Path(name).exists() else HERE / name for name in names]
    missing = [str(path) for path in chosen if not path.is_file()]
    if missing:
        raise SystemExit(f"No notebook {', '.join(missing)}; the demo notebooks are: "
                         + ", ".join(path.name for path in demos))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="Notebooks to run (default: all).")
    parser.add_argument("--keep-env", action="store_true",
                        help="Keep this shell's keys and QWEN_NB_* settings (real API).")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="Seconds allowed per cell.")
    args = parser.parse_args(argv)

    import nbformat

    env = dict(os.environ) if args.keep_env else offline_env()
    for path in notebooks(args.notebooks):
        print(f"executing {path.name} ...", flush=True)
        notebook = execute_notebook(path, env=env, timeout=args.timeout)
        nbformat.write(notebook, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
