"""%%qwen through a real IPython shell against the local OpenAI-compatible server."""

from __future__ import annotations

import base64
import io

import pytest
from fake_server import Reply
from PIL import Image
from support import FAKE_KEY, run_cell

from qwen_nb import InputError, QwenResponse
from qwen_nb._types import DEFAULT_MAX_PIXELS


def decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/"), url[:40]
    payload = url.split(",", 1)[1]
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def user_content(server, index: int = -1) -> list[dict]:
    messages = server.requests[index].json["messages"]
    content = messages[-1]["content"]
    assert messages[-1]["role"] == "user"
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


@pytest.fixture
def images(ip):
    photo = Image.new("RGB", (640, 480), (200, 30, 30))
    # A big chart: must be scaled down into the pixel budget.
    chart = Image.new("RGB", (3000, 2000), (20, 40, 220))
    ip.user_ns.update(photo=photo, chart=chart)
    return photo, chart


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "think_tags",
                                   "think_close_only"])
def test_interpolated_images_go_in_written_order_and_texts_are_exact(ip, server, images, style):
    thinking = "First I look at the red photo.\nThen the blue chart: x_1 < x_2."
    answer = "# Result\n\nThe photo is **red**; the chart is blue. $a^2$"
    server.queue(Reply(style=style, thinking=thinking, answer=answer, chunk_chars=5))

    result = run_cell(ip, "%%qwen\nLook at {photo} and compare it with {chart}, please.")

    assert result.error_in_exec is None, result.error_in_exec
    content = user_content(server)
    assert [part["type"] for part in content] == ["text", "image_url", "text", "image_url",
                                                  "text"]
    assert content[0]["text"] == "Look at "
    assert content[2]["text"] == " and compare it with "
    assert content[4]["text"] == ", please."
    photo = decode_data_url(content[1]["image_url"]["url"])
    chart = decode_data_url(content[3]["image_url"]["url"])
    assert photo.size == (640, 480)
    assert photo.convert("RGB").getpixel((10, 10)) == pytest.approx((200, 30, 30), abs=3)
    assert chart.size[0] * chart.size[1] <= DEFAULT_MAX_PIXELS
    assert chart.size[0] % 32 == 0 and chart.size[1] % 32 == 0
    assert abs(chart.size[0] / chart.size[1] - 1.5) < 0.05
    response = ip.user_ns["_qwen"]
    assert isinstance(response, QwenResponse)
    assert response.thinking == thinking
    assert response.answer == answer
    assert response.complete and response.finish_reason == "stop"
    assert response.usage.reasoning_tokens is not None
    assert [img.sent_size for img in response.images] == [photo.size, chart.size]


def test_request_is_streamed_with_usage_and_the_model_and_options(ip, server, images):
    run_cell(ip, "%%qwen -i photo -m my-model -t 0.3 --top-p 0.9 --max-tokens 500 --seed 7 "
                 "--thinking-budget 256 -s 'Be brief.'\nWhat is this?")
    body = server.requests[-1].json
    assert body["model"] == "my-model"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.3, 0.9, 500, 7)
    assert body["thinking_budget"] == 256
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    content = user_content(server)
    # Images from -i go before the text.
    assert [p["type"] for p in content] == ["image_url", "text"]
    assert content[1]["text"] == "What is this?"
    headers = {k.lower(): v for k, v in server.requests[-1].headers.items()}
    assert headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert ip.user_ns["_qwen"].answer == Reply().answer


def test_one_line_magic_no_stream_and_out_variable(ip, server):
    server.queue(Reply(style="think_tags", answer="Four.", thinking="2+2"))
    result = run_cell(ip, "%qwen --no-stream -o reply What is 2+2?")
    assert result.error_in_exec is None
    body = server.requests[-1].json
    assert body["stream"] is False
    assert body["messages"][-1]["content"] == "What is 2+2?"
    assert ip.user_ns["reply"].answer == "Four."
    assert ip.user_ns["reply"].thinking == "2+2"
    assert ip.user_ns["_qwen"] is ip.user_ns["reply"]


