"""Browser fixtures: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

One JupyterLab server and one Chromium per test session, both with throw-away HOME,
Jupyter and profile directories; each test gets its own page and its own copy of a test
notebook. The model is the suite's FakeServer (in this process), reached by the kernel
through QWEN_NB_BASE_URL / QWEN_NB_API_KEY. Servers are started in their own session and
stopped by PID; `timeout` bounds their lifetime even if pytest dies.

Set QWEN_NB_BROWSER_KERNEL_STARTUP=/path/to/script.py to run a script at every kernel's
start (IPython startup file). It exists to check that these tests catch breakage, e.g. a
script that replaces `qwen_nb.render.bundle.tabs_html`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(__file__).parent / "notebooks"
SCREENSHOTS = REPO / "artifacts" / "screenshots"
FAKE_KEY = "sk-qwen-nb-TEST-KEY-3f9a1c7e5d"  # the same distinctive key as tests/conftest.py
SERVER_LIFETIME = 1200  # seconds; `timeout` kills the Lab server after this, whatever happens
WAIT_MS = 120_000  # app-state waits: generous, the machine's 2 cores are shared

NOTIFICATION_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is missing: install Debian's chromium "
        "(apt-get install chromium; .ci/run does it) to run browser tests"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM the process group we created (its id is the server's PID), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass


class LabServer:
    """A JupyterLab server process with its own HOME, settings and notebook root."""

    def __init__(self, base: Path, model_url: str) -> None:
        self.base = base
        self.root = base / "root"
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "lab.log"
        self.env = kernel_env(base, model_url)
        self.process: subprocess.Popen | None = None

    def start(self) -> LabServer:
        settings = self.base / "app-settings"
        settings.mkdir(parents=True)
        (settings / "overrides.json").write_text(json.dumps(NOTIFICATION_OVERRIDES))
        self.root.mkdir()
        command = ["timeout", "-k", "10", str(SERVER_LIFETIME), sys.executable,
                   *self.arguments(settings)]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_until_up(timeout=120)
        return self

    def arguments(self, settings: Path) -> list[str]:
        return [
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.app_settings_dir={settings}",
            f"--LabApp.user_settings_dir={self.base / 'user-settings'}",
            f"--LabApp.workspaces_dir={self.base / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
        ]

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/status?token={self.token}", timeout=5
                ) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def notebook_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def add_notebook(self, name: str, as_name: str | None = None) -> str:
        """Copy a test notebook into the server's root; return its path there."""
        source = NOTEBOOKS / name if not Path(name).is_absolute() else Path(name)
        target = self.root / (as_name or source.name)
        shutil.copyfile(source, target)
        return target.name


class NotebookServer(LabServer):
    """A Jupyter Notebook 7 server (the same front-end components as JupyterLab)."""

    def arguments(self, settings: Path) -> list[str]:
        return [
            "-m", "notebook", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
            "--JupyterNotebookApp.expose_app_in_browser=True",
            f"--JupyterNotebookApp.app_settings_dir={settings}",
            f"--JupyterNotebookApp.user_settings_dir={self.base / 'user-settings'}",
        ]

    def notebook_url(self, path: str) -> str:
        return f"{self.url}/notebooks/{path}?token={self.token}"


def kernel_env(base: Path, model_url: str) -> dict[str, str]:
    """The environment of the Lab server and its kernels: throw-away HOME, local model."""
    home = base / "home"
    ipython_dir = home / ".ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    script = os.environ.get("QWEN_NB_BROWSER_KERNEL_STARTUP")
    if script:
        shutil.copyfile(script, startup / "00-qwen-nb-browser-test.py")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QWEN_NB_", "JUPYTER", "JPY_"))
        and k
        not in (
            "AIML_API_KEY",
            "AIMLAPI_API_KEY",
            "DASHSCOPE_API_KEY",
            "OPENROUTER_API_KEY",
            "IPYTHONDIR",
        )
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
            "JUPYTER_DATA_DIR": str(home / ".local" / "share" / "jupyter"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "IPYTHONDIR": str(ipython_dir),
            "MPLBACKEND": "Agg",
            "QWEN_NB_BASE_URL": model_url,
            "QWEN_NB_API_KEY": FAKE_KEY,
            "QWEN_NB_MODEL": "qwen3-vl-32b-thinking",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
    )
    return env


def _serve(kind: type[LabServer], fake_server, tmp_path_factory) -> Iterator[LabServer]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    server = kind(tmp_path_factory.mktemp(kind.__name__), fake_server.base_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lab(fake_server, tmp_path_factory) -> Iterator[LabServer]:
    yield from _serve(LabServer, fake_server, tmp_path_factory)


@pytest.fixture(scope="session")
def notebook7(fake_server, tmp_path_factory) -> Iterator[LabServer]:
    yield from _serve(NotebookServer, fake_server, tmp_path_factory)


@pytest.fixture
def open_notebook7(notebook7, page, model):
    """open_notebook7("magic.ipynb", as_name=...) -> LabPage in Notebook 7, kernel ready."""

    def open_(name: str, as_name: str | None = None) -> LabPage:
        return LabPage(page, notebook7, notebook7.add_notebook(name, as_name)).open()

    return open_


@pytest.fixture
def model(fake_server):
    """The local model server, emptied, for the test to queue replies on."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS // 2)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            env=_browser_env(profile),
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


def _browser_env(profile: Path) -> dict[str, str]:
    home = profile.parent / (profile.name + "-home")
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


@pytest.fixture
def page(browser_context, request) -> Iterator[Any]:
    """A fresh tab; its screenshot goes to artifacts/screenshots/ when the test fails."""
    page = browser_context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        save_screenshot(page, f"FAILED-{request.node.name}")
    page.close()


def save_screenshot(page: Any, name: str) -> Path | None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (name.replace("/", "_").replace("[", "-").replace("]", "") + ".png")
    try:
        page.screenshot(path=str(path), full_page=True, timeout=30_000)
    except Exception as error:  # a screenshot must never hide the test's own failure
        print(f"screenshot {path} failed: {error}", file=sys.stderr)
        return None
    return path


# JavaScript run in the page. JupyterLab reports "idle" before a session has a kernel, so
# readiness is read from the app itself (exposed by --LabApp.expose_app_in_browser).
_FIND_NOTEBOOK = """
const findNotebook = (path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.sessionContext) return widget;
  }
  return null;
};
"""
_KERNEL_READY = (
    _FIND_NOTEBOOK
    + """
