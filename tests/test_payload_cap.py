"""A request whose images exceed the payload cap is refused before sending, naming them."""

from __future__ import annotations

import numpy as np
import pytest
from support import run_cell

import qwen_nb
from qwen_nb import ConfigError, ImageError


@pytest.fixture
def noisy(ip):
    # Noise does not compress: each image is a few hundred KB as JPEG.
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (800, 800, 3), dtype=np.uint8) for _ in range(3)]
    ip.user_ns.update(noise_a=images[0], noise_b=images[1], noise_c=images[2])
    return images


def test_magic_refuses_images_over_the_cap_and_names_what_to_shrink(ip, server, noisy):
    result = run_cell(ip, "%%qwen --max-payload-mb 0.5 -i noise_a -i noise_b\nCompare.")
    error = result.error_in_exec
    assert isinstance(error, ImageError)
    assert "noise_a" in str(error) or "noise_b" in str(error)
    assert "--max-pixels" in str(error)
    assert server.requests == []


def test_the_cap_comes_from_config_env_and_ask(ip, server, noisy, monkeypatch):
    ip.run_line_magic("config", "QwenMagics.max_payload_mb = 0.5")
    try:
        assert isinstance(run_cell(ip, "%%qwen -i noise_c\nWhat?").error_in_exec, ImageError)
    finally:
        ip.run_line_magic("config", "QwenMagics.max_payload_mb = 0")
    assert server.requests == []
    with pytest.raises(ImageError):
        qwen_nb.ask("What?", noisy[0], noisy[1], max_payload_mb=0.5)
    monkeypatch.setenv("QWEN_NB_MAX_PAYLOAD_MB", "0.5")
    with pytest.raises(ImageError):
        qwen_nb.ask("What?", noisy[0], noisy[1])
    assert server.requests == []
    monkeypatch.delenv("QWEN_NB_MAX_PAYLOAD_MB")
    response = qwen_nb.ask("What?", noisy[0], noisy[1])  # default 20 MB: fits
    assert response.complete and len(server.requests) == 1


def test_a_bad_cap_is_a_config_error(server):
    with pytest.raises(ConfigError, match="max_payload_mb"):
        qwen_nb.ask("What?", max_payload_mb=-1)
