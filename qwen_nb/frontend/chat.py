"""The chat panel's view: one anywidget model (qwen.js renders the chat), turn messages,
and a static transcript that the saved notebook keeps.

The panel (qwen_nb.panel) holds the conversation and the request path; this module only
shows it. Each turn streams as messages of the same kind as the live `%%qwen` view
(`ReplyFeed`), tagged with the turn's id; the panel's settings, attachments, notice and
status are synced traits; the page's actions (send, stop, upload...) arrive as custom
messages. After each finished turn the static transcript, displays of their own in the
same cell output, is updated: plain HTML, Markdown and text that a notebook opened without
a kernel, nbconvert or GitHub can show. The transcript is TRANSCRIPT_SLOTS displays (one
turn each, the last one every later turn), and only the slots that changed are sent again,
so a turn's IOPub bytes do not grow with the conversation. While the live chat is on
screen, qwen.css hides that copy, so the person sees the chat once; reopened without the
kernel, the transcript's own stylesheet hides the chat's dead widget output and the empty
slots instead (DEAD_WIDGET_CSS, EMPTY_SLOT_CSS).
"""

from __future__ import annotations

import html
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from .._types import Finished, QwenResponse, StreamEvent
from ..render import (
    details_table,
    markdown_html,
    plain_text,
    status_message,
    tabs_html,
    vision_answer_html,
)
from .feed import ReplyFeed
from .live import QuietFlush, Throttle

EMPTY_TRANSCRIPT = "Qwen chat: no turns yet."
# Displays the static transcript is cut into: slot 0 holds the stylesheet and the first
# turn, each next slot one turn, the last one every turn from there on (it alone grows).
TRANSCRIPT_SLOTS = 8
Turns = Sequence[tuple[str, int, Sequence[str], QwenResponse]]  # prompt, images, thumbs
TurnParts = tuple[str, str, str]  # one turn's html, markdown, plain


def data_url(thumb: tuple[bytes, str] | None) -> str:
    import base64

    if thumb is None:
        return ""
    data, fmt = thumb
    return f"data:image/{fmt};base64,{base64.b64encode(data).decode()}"


