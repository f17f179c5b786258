"""The package as users get it: `python -m build` from a clean copy of the tracked files,
no warnings, `twine check`, every tracked file under qwen_nb/ in the wheel, and the
wheel installed (not editable) into a fresh venv passing the non-browser tests.

Slow (minutes) and needs PyPI, so it is skipped unless selected: `pytest -m install`
(`.ci/run` runs it as its own step).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.install


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True)
    return [name for name in listing.stdout.decode().split("\0")
            if name and (ROOT / name).is_file()]


def clean_env() -> dict[str, str]:
    """This shell's environment minus what would point Python at the checkout."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict:
    """wheel and sdist built from a copy of exactly what git tracks, and the build log."""
    source = tmp_path_factory.mktemp("source")
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                           capture_output=True, text=True, env=clean_env(), timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "log": build.stdout + build.stderr}


def test_build_prints_no_warnings(dist):
    noisy = [line for line in dist["log"].splitlines()
             if re.search(r"warn|deprecat", line, re.I)]
    assert noisy == []


def test_twine_check_passes(dist):
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                            str(dist["wheel"]), str(dist["sdist"])],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("PASSED") == 2


def test_metadata_has_the_spdx_license_and_the_one_version(dist):
    import qwen_nb

    with zipfile.ZipFile(dist["wheel"]) as wheel:
        (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        text = wheel.read(metadata).decode()
        names = wheel.namelist()
    assert "License-Expression: MIT" in text
    assert re.search(r"^Version: (.+)$", text, re.M).group(1) == qwen_nb.__version__
    assert dist["wheel"].name.startswith(f"qwen_nb-{qwen_nb.__version__}-")
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Provides-Extra: notebooks" in text


def test_wheel_ships_every_file_git_tracks_under_the_package(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        shipped = set(wheel.namelist())
    package = [name for name in tracked_files() if name.startswith("qwen_nb/")]
    assert "qwen_nb/py.typed" in package
    assert sorted(set(package) - shipped) == []
    # The nbconvert config that makes `--to markdown` take each reply's Markdown.
    data = f"qwen_nb-{qwen_nb_version()}.data/data/etc/jupyter/jupyter_nbconvert_config.json"
    assert data in shipped


def qwen_nb_version() -> str:
    import qwen_nb

    return qwen_nb.__version__


def test_sdist_holds_the_tracked_sources_tests_and_notebooks(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        shipped = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    wanted = [name for name in tracked_files()
              if name.startswith(("qwen_nb/", "tests/", "notebooks/"))
              or name in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml")]
    assert top.startswith("qwen_nb-")
    assert sorted(set(wanted) - shipped) == []


def test_the_installed_wheel_passes_the_non_browser_tests(dist, tmp_path):
    """A fresh venv (no system site-packages), the wheel with its test extra from PyPI,
    and the tests run from a folder that holds no qwen_nb sources."""
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(target)
    python = str(target / "bin" / "python")
    env = {**clean_env(), "PATH": f"{target / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"{dist['wheel']}[test]"],
                   check=True, env=env, timeout=1200)

    run = tmp_path / "run"
    # benchmarks/: test_render checks the size goal on bench_render's own reply.
    for name in ("tests", "notebooks", "benchmarks"):
        shutil.copytree(ROOT / name, run / name,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    shutil.copy(ROOT / "pyproject.toml", run / "pyproject.toml")  # markers, options

    where = subprocess.run([python, "-I", "-c", "import qwen_nb; print(qwen_nb.__file__)"],
                           cwd=run, env=env, capture_output=True, text=True, check=True)
    installed = Path(where.stdout.strip())
    assert "site-packages" in installed.parts and target in installed.parents

    tests = subprocess.run(
        [python, "-I", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-m", "not browser and not install", "tests"],
        cwd=run, env=env, capture_output=True, text=True, timeout=2400)
    summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else ""
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