(path) => {
  const widget = findNotebook(path);
  if (!widget || !widget.context.isReady || !widget.sessionContext.isReady) return false;
  const session = widget.sessionContext.session;
  const kernel = session && session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'
    && window.jupyterapp.shell.currentWidget === widget;
}"""
)
_RUN_ALL = (
    _FIND_NOTEBOOK
    + """
(path) => {
  const widget = findNotebook(path);
  window.jupyterapp.shell.activateById(widget.id);
  window.__qwenRunAll = undefined;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    (ok) => { window.__qwenRunAll = {ok: !!ok}; },
    (error) => { window.__qwenRunAll = {ok: false, error: String(error)}; });
}"""
)
_RUN_CELL = (
    _FIND_NOTEBOOK
    + """
([path, index]) => {
  const widget = findNotebook(path);
  window.jupyterapp.shell.activateById(widget.id);
  widget.content.activeCellIndex = index;
  widget.content.deselectAll();
  void window.jupyterapp.commands.execute('notebook:run-cell');
}"""
)
_COMMAND = (
    _FIND_NOTEBOOK
    + """
async ([path, name]) => {
  const widget = findNotebook(path);
  window.jupyterapp.shell.activateById(widget.id);
  await window.jupyterapp.commands.execute(name);
}"""
)
_SAVE = (
    _FIND_NOTEBOOK
    + """
async (path) => {
  const widget = findNotebook(path);
  window.jupyterapp.shell.activateById(widget.id);
  await widget.context.save();
  return widget.context.model.dirty;
}"""
)
_SHUTDOWN_KERNEL = (
    _FIND_NOTEBOOK
    + """
async (path) => {
  const widget = findNotebook(path);
  await widget.sessionContext.shutdown();
  return widget.sessionContext.session ? 'session left' : 'no session';
}"""
)


class LabPage:
    """One notebook open in JupyterLab in a browser tab, driven through the app's own API."""

    def __init__(self, page: Any, lab: LabServer, path: str) -> None:
        self.page = page
        self.lab = lab
        self.path = path

    def open(self) -> LabPage:
        self.page.goto(self.lab.notebook_url(self.path), wait_until="domcontentloaded")
        self.wait_kernel_ready()
        return self

    def wait_kernel_ready(self) -> None:
        self.page.wait_for_function(_KERNEL_READY, arg=self.path, timeout=WAIT_MS, polling=200)

    def run_all(self, *, expect_ok: bool = True) -> None:
        """Run all cells and wait until the last one has finished."""
        self.start_run_all()
        self.wait_run_all(expect_ok=expect_ok)

    def start_run_all(self) -> None:
        self.wait_kernel_ready()
        self.page.evaluate(_RUN_ALL, self.path)

    def wait_run_all(self, *, expect_ok: bool = True) -> None:
        self.page.wait_for_function(
            "() => window.__qwenRunAll !== undefined", timeout=WAIT_MS, polling=200
        )
        result = self.page.evaluate("() => window.__qwenRunAll")
        if expect_ok:
            assert result["ok"], f"Run All failed: {result}\n{self.error_outputs()}"

    def run_cell(self, index: int) -> None:
        """Run one cell (markdown cells count) without waiting for it."""
        self.page.evaluate(_RUN_CELL, [self.path, index])

    def command(self, name: str) -> None:
        """Execute a JupyterLab command on this notebook and wait for it."""
        self.page.evaluate(_COMMAND, [self.path, name])

    def error_outputs(self) -> str:
        return "\n".join(
            self.page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).all_inner_texts()
        )

    def save(self) -> None:
        dirty = self.page.evaluate(_SAVE, self.path)
        assert dirty is False, "the notebook is still dirty after saving"

    def shutdown_kernel(self) -> None:
        self.page.evaluate(_SHUTDOWN_KERNEL, self.path)

    def reload(self) -> None:
        self.page.reload(wait_until="domcontentloaded")
        self.page.wait_for_function(
            _FIND_NOTEBOOK + "(path) => { const w = findNotebook(path);"
            " return !!w && w.context.isReady; }",
            arg=self.path,
            timeout=WAIT_MS,
            polling=200,
        )

    def cell_output(self, index: int) -> Any:
        """The output area of the notebook's `index`-th cell (markdown cells count)."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")

    def file_json(self) -> dict:
        return json.loads((self.lab.root / self.path).read_text())


@pytest.fixture
def open_notebook(lab, page, model):
    """open_notebook("magic.ipynb", as_name=...) -> LabPage with the kernel ready."""

    def open_(name: str, as_name: str | None = None) -> LabPage:
        return LabPage(page, lab, lab.add_notebook(name, as_name)).open()

    return open_


@pytest.fixture
def screenshot(page):
    """screenshot("name") saves the page under artifacts/screenshots/name.png."""
    return lambda name: save_screenshot(page, name)
