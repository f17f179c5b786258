"""Conversations: the pure model, and `%%qwen --chat NAME` / `%qwen_history` / `%qwen_reset`
through a real IPython shell against the local server."""

from __future__ import annotations

import json

import pytest
from fake_server import Reply
from support import run_cell

from qwen_nb import conversation
from qwen_nb._types import Message, PreparedImage, QwenResponse, Usage
from qwen_nb.conversation import Conversation

IMAGE = PreparedImage(url="data:image/png;base64,AAAA", source="pic", sent_size=(64, 32),
                      format="png")


def response(answer: str, thinking: str = "secret thoughts", **usage: int) -> QwenResponse:
    return QwenResponse(answer=answer, thinking=thinking, usage=Usage(**usage))


@pytest.fixture(autouse=True)
def _fresh_registry():
    conversation.reset()
    yield
    conversation.reset()


# -- the model --------------------------------------------------------------------------------


def test_messages_alternate_and_never_carry_thinking():
    chat = Conversation("c")
    chat.add(Message("user", ("Look: ", IMAGE, " what?")), response("A cat."))
    chat.add(Message("user", ("And?",)), response("Nothing else."))
    messages = chat.messages()
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0].parts == ("Look: ", IMAGE, " what?")
    assert messages[1] == Message("assistant", ("A cat.",))
    assert all("secret" not in m.text for m in messages)


def test_resend_images_off_keeps_text_and_says_so():
    chat = Conversation("c", resend_images=False)
    chat.add(Message("user", (IMAGE, "What is it?")), response("A square."))
    (user, _assistant) = chat.messages()
    assert user.images == ()
    assert user.text.startswith("What is it?") and "1 image not resent" in user.text
    assert chat.messages(resend_images=True)[0].images == (IMAGE,)


def test_a_turn_without_answer_is_not_part_of_the_conversation():
    chat = Conversation()
    assert chat.add(Message("user", ("Hi",)), response("", thinking="only thinking")) is False
    assert chat.messages() == () and len(chat) == 0
    assert chat.history_tokens() is None and chat.history_note() is None


def test_history_tokens_from_usage_and_estimate():
    chat = Conversation("c")
    chat.add(Message("user", (IMAGE, "Describe")),
             response("x" * 40, prompt_tokens=300, completion_tokens=90, reasoning_tokens=80))
    assert chat.history_tokens() == 300 + 10  # its prompt plus its answer (not the thinking)
    assert chat.history_tokens(resend_images=False) == 310 - IMAGE.visual_tokens
    assert "history: ~310 prompt tokens (1 earlier turn)" in chat.history_note()
    estimated = Conversation()
    estimated.add(Message("user", (IMAGE, "abcdefgh")), response("abcd"))
    assert estimated.history_tokens() == 2 + 1 + IMAGE.visual_tokens


def test_registry_and_markdown():
    first = conversation.get("a")
    assert conversation.get("a") is first
    first.add(Message("user", ("Q?",)), response("**A.**"))
    conversation.get("b")
    assert conversation.names() == ["a", "b"]
    assert "> Q?" in first.to_markdown() and "**A.**" in first.to_markdown()
    assert "secret" not in first.to_markdown() and "secret" in first.to_markdown(thinking=True)
    assert conversation.reset("a") == ["a"] and conversation.names() == ["b"]
    assert conversation.reset("missing") == []
    assert conversation.reset() == ["b"]


# -- the magic --------------------------------------------------------------------------------


def test_chat_cells_carry_earlier_turns(ip, server):
    from PIL import Image

    ip.user_ns["photo"] = Image.new("RGB", (64, 64), "red")
    server.queue(Reply(thinking="TRACE-ONE", answer="A red square."),
                 Reply(answer="64 pixels."))
    result = run_cell(ip, "%%qwen --chat shapes -i photo\nWhat is this?")
    assert result.error_in_exec is None
    first = server.requests[-1].json["messages"]
    assert len(first) == 1
    result = run_cell(ip, "%%qwen --chat shapes\nHow big is it?")
    assert result.error_in_exec is None
    body = server.requests[-1].json
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0] == first[0]
    assert [p["type"] for p in messages[0]["content"]] == ["image_url", "text"]
    assert messages[1] == {"role": "assistant", "content": "A red square."}
    assert messages[2] == {"role": "user", "content": "How big is it?"}
    assert "TRACE-ONE" not in json.dumps(body)
    assert any("history: ~" in note for note in ip.user_ns["_qwen"].notes)
    assert len(conversation.get("shapes")) == 2