class ChatView:
    """The panel's widget and its static transcript; knows nothing of HTTP."""

    def __init__(self, *, providers: Sequence[tuple[str, str]], settings: dict[str, Any],
                 on_action: Callable[[dict[str, Any], list[bytes]], None],
                 answer_as: Sequence[tuple[str, str]] = ()) -> None:
        from .widget import new_widget

        self.widget = new_widget("chat", providers=[list(p) for p in providers],
                                 answer_as=[list(a) for a in answer_as],
                                 settings=dict(settings))
        self.widget.widget_id = self.widget.model_id
        self.widget.on_msg(lambda _widget, content, buffers: self._on_message(
            content, [bytes(b) for b in buffers or ()], on_action))
        chat_id = uuid.uuid4().hex[:12]
        self._slot_ids = [f"qwen-nb-chat-{chat_id}-{n}" for n in range(TRANSCRIPT_SLOTS)]
        self._slots_sent: list[dict[str, str]] = []  # what each slot shows; [] until shown
        self._slots_lock = threading.Lock()  # a turn settles in the reply's thread
        # Each turn rendered once: (number, id(response)) -> (response, parts). Rendering
        # again would give new tab ids, so an unchanged slot would look changed.
        self._rendered: dict[tuple[int, int], tuple[QwenResponse, TurnParts]] = {}
        self._finished: dict[int, list[dict[str, Any]]] = {}  # messages that redraw a turn
        self._streams: dict[int, TurnStream] = {}
        self._lock = threading.Lock()

    # -- synced state -------------------------------------------------------------------------

    def set(self, **values: Any) -> None:
        """Set synced traits (notice, notice_key, status, busy, key_status, variables,
        attachments, model_label, prompt, settings)."""
        with self.widget.hold_sync():
            for name, value in values.items():
                setattr(self.widget, name, value)

    def get(self, name: str) -> Any:
        return getattr(self.widget, name)

    # -- turns --------------------------------------------------------------------------------

    def open_turn(self, turn_id: int, prompt: str, thumbs: Sequence[str], image_count: int,
                  *, max_rate: float) -> TurnStream:
        opening = {"turn": turn_id, "open": {"prompt": prompt, "thumbs": list(thumbs),
                                             "images": image_count}}
        stream = TurnStream(self, turn_id, max_rate=max_rate)
        with self._lock:
            self._streams[turn_id] = stream
            self._finished[turn_id] = [opening]
            self.widget.turns = len(self._finished)
        self.widget.send(opening)
        return stream

    def finish_turn(self, turn_id: int, response: QwenResponse, *,
                    warn: bool = True) -> None:
        """The exact final state of a turn (the answer rendered whole when its blocks
        rendered one by one came out differently). `warn=False`: the panel's notice says
        what went wrong, so the turn does not say it a second time."""
        stream = self._streams.pop(turn_id, None)
        final: dict[str, Any] = {"turn": turn_id, "done": True, "status": "",
                                 "details": details_table(response),
                                 "error": (status_message(response) or "") if warn else "",
                                 "label": _final_label(response, stream)}
        shown = None
        if stream is not None:
            stream.stop()
            with stream.lock:
                stream.closed = True
                final = {**stream.feed.take(force=True), **final}
            answer = stream.feed.answer
            shown = "".join(answer.sealed_html) + (
                answer.render(answer.text) if answer.text else "")
        else:
            final["think"] = response.thinking
        # Boxes drawn on the image, a parsed page or checked JSON replace the plain answer.
        whole = vision_answer_html(response) or markdown_html(response.answer)
        if shown != whole:
            final["answer"] = whole
        with self._lock:
            record = self._finished.setdefault(turn_id, [])
            record.append({"turn": turn_id, "answer": whole, "think": response.thinking,
                           **{k: v for k, v in final.items()
                              if k not in ("answer", "think")}})
            # Redrawing a finished turn needs its opening and its final state only.
            self._finished[turn_id] = [record[0], record[-1]]
        self.widget.send(final)

    def drop_turn(self, turn_id: int) -> None:
        with self._lock:
            self._finished.pop(turn_id, None)
            self._streams.pop(turn_id, None)
            self.widget.turns = len(self._finished)
        self.widget.send({"turn": turn_id, "drop": True})

    def put_in_box(self, text: str) -> None:
        """Put a prompt (back) into the page's prompt box."""
        self.widget.prompt = text
        self.widget.send({"box": text})

    def reset(self) -> None:
        with self._lock:
            self._finished.clear()
            self._streams.clear()
            self.widget.turns = 0
        self.widget.send({"reset": True})

    def _on_message(self, content: dict[str, Any], buffers: list[bytes],
                    on_action: Callable[[dict[str, Any], list[bytes]], None]) -> None:
        if content.get("action") == "sync":
            self._sync()
            return
        on_action(content, buffers)

    def _sync(self) -> None:
        """A view that starts empty (the page was reloaded) gets every turn again."""
        with self._lock:
            messages = [m for record in self._finished.values() for m in record]
            for stream in self._streams.values():
                messages.extend(stream.snapshot())
        self.widget.send({"sync": messages})

    # -- display ------------------------------------------------------------------------------

    def show(self, turns: Turns) -> None:
        """The static transcript (displays of its own), then the live chat below it."""
        from IPython.display import display

        with self._slots_lock:
            slots = transcript_slots(self._render(turns))
            for number, (display_id, bundle) in enumerate(
                    zip(self._slot_ids, slots, strict=True)):
                display(bundle, raw=True, display_id=display_id, metadata=slot_metadata(number))
            self._slots_sent = slots
        display(self.widget)

    def update_transcript(self, turns: Turns) -> None:
        """Send again only the slots whose turns changed (a new, redone or dropped turn)."""
        from IPython.display import update_display

        with self._slots_lock:
            if not self._slots_sent:
                return  # never shown: nothing to update, nothing to render
            slots = transcript_slots(self._render(turns))
            for number, (display_id, bundle) in enumerate(
                    zip(self._slot_ids, slots, strict=True)):
                if bundle != self._slots_sent[number]:
                    update_display(bundle, raw=True, display_id=display_id,
                                   metadata=slot_metadata(number))
                    self._slots_sent[number] = bundle

    def _render(self, turns: Turns) -> list[TurnParts]:
        rendered = {}
        for number, turn in enumerate(turns, 1):
            response = turn[3]
            kept = self._rendered.get((number, id(response)))
            if kept is None or kept[0] is not response:
                kept = (response, turn_parts(number, *turn))
            rendered[number, id(response)] = kept
        self._rendered = rendered
        return [parts for _, parts in rendered.values()]

    def close(self) -> None:
        self.widget.close()