def test_braces_that_are_not_references_stay_exactly_as_written(ip, server):
    ip.user_ns.update(count=3, point=complex(1, 2))
    cell = ('%%qwen\nReturn JSON like {"a": {"b": 1}} for {count} items, {point.real} '
            "and {undefined_name}; {{count}} stays; f'{x!r}' too.")
    run_cell(ip, cell)
    text = server.requests[-1].json["messages"][-1]["content"]
    assert text == ('Return JSON like {"a": {"b": 1}} for 3 items, 1.0 and {undefined_name}; '
                    "{count} stays; f'{x!r}' too.")


def test_double_braces_unescape_only_names_that_exist(ip, server):
    ip.user_ns["title"] = "Report"
    ip.user_ns.pop("heading", None)
    run_cell(ip, "%%qwen\nFill <h1>{{heading}}</h1> and <p>{{title}}</p> for {title}.")
    text = server.requests[-1].json["messages"][-1]["content"]
    assert text == "Fill <h1>{{heading}}</h1> and <p>{title}</p> for Report."


def test_no_interpolate_sends_the_cell_as_written(ip, server, images):
    run_cell(ip, "%%qwen --no-interpolate\nKeep {photo} literally")
    assert server.requests[-1].json["messages"][-1]["content"] == "Keep {photo} literally"


def test_config_traits_are_used(ip, server):
    ip.run_line_magic("config", "QwenMagics.system = 'You are terse.'")
    ip.run_line_magic("config", "QwenMagics.max_tokens = 77")
    try:
        run_cell(ip, "%%qwen\nhi")
        body = server.requests[-1].json
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert body["max_tokens"] == 77
    finally:
        ip.run_line_magic("config", "QwenMagics.system = ''")
        ip.run_line_magic("config", "QwenMagics.max_tokens = 0")


def test_missing_key_fails_the_cell_before_sending_and_says_what_to_do(ip, server,
                                                                        monkeypatch, capsys):
    monkeypatch.delenv("QWEN_NB_API_KEY")
    monkeypatch.delenv("QWEN_NB_BASE_URL")
    result = run_cell(ip, "%%qwen\nhello")
    error = result.error_in_exec
    assert error is not None and type(error).__name__ == "ConfigError"
    assert "AIML_API_KEY" in str(error) and "set_api_key" in str(error)
    assert "offline" in str(error)
    assert server.requests == []
    # IPython shows the short message, not an httpx traceback.
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


def test_http_errors_fail_the_cell_with_the_providers_message(ip, server, capsys):
    server.queue(Reply(status=404, error_body={"error": {"message": "model xyz not found"}}))
    result = run_cell(ip, "%%qwen -m xyz\nhello")
    error = result.error_in_exec
    assert type(error).__name__ == "ModelNotFoundError"
    assert "model xyz not found" in str(error) and "--model" in str(error)
    out = capsys.readouterr()
    assert "ModelNotFoundError" in out.out + out.err
    assert "httpx" not in out.out + out.err


def test_cut_stream_keeps_the_partial_reply_in_qwen(ip, server):
    server.queue(Reply(thinking="abcdefghij" * 3, answer="partial answer here",
                       chunk_chars=5, cut_after=9))
    result = run_cell(ip, "%%qwen\nhello")
    assert type(result.error_in_exec).__name__ == "StreamError"
    partial = ip.user_ns["_qwen"]
    assert partial.complete is False
    assert partial.thinking == "abcdefghij" * 3
    assert partial.answer == "partial an"
    assert "partial" in partial.error


def test_magic_help_comes_from_magic_arguments(ip):
    doc = ip.find_cell_magic("qwen").__doc__
    assert "--image" in doc and "--thinking-budget" in doc and "_qwen" in doc


def test_empty_cell_is_refused(ip, server):
    result = run_cell(ip, "%%qwen -i photo\n   \n")
    assert isinstance(result.error_in_exec, InputError)
    assert server.requests == []