def test_cells_without_chat_stay_single_turn(ip, server):
    server.queue(Reply(answer="One."), Reply(answer="Two."), Reply(answer="Three."))
    run_cell(ip, "%%qwen --chat\nFirst")
    run_cell(ip, "%%qwen\nSecond")
    assert server.requests[-1].json["messages"] == [{"role": "user", "content": "Second"}]
    run_cell(ip, "%%qwen --chat\nThird")  # --chat alone continues "default"
    assert len(server.requests[-1].json["messages"]) == 3


def test_failed_chat_cell_is_not_recorded(ip, server):
    server.queue(Reply(status=401, error_body={"error": {"message": "no"}}), Reply(answer="ok"))
    result = run_cell(ip, "%%qwen --chat c\nFirst")
    assert result.error_in_exec is not None
    assert len(conversation.get("c")) == 0
    run_cell(ip, "%%qwen --chat c\nFirst again")
    assert len(server.requests[-1].json["messages"]) == 1


def test_history_and_reset_magics(ip, server, capsys):
    server.queue(Reply(answer="Hello there."), Reply(answer="Fresh start."))
    run_cell(ip, "%%qwen --chat greet\nSay hello")
    capsys.readouterr()
    run_cell(ip, "%qwen_history greet")
    out = capsys.readouterr().out
    assert "greet: 1 turns" in out and "Say hello" in out and "Hello there." in out
    run_cell(ip, "%qwen_history")
    assert "greet: 1 turns" in capsys.readouterr().out
    run_cell(ip, "%qwen_reset greet")
    assert "Forgot 1 conversation: greet." in capsys.readouterr().out
    run_cell(ip, "%%qwen --chat greet\nAgain")
    assert len(server.requests[-1].json["messages"]) == 1
    run_cell(ip, "%qwen_reset nope")
    assert "No conversation named 'nope'" in capsys.readouterr().out


def test_qwen_panel_magic_uses_magic_settings(ip, server):
    run_cell(ip, "%config QwenMagics.system = 'Answer in French.'")
    try:
        result = run_cell(ip, "_panel = %qwen_panel")
        assert result.error_in_exec is None
        panel = ip.user_ns.pop("_panel")
        server.queue(Reply(answer="Bonjour."))
        panel.send("Hello")
        assert panel.wait(30)
        assert server.requests[-1].json["messages"][0] == {"role": "system",
                                                           "content": "Answer in French."}
        panel.close()
    finally:
        run_cell(ip, "%config QwenMagics.system = ''")


def test_qwen_panel_records_and_replays_with_the_magics_cache_settings(ip, server, tmp_path):
    run_cell(ip, "%config QwenMagics.cache_mode = 'auto'")
    run_cell(ip, f"%config QwenMagics.cache_dir = {str(tmp_path)!r}")
    try:
        answers = []
        for _ in range(2):
            result = run_cell(ip, "_panel = %qwen_panel")
            assert result.error_in_exec is None
            panel = ip.user_ns.pop("_panel")
            server.queue(Reply(answer="Recorded once."))
            panel.send("Same question")
            assert panel.wait(30)
            answers.append(panel.last_response)
            panel.close()
        assert len(server.requests) == 1  # the second panel replayed the recording
        assert answers[0].answer == answers[1].answer == "Recorded once."
        assert answers[1].replayed_from is not None
        assert list(tmp_path.glob("*.json"))
    finally:
        run_cell(ip, "%config QwenMagics.cache_mode = ''")
        run_cell(ip, "%config QwenMagics.cache_dir = ''")