class TurnStream:
    """Feeds one turn's messages from the stream, throttled; api.run drives it."""

    def __init__(self, view: ChatView, turn_id: int, *, max_rate: float) -> None:
        self.view = view
        self.turn_id = turn_id
        self.feed = ReplyFeed(markdown_html)
        self.throttle = Throttle(max_rate)
        self.lock = threading.Lock()  # the quiet-flush thread sends too, and Stop settles
        self.closed = False
        self.thinking: list[str] = []  # what arrived (a partial reply; a page reloaded)
        self.answer: list[str] = []
        self._quiet: QuietFlush | None = None
        self.started = time.monotonic()

    def update(self, event: StreamEvent) -> None:
        if isinstance(event, Finished):
            return  # the panel settles the turn with what api.run returns
        with self.lock:
            if self.closed:
                return
            starts = self.feed.add(event)
            if event.type == "thinking":
                self.thinking.append(event.text)  # type: ignore[attr-defined]
            elif event.type == "answer":
                self.answer.append(event.text)  # type: ignore[attr-defined]
            drawn = self.throttle.ready() or starts
            if drawn:
                self._send()
            settled = drawn and not self.feed.held_back
        if self._quiet is None:
            self._quiet = QuietFlush(self._send_quiet, quiet=0.08)
        self._quiet.event(drawn=settled)

    def _send(self, *, force: bool = False) -> None:
        message = self.feed.take(force=force)
        if message:
            self.view.widget.send({"turn": self.turn_id, **message})

    def _send_quiet(self) -> None:
        with self.lock:
            if not self.closed:
                self._send(force=True)

    def fail(self, error: Any) -> None:
        pass  # the panel settles the turn with the error's partial response

    def stop(self) -> None:
        if self._quiet is not None:
            self._quiet.stop()

    def snapshot(self) -> list[dict[str, Any]]:
        answer = self.feed.answer
        return [{"turn": self.turn_id, "seal": list(answer.sealed_html),
                 "tail": answer.render(answer.text) if answer.text else "",
                 "think": "".join(self.thinking), "label": self.feed.label(),
                 "tab": self.feed._sent.get("tab", "answer")}]


def _final_label(response: QwenResponse, stream: TurnStream | None) -> str:
    from .feed import thinking_label

    if not response.thinking:
        return "Thinking"
    seconds = None
    if stream is not None and stream.feed.thinking_started is not None:
        end = stream.feed.thinking_ended or time.monotonic()
        seconds = end - stream.feed.thinking_started
    tokens = response.usage.reasoning_tokens
    exact = tokens is not None
    if tokens is None and stream is not None:
        tokens = stream.feed.thinking_chunks
    return thinking_label(seconds, tokens, exact=exact)


# -- the static transcript ---------------------------------------------------------------------


# Reopened without a kernel or widget state, the chat's own output (right after the
# transcript's last slot) can only say "Loading widget..." or "Error displaying widget: model
# not found": ipywidgets' renderer writes that text into its node, which (unlike Lab's other
# renderers' nodes) has no data-mime-type. The transcript's stylesheet hides that output
# unless it holds the chat. (`:has()` cannot nest, so "holds the chat" is a `:not()`.)
# While the chat is on screen, qwen.css hides the transcript instead.
DEAD_WIDGET_CSS = (".jp-OutputArea-child:has(.qwen-nb-transcript)+.jp-OutputArea-child"
                   ":not(:has(.qwen-nb-chat)):has(>.jp-OutputArea-output:not([data-mime-type]))"
                   "{display:none}")
# A slot without turns yet is an empty <div>: its whole output goes, no gap (Lab, Notebook 7,
# nbconvert HTML); where styles are stripped (GitHub) an empty <div> shows nothing anyway.
EMPTY_SLOT_CSS = ".jp-OutputArea-child:has(.qwen-nb-slot:empty){display:none}"
EMPTY_SLOT = {"text/html": '<div class="qwen-nb-transcript qwen-nb-slot"></div>',
              "text/markdown": "", "text/plain": ""}


