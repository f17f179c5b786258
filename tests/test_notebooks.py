"""The demo notebooks, executed for real: nbclient in a python3 kernel, no key, no network
(the offline simulator), then against the local server with record/replay."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest
from fake_server import FakeServer, Reply
from support import FAKE_KEY

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))

from execute import execute_notebook, offline_env  # noqa: E402

pytestmark = pytest.mark.kernel

ALL = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# Notebooks whose every reply must be a static %%qwen bundle (the panel's is a widget).
DEMOS = [name for name in ALL if "panel" not in name]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def qwen_outputs(notebook) -> list[dict]:
    """Replies that qwen_nb produced (they carry the `qwen_nb` metadata; the panel's
    transcript slots carry it too, and are not replies)."""
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs if "qwen_nb" in output.get("metadata", {})
            and "transcript_slot" not in output["metadata"]["qwen_nb"]]


def texts(output) -> tuple[str, str]:
    """(thinking, answer) as shown in the text/plain fallback."""
    plain = output["data"]["text/plain"]
    match = re.match(r"(?:--- Thinking ---\n(?P<thinking>.*?)\n)?--- Answer ---\n"
                     r"(?P<answer>.*)\n(?:! .*\n)?\[[^\n]*\]$", plain, re.S)
    assert match, plain
    return match.group("thinking") or "", match.group("answer")


def visible_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def run_copy(name: str, folder: Path, env: dict[str, str]):
    """Execute a copy of notebook `name` in `folder` (its cache lands there), save it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    shutil.copy(NOTEBOOKS / name, path)
    notebook = execute_notebook(path, env=env, timeout=300)
    nbformat.write(notebook, path)
    return notebook, path


def check_static_bundles(notebook, name: str) -> None:
    outputs = qwen_outputs(notebook)
    if name in DEMOS:
        assert outputs, f"{name} shows no %%qwen reply"
    for output in outputs:
        data = output["data"]
        assert {"text/html", "text/plain", "text/markdown"} <= set(data)
        thinking, answer = texts(output)
        assert answer.strip()
        shown = visible_text(data["text/html"])
        assert thinking in shown
        assert 'type="radio"' in data["text/html"]
        assert output["metadata"]["qwen_nb"]["complete"] is True
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{name}: {output.get('evalue')}"
            if name in DEMOS:
                assert WIDGET_MIME not in output.get("data", {}), f"{name} kept a widget"


@pytest.fixture(scope="module")
def offline_runs(tmp_path_factory):
    """Every notebook executed once, offline, with decoy keys in unused variables."""
    env = offline_env()
    env.update(DASHSCOPE_API_KEY=FAKE_KEY, OPENROUTER_API_KEY=FAKE_KEY)
    folder = tmp_path_factory.mktemp("offline")
    copy_folder(folder)  # with the committed recordings, as execute.py runs in place
    return {name: run_copy(name, folder, env) for name in ALL}


def copy_folder(target: Path) -> None:
    shutil.copytree(NOTEBOOKS, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))


def comparable(text: str) -> str:
    """A saved notebook with the ids of live widget models (random per kernel) blanked."""
    return re.sub(r'"model_id": "[0-9a-f]{32}"', '"model_id": "-"', text)


def test_executing_the_notebooks_again_gives_identical_files(offline_runs, tmp_path):
    """notebooks/execute.py, run as a user runs it, reproduces every saved byte of the
    first run (outputs, timings, cell ids), live widget ids aside; recordings unchanged."""
    first = {name: comparable(path.read_text()) for name, (_, path) in offline_runs.items()}
    folder = tmp_path / "again"
    copy_folder(folder)
    subprocess.run([sys.executable, str(folder / "execute.py")], check=True, timeout=900,
                   env=offline_env(), capture_output=True)
    again = {name: comparable((folder / name).read_text()) for name in ALL}
    for name in ALL:
        assert again[name] == first[name], f"{name} changed between two offline runs"
    recordings = sorted(p.name for p in (NOTEBOOKS / ".qwen_cache").glob("*.json"))
    for name in recordings:
        assert (folder / ".qwen_cache" / name).read_bytes() == (
            NOTEBOOKS / ".qwen_cache" / name).read_bytes()
    ids = [cell.id for cell in nbformat.read(folder / ALL[0], as_version=4).cells]
    assert ids == [cell.id for cell in nbformat.read(NOTEBOOKS / ALL[0], as_version=4).cells]


@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_offline_and_keeps_static_outputs(offline_runs, name):
    notebook, path = offline_runs[name]
    check_static_bundles(notebook, name)
    saved = path.read_text()
    assert FAKE_KEY not in saved and "Authorization" not in saved
    assert "widgets" not in notebook.metadata
    if name in DEMOS:
        assert "offline simulator" in saved
        first = notebook.cells[1]
        assert "%load_ext qwen_nb" in first.source
        assert "offline simulator" in "".join(o.get("text", "") for o in first.outputs)
    assert len(saved) < 400_000, "outputs should be thumbnails, not megabytes"


