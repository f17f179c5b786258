"""Shared fixtures: the local OpenAI-compatible server and a real IPython shell."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_server import FakeServer  # noqa: E402
from support import FAKE_KEY  # noqa: E402

# Nothing a test does may reach a real provider or read the developer's own keys.
for _name in ("AIML_API_KEY", "AIMLAPI_API_KEY", "DASHSCOPE_API_KEY", "OPENROUTER_API_KEY",
              "QWEN_NB_API_KEY", "QWEN_NB_BASE_URL", "QWEN_NB_PROVIDER", "QWEN_NB_MODEL"):
    os.environ.pop(_name, None)
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    """Tests that install into fresh venvs take minutes and need PyPI: they run only when
    `-m` names them (`.ci/run` runs `-m install` as its own step)."""
    if "install" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="installs into a fresh venv from PyPI; run with -m install")
    for item in items:
        if "install" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fake_server():
    server = FakeServer(lifetime=3600).start()
    yield server
    server.stop()


@pytest.fixture
def server(fake_server, monkeypatch):
    """The local server, emptied, with qwen_nb pointed at it through the environment."""
    fake_server.reset()
    monkeypatch.setenv("QWEN_NB_BASE_URL", fake_server.base_url)
    monkeypatch.setenv("QWEN_NB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("QWEN_NB_MODEL", "qwen3-vl-32b-thinking")
    return fake_server


@pytest.fixture
def logs(caplog):
    """Every log record at DEBUG, httpx's and httpcore's included."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "qwen_nb"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture(scope="session")
def _global_ip():
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "qwen_nb")
    return shell


@pytest.fixture
def ip(_global_ip, server):
    """A real IPython shell with qwen_nb loaded, pointed at the local server."""
    _global_ip.user_ns.pop("_qwen", None)
    yield _global_ip