def slot_metadata(number: int) -> dict[str, Any]:
    """A slot's output metadata: qwen_nb's mark, so `nbconvert --to markdown` writes its
    Markdown (render.export), not its stylesheet and HTML."""
    return {"qwen_nb": {"transcript_slot": number}}


def transcript_style() -> str:
    """The transcript's one <style>: the static tabs' stylesheet plus the rules that hide
    the dead widget and the empty slots."""
    from ..render import STYLE

    return STYLE.replace("</style>", DEAD_WIDGET_CSS + EMPTY_SLOT_CSS + "</style>", 1)


def transcript_bundle(turns: Turns) -> dict[str, str]:
    """The conversation as text/html, text/markdown and text/plain: each turn's prompt,
    image thumbnails and its static Answer / Thinking / Details tabs, under one stylesheet
    (one bundle, where a panel is shown without its slots: `_repr_mimebundle_`)."""
    if not turns:
        return _empty_transcript()
    parts = [turn_parts(number, *turn) for number, turn in enumerate(turns, 1)]
    return _bundle(parts, style=True, classes="qwen-nb-transcript")


def transcript_slots(parts: Sequence[TurnParts], count: int = TRANSCRIPT_SLOTS
                     ) -> list[dict[str, str]]:
    """The rendered turns cut into `count` bundles, in order: the first turn with the one
    stylesheet, one turn each, then every turn from `count` on in the last; empty slots
    show nothing (EMPTY_SLOT)."""
    if not parts:
        return [_empty_transcript(slot=True)] + [EMPTY_SLOT] * (count - 1)
    groups = [parts[n:n + 1] for n in range(count - 1)] + [parts[count - 1:]]
    return [_bundle(group, style=n == 0, classes="qwen-nb-transcript qwen-nb-slot",
                    rule=n > 0) if group else EMPTY_SLOT for n, group in enumerate(groups)]


def _empty_transcript(*, slot: bool = False) -> dict[str, str]:
    classes = "qwen-nb-transcript qwen-nb-slot" if slot else "qwen-nb-transcript"
    return {"text/html": f'{transcript_style()}<div class="{classes}">'
                         f"<em>{EMPTY_TRANSCRIPT}</em></div>",
            "text/markdown": f"*{EMPTY_TRANSCRIPT}*", "text/plain": EMPTY_TRANSCRIPT}


def _bundle(parts: Sequence[TurnParts], *, style: bool, classes: str,
            rule: bool = False) -> dict[str, str]:
    """Turns' (html, markdown, plain) as one bundle; `rule`: the Markdown starts with the
    rule that separates it from the turn before (in the slot before)."""
    markdown = "\n\n---\n\n".join(md for _, md, _ in parts)
    return {"text/html": f"{transcript_style() if style else ''}<div class=\"{classes}\">"
                         f"{''.join(markup for markup, _, _ in parts)}</div>",
            "text/markdown": f"---\n\n{markdown}" if rule else markdown,
            "text/plain": "\n\n".join(plain for _, _, plain in parts)}


def turn_parts(number: int, prompt: str, image_count: int, thumbs: Sequence[str],
               response: QwenResponse) -> TurnParts:
    """One turn's (html, markdown, plain): its prompt, image thumbnails and static tabs."""
    from ..render import markdown_text

    images = f" · {image_count} image{'s' if image_count != 1 else ''}" if image_count else ""
    # The tabs show the images the response carries; the prompt shows them only when
    # it does not (a turn stopped before its reply), so each image is there once.
    strip = "" if response.images else "".join(
        f'<img class="qwen-nb-thumb" src="{html.escape(src)}" alt="image sent" '
        'style="max-width:64px;max-height:64px;margin:2px">'
        for src in thumbs if src.startswith("data:image/"))
    markup = (f'<div class="qwen-nb-you" style="white-space:pre-wrap;margin:6px 0 2px">'
              f"<b>You</b>{images}<br>{html.escape(prompt.strip())}"
              f"{'<br>' + strip if strip else ''}</div>{tabs_html(response, style=False)}")
    quoted = "\n".join("> " + html.escape(line, quote=False)
                       for line in prompt.strip().splitlines() or [""])
    markdown = f"**You**{images}:\n\n{quoted}\n\n{markdown_text(response)}"
    plain = f"[{number}] You{images}: {prompt.strip()}\n{plain_text(response)}"
    return markup, markdown, plain