@pytest.mark.parametrize("name", DEMOS)
def test_committed_notebook_was_executed_top_to_bottom(name):
    """The committed outputs come from one headless run (notebooks/execute.py)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    check_static_bundles(notebook, name)
    text = (NOTEBOOKS / name).read_text()
    assert FAKE_KEY not in text and "Authorization" not in text
    assert "widgets" not in notebook.metadata
    assert len(text) < 400_000


def test_nbconvert_html_has_answers_thinking_and_css_tabs(offline_runs):
    from nbconvert import HTMLExporter

    notebook, _ = offline_runs["01_quickstart.ipynb"]
    body, _ = HTMLExporter().from_notebook_node(notebook)
    shown = visible_text(body)
    outputs = qwen_outputs(notebook)
    for output in outputs:
        thinking, answer = texts(output)
        assert thinking in shown
        fingerprint = re.search(r'request_fingerprint = "\w+"', answer).group(0)
        assert fingerprint in shown
    assert "Offline simulator reply" in shown
    assert body.count('type="radio"') >= 3 * len(outputs)
    assert "input.qwen-nb-tab:checked+label" in body  # the tabs work with CSS alone


def _answer_for(body) -> Reply:
    """A distinct, deterministic reply per request, so replays can be compared."""
    tag = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
    return Reply(thinking=f"Thinking about request {tag[:8]}: look, then answer.",
                 answer=f"Answer to request **{tag[:8]}**: a house under the sun.",
                 request_id=f"chatcmpl-{tag[:12]}")


def test_auto_run_then_replay_with_the_server_stopped(tmp_path):
    names = [name for name in ("01_quickstart.ipynb", "03_images_and_plots.ipynb")
             if name in ALL]
    server = FakeServer(lifetime=600).start()
    try:
        server.reply_fn = _answer_for
        env = offline_env()
        env.update(QWEN_NB_BASE_URL=server.base_url, QWEN_NB_API_KEY=FAKE_KEY,
                   QWEN_NB_MODEL="qwen3-vl-32b-thinking", QWEN_NB_CACHE_MODE="auto")
        recorded = {name: run_copy(name, tmp_path / "record", env)[0] for name in names}
        calls = len(server.requests)
    finally:
        server.stop()
    assert calls == sum(len(qwen_outputs(nb)) for nb in recorded.values())
    assert all(r.headers.get("Authorization") == f"Bearer {FAKE_KEY}" for r in server.requests)

    shutil.copytree(tmp_path / "record" / ".qwen_cache", tmp_path / "replay" / ".qwen_cache")
    env["QWEN_NB_CACHE_MODE"] = "replay"
    for name in names:
        replayed, path = run_copy(name, tmp_path / "replay", env)
        check_static_bundles(replayed, name)
        live = [texts(o) for o in qwen_outputs(recorded[name])]
        again = [texts(o) for o in qwen_outputs(replayed)]
        assert again == live and all("Answer to request" in answer for _, answer in live)
        for output in qwen_outputs(replayed):
            assert "replayed from cache, recorded on" in output["data"]["text/html"]
        assert FAKE_KEY not in path.read_text()

    files = sorted((tmp_path / "replay" / ".qwen_cache").glob("*.json"))
    assert len(files) == len({r.json["messages"].__repr__() for r in server.requests})
    for file in files:
        text = file.read_text()
        assert FAKE_KEY not in text and "Authorization" not in text and "Bearer" not in text


def test_binder_files_install_the_package(tmp_path):
    """binder/requirements.txt resolves, and binder/postBuild installs qwen_nb into a fresh
    virtual environment (network: PyPI)."""
    if not (ROOT / "qwen_nb").is_dir():
        pytest.skip("binder/ installs from a source checkout; these tests run from a wheel")
    checkout = tmp_path / "checkout"  # pip builds in the source tree: keep the repo clean
    for name in ("binder", "qwen_nb"):
        shutil.copytree(ROOT / name, checkout / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, checkout / name)
    requirements = checkout / "binder" / "requirements.txt"
    post_build = checkout / "binder" / "postBuild"
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK)
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    env = {**os.environ, "PATH": f"{target / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--dry-run", "-r",
                    requirements], check=True, env=env, cwd=checkout, timeout=600)
    subprocess.run(["bash", post_build], check=True, env=env, cwd=checkout, timeout=600)
    check = subprocess.run(
        [python, "-c", "import qwen_nb, qwen_nb.api, qwen_nb.offline, qwen_nb.cache, "
         "qwen_nb.render, numpy, matplotlib, nbclient; print(qwen_nb.__version__)"],
        check=True, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.stdout.strip()


def test_video_notebook_saves_the_frame_strip_and_timeline(offline_runs):
    notebook, path = offline_runs["06_video.ipynb"]
    outputs = qwen_outputs(notebook)
    assert len(outputs) == 2
    described, timed = (output["data"]["text/html"] for output in outputs)
    assert "Video 1 frames sent" in described and described.count("data:image/jpeg") >= 16
    assert "visual tokens" in visible_text(described)
    assert "Timeline" in timed and 'class="qwen-nb-bar"' in timed
    assert "frames look green" in visible_text(timed)
    saved = nbformat.read(path, as_version=4)
    assert "widgets" not in saved.metadata
    assert all(WIDGET_MIME not in o.get("data", {}) for c in saved.cells
               for o in c.get("outputs", []))


def test_execute_names_the_notebooks_when_asked_for_a_missing_one():
    result = subprocess.run([sys.executable, str(NOTEBOOKS / "execute.py"), "nope.ipynb"],
                            capture_output=True, text=True, timeout=60, env=offline_env())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "No notebook" in result.stderr and all(name in result.stderr for name in ALL)
