"""Multi-turn conversations, shared by the panel and `%%qwen --chat NAME`.

A conversation is the list of finished exchanges: the user's message (text and images, in
order) and the model's answer. The thinking trace of earlier turns is never sent back
(Qwen's guidance for its reasoning models); earlier images are resent unless asked not to.
Named conversations live in a module-level registry for the life of the kernel.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ._types import (
    Finished,
    Message,
    PreparedImage,
    PreparedVideo,
    QwenResponse,
    StreamEvent,
)

# A rough rule for text: about four characters a token (for estimates, never billing).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Turn:
    """One exchange: what the user sent and what came back."""

    user: Message
    response: QwenResponse

    @property
    def prompt(self) -> str:
        return self.user.text

    @property
    def images(self) -> tuple[PreparedImage, ...]:
        return self.user.images

    @property
    def image_count(self) -> int:
        return len(self.user.images)

    def __iter__(self):  # `for prompt, image_count, response in panel.history`
        return iter((self.prompt, self.image_count, self.response))


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


class Conversation:
    """The turns of one conversation, and the history messages they make."""

    def __init__(self, name: str | None = None, *, resend_images: bool = True) -> None:
        self.name = name
        self.resend_images = resend_images
        self.turns: list[Turn] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.turns)

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return f"Conversation({label}{len(self.turns)} turns)"

    def add(self, user: Message, response: QwenResponse) -> bool:
        """Record an exchange; one without answer text is not part of the conversation
        (nothing to send back), and False says so."""
        if not response.answer.strip():
            return False
        with self._lock:
            self.turns.append(Turn(user, response))
        return True

    def reset(self) -> None:
        with self._lock:
            self.turns.clear()

    def messages(self, resend_images: bool | None = None) -> tuple[Message, ...]:
        """Earlier turns as messages for `api.build_request(history=...)`: each user
        message, then the answer alone (never the thinking)."""
        resend = self.resend_images if resend_images is None else resend_images
        with self._lock:
            turns = list(self.turns)
        history: list[Message] = []
        for turn in turns:
            user = turn.user
            if not resend and (user.images or user.videos):
                user = _without_images(user)
            history.append(user)
            history.append(Message("assistant", (turn.response.answer,)))
        return tuple(history)

    def history_tokens(self, resend_images: bool | None = None) -> int | None:
        """About how many prompt tokens the history costs, or None with no history.

        From the last turn's reported usage where there is one (its prompt already held
        everything before it, plus its own question; add its answer), else estimated from
        characters and the images' visual tokens.
        """
        resend = self.resend_images if resend_images is None else resend_images
        with self._lock:
            turns = list(self.turns)
        if not turns:
            return None
        last = turns[-1]
        usage = last.response.usage
        if usage.prompt_tokens is not None:
            # Its prompt also held its own images; with resend off they are not sent again.
            total = usage.prompt_tokens + _answer_tokens(last.response)
            if not resend:
                total -= _image_tokens(last.images)
            return max(0, total)
        total = 0
        for turn in turns:
            total += estimate_tokens(turn.prompt) + _answer_tokens(turn.response)
            if resend:
                total += _image_tokens(turn.images)
        return total

    def history_note(self, resend_images: bool | None = None) -> str | None:
        """The line the Details tab shows about what the history cost, if there is one."""
        tokens = self.history_tokens(resend_images)
        if tokens is None:
            return None
        resend = self.resend_images if resend_images is None else resend_images
        turns = len(self.turns)
        images = "" if resend else ", earlier images not resent"
        label = f"conversation {self.name!r}: " if self.name else ""
        return (
            f"{label}history: ~{tokens:,} prompt tokens "
            f"({turns} earlier turn{'s' if turns != 1 else ''}{images})"
        )

    def to_markdown(self, *, thinking: bool = False) -> str:
        return transcript_markdown(self.turns, thinking=thinking)

    def summary(self) -> str:
        """One line a turn: the question, the images, the answer, the tokens."""
        if not self.turns:
            return f"{self.name or 'conversation'}: no turns yet."
        lines = [f"{self.name or 'conversation'}: {len(self.turns)} turns"]
        for index, turn in enumerate(self.turns, 1):
            usage = turn.response.usage
            images = f" [{turn.image_count} img]" if turn.image_count else ""
            tokens = (
                f" ({usage.prompt_tokens:,} prompt tokens)"
                if usage.prompt_tokens is not None
                else ""
            )
            lines.append(
                f"{index:>3}. {_one_line(turn.prompt, 60)!r}{images} -> "
                f"{_one_line(turn.response.answer, 60)!r}{tokens}"
            )
        note = self.history_note()
        if note:
            lines.append(f"next turn: {note}")
        return "\n".join(lines)


def _without_images(message: Message) -> Message:
    """The message without its images and videos, saying how many were left out."""
    parts = tuple(p for p in message.parts if not isinstance(p, (PreparedImage, PreparedVideo)))
    left_out = [(len(message.images), "image"), (len(message.videos), "video")]
    note = "[" + " and ".join(f"{n} {kind}{'s' if n != 1 else ''}" for n, kind in left_out
                              if n) + " not resent]"
    return Message(message.role, (*parts, f"\n{note}") if parts else (note,))


def _answer_tokens(response: QwenResponse) -> int:
    usage = response.usage
    if usage.completion_tokens is not None and usage.reasoning_tokens is not None:
        return max(0, usage.completion_tokens - usage.reasoning_tokens)
    return estimate_tokens(response.answer)


def _image_tokens(images: Sequence[PreparedImage]) -> int:
    return sum(image.visual_tokens or 0 for image in images)


def with_note(event: StreamEvent, note: str | None) -> StreamEvent:
    """`event` with `note` added to the final response (other events unchanged)."""
    if note and isinstance(event, Finished):
        return Finished(add_note(event.response, note))
    return event


def add_note(response: QwenResponse, note: str | None) -> QwenResponse:
    if not note or note in response.notes:
        return response
    return response.replace(notes=(*response.notes, note))


class NotingView:
    """Wraps a view so the final response it shows carries a note (the history cost)."""

    def __init__(self, view: object, note: str | None) -> None:
        self.view = view
        self.note = note

    def update(self, event: StreamEvent) -> None:
        self.view.update(with_note(event, self.note))  # type: ignore[attr-defined]

    def fail(self, error: object) -> None:
        response = getattr(error, "response", None)
        if response is not None:
            error.response = add_note(response, self.note)  # type: ignore[attr-defined]
        self.view.fail(error)  # type: ignore[attr-defined]


def transcript_markdown(turns: Sequence[Turn], *, thinking: bool = False) -> str:
    """Turns as Markdown for a report: each question, then the answer (thinking optional)."""
    blocks: list[str] = []
    for index, turn in enumerate(turns, 1):
        response = turn.response
        images = (
            f" ({turn.image_count} image{'s' if turn.image_count != 1 else ''})"
            if turn.image_count
            else ""
        )
        lines = [
            f"**You**{images}:",
            "",
            _quote(turn.prompt.strip()),
            "",
            f"**{response.model or 'Qwen'}**:",
            "",
            response.answer.strip() or "*(no answer)*",
        ]
        if thinking and response.thinking.strip():
            lines += [
                "",
                "<details><summary>Thinking</summary>",
                "",
                "```text",
                response.thinking.strip().replace("```", "``\u200b`"),
                "```",
                "",
                "</details>",
            ]
        if not response.complete:
            lines += ["", f"> *Incomplete reply: {response.error or 'stopped'}*"]
        blocks.append(f"### Turn {index}\n\n" + "\n".join(lines))
    return "\n\n---\n\n".join(blocks) + ("\n" if blocks else "")


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


# --- the registry of named conversations (for %%qwen --chat NAME) --------------------------

_registry: dict[str, Conversation] = {}
_registry_lock = threading.Lock()


def get(name: str) -> Conversation:
    """The conversation called `name`, created empty on first use."""
    with _registry_lock:
        conversation = _registry.get(name)
        if conversation is None:
            conversation = _registry[name] = Conversation(name)
        return conversation


def names() -> list[str]:
    with _registry_lock:
        return sorted(_registry)


def reset(name: str | None = None) -> list[str]:
    """Forget one conversation (or all of them); returns the names forgotten."""
    with _registry_lock:
        if name is None:
            forgotten = sorted(_registry)
            _registry.clear()
            return forgotten
        return [name] if _registry.pop(name, None) is not None else []
