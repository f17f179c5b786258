"""The README's install-and-run command, run as written on a copy of the tracked files:
it installs everything the demo notebooks need, JupyterLab starts and serves the
quickstart (as this user and, when the tests run as root, as an unprivileged user too),
and `notebooks/execute.py` then runs every notebook headless and offline from that
install. Needs PyPI and takes minutes: `pytest -m install` (`.ci/run` runs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534

pytestmark = pytest.mark.install


def readme_command() -> str:
    section = (ROOT / "README.md").read_text().split("## Install and try it", 1)[1]
    match = re.search(r"```bash\n(.+?)\n```", section, re.S)
    assert match, "the README's install section has no bash block"
    command = match.group(1).strip()
    assert "\n" not in command, "the README promises one command"
    return command


def tracked_copy(target: Path) -> None:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, listing):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)


def fresh_env(home: Path) -> dict[str, str]:
    """No checkout on the path, no venv active, Jupyter and IPython state kept in `home`,
    and a 'browser' that does nothing."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
           and not key.startswith(("JUPYTER", "QWEN_NB_"))}
    env.update(HOME=str(home), BROWSER="true", PIP_DISABLE_PIP_VERSION_CHECK="1",
               IPYTHONDIR=str(home / ".ipython"))
    return env


def opened_url(log: str) -> tuple[str, str, str] | None:
    """(base, path, token) of the notebook JupyterLab opens: for a file argument it writes
    `jpserver-file-to-run-PID-open.html` next to the page its log names, which redirects
    the browser to /lab/tree/PATH."""
    server = re.search(r"(http://(?:127\.0\.0\.1|localhost):\d+)/lab\?token=(\w+)", log)
    page = re.search(r"file://(\S+)/jpserver-(\d+)-open\.html", log)
    if server is None or page is None:
        return None
    to_run = Path(page.group(1)) / f"jpserver-file-to-run-{page.group(2)}-open.html"
    found = to_run.exists() and re.search(r"/lab/tree/([^?\"']+)", to_run.read_text())
    return (server.group(1), found.group(1), server.group(2)) if found else None


def serves_the_quickstart(run: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict:
    """Run the command (install, then JupyterLab), wait (bounded) until JupyterLab names
    the notebook it opens, fetch that notebook through its API with the printed token,
    then stop the server."""
    with log.open("w") as out:
        server = subprocess.Popen(run, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 1500
        url = None
        while url is None and time.monotonic() < deadline and server.poll() is None:
            url = opened_url(log.read_text())
            time.sleep(1)
        assert url, f"JupyterLab did not start (exit {server.poll()}):\n{log.read_text()[-3000:]}"
        base, path, token = url
        request = urllib.request.Request(f"{base}/api/contents/{path}?content=0",
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)


def test_the_readme_command_installs_runs_jupyterlab_and_every_notebook():
    command = readme_command()
    assert "'.[notebooks]'" in command and " && .venv/bin/jupyter lab " in command

    # Outside pytest's private tmp folder, so an unprivileged user can work there too.
    work = Path(tempfile.mkdtemp(prefix="qwen_nb_first_run_"))
    try:
        work.chmod(0o755)
        checkout, home = work / "checkout", work / "home"
        checkout.mkdir()
        home.mkdir()
        tracked_copy(checkout)
        env = fresh_env(home)
        served = serves_the_quickstart(["bash", "-c", command], checkout, env,
                                       work / "lab.log")
        assert served["name"] == "01_quickstart.ipynb" and served["type"] == "notebook"

        executed = subprocess.run([".venv/bin/python", "notebooks/execute.py"], cwd=checkout,
                                  env=env, capture_output=True, text=True, timeout=1200)
        assert executed.returncode == 0, executed.stdout[-3000:] + executed.stderr[-3000:]
        names = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        assert names and all(f"executing {name}" in executed.stdout for name in names)
        for name in names:
            notebook = nbformat.read(checkout / "notebooks" / name, as_version=4)
            code = [cell for cell in notebook.cells if cell.cell_type == "code"]
            assert all(cell.execution_count for cell in code), name
            errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
            assert errors == [], f"{name}: {errors[:1]}"

        if os.geteuid() == 0 and shutil.which("setpriv"):
            # The same command as an ordinary user, in a checkout of their own, with the
            # system's python3 (root's own interpreters may sit in a private home).
            mine, their_home = work / "nobody", work / "nobody-home"
            for folder in (mine, their_home):
                folder.mkdir()
            tracked_copy(mine)
            for folder in (mine, their_home):
                for path in (folder, *folder.rglob("*")):
                    os.chown(path, NOBODY, NOBODY)
            their_env = {**fresh_env(their_home), "PATH": "/usr/local/bin:/usr/bin:/bin"}
            as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                         "--clear-groups", "bash", "-c", command]
            served = serves_the_quickstart(as_nobody, mine, their_env, work / "nobody.log")
            assert served["name"] == "01_quickstart.ipynb"
    finally:
        shutil.rmtree(work, ignore_errors=True)
