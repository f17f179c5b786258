"""An ipywidgets chat panel: prompt, images, live Answer / Thinking / Details, Stop, turns.

The reply runs in a daemon thread (api.open_stream + api.run, the path the magic uses), so
the kernel stays free: the Stop button works while a reply streams and other cells run.
Each turn is shown with the magic's own widgets (display.LiveTabs). The panel holds no
HTTP code; Stop closes the event stream, which wakes a blocked read.

The API key typed into the settings is moved into a Python-side Secret and the password
field is emptied at once, so the key never sits in widget state a notebook could save.
"""

from __future__ import annotations

import base64
import html
import io
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import api
from ._config import PROVIDERS, Secret, Settings, resolve_settings
from ._errors import InputError, Interrupted, QwenError
from ._types import (
    DEFAULT_MAX_PIXELS,
    AnswerDelta,
    Message,
    PreparedImage,
    PreparedVideo,
    QwenResponse,
    StreamEvent,
    ThinkingDelta,
    UsageUpdate,
)
from .conversation import Conversation, Turn, add_note, estimate_tokens
from .frontend.live import LiveTabs, QuietFlush, Throttle, close_widgets

THUMBNAIL_SIZE = 96
# How long Stop waits for the reply thread to notice before it marks the turn stopped
# itself (a server that has not sent its first byte yet holds the connect call).
STOP_GRACE_SECONDS = 1.0

# Ctrl+Enter / Shift+Enter (Cmd+Enter on a Mac) in the prompt clicks this panel's Send
# button. ipywidgets has no key events for a Textarea, so a few lines of JavaScript do it;
# where JavaScript outputs do not run, the Send button still works. The short delay lets
# the last keystrokes reach the kernel before the click does.
KEYS_JS = """
(function () {
  if (window.__qwenNbKeys) { return; }
  window.__qwenNbKeys = true;
  window.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey || event.shiftKey)) { return; }
    var target = event.target;
    if (!target || target.tagName !== "TEXTAREA" || !target.closest(".qwen-nb-prompt")) { return; }
    var panel = target.closest(".qwen-nb-chat");
    var send = panel && panel.querySelector("button.qwen-nb-send");
    if (!send || send.disabled) { return; }
    event.preventDefault();
    event.stopPropagation();
    target.dispatchEvent(new Event("change", {bubbles: true}));
    setTimeout(function () { send.click(); }, 150);
  }, true);
})();
"""


@dataclass
class Attachment:
    """Images attached to the next message (one upload or one variable may give several)."""

    label: str
    images: list[PreparedImage | PreparedVideo]
    thumbnails: list[tuple[bytes, str] | None] = field(default_factory=list)


@dataclass
class _Reply:
    """One reply on its way: its stream, its widgets, and whether it has been settled."""

    user: Message
    attachments: list[Attachment]
    prompt_text: str
    tabs: LiveTabs
    stream: Any = None
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.monotonic)
    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    completion_tokens: int | None = None
    note: str | None = None
    stop_requested: bool = False
    settled: bool = False
    # Held while drawing into `tabs` and while settling: a draw that began before Stop
    # settled the turn (from another thread) must not paint over the final state.
    draw_lock: threading.Lock = field(default_factory=threading.Lock)


class Panel:
    """A chat panel for Qwen3-VL. Show it as the last expression of a cell (or `%qwen_panel`).

    `history` is the list of turns (prompt, image_count, response), `last_response` the
    latest result, `busy` is True exactly while a reply is on its way; `send()`, `stop()`,
    `new_chat()`, `wait()`, `to_markdown()` and `close()` do what the buttons do and more.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        provider: str | None = None,
        base_url: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        thinking_budget: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        resend_images: bool = True,
        inline_urls: bool = False,
        namespace: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        max_rate: float = 12.0,
        cache: str | None = None,
        cache_dir: str | None = None,
    ) -> None:
        import ipywidgets as widgets

        self._widgets = widgets
        # Record/replay as for the magic: `cache` mode, else QWEN_NB_CACHE_MODE, else off.
        self._cache = {"cache": cache, "cache_dir": cache_dir}
        self.conversation = Conversation(resend_images=resend_images)
        self.history: list[Turn] = []
        self.max_pixels = max_pixels
        self.inline_urls = inline_urls
        self.max_rate = max_rate
        self._namespace = namespace
        self._config = dict(config or {})
        self._key: Secret | None = None
        self._attachments: list[Attachment] = []
        self._lock = threading.Lock()
        self._reply: _Reply | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._turn_widgets: list[Any] = []

        layout_full = widgets.Layout(width="100%")
        self.transcript = widgets.VBox([], layout=widgets.Layout(width="100%"))
        self.notice = widgets.HTML("")
        self.prompt = widgets.Textarea(
            placeholder="Ask about the images... (Ctrl+Enter or Shift+Enter sends)",
            rows=3,
            continuous_update=True,
            layout=layout_full,
        )
        self.prompt.add_class("qwen-nb-prompt")
        self.upload = widgets.FileUpload(
            accept="image/*,video/*,.mkv,.webm,.avi",
            multiple=True,
            description="Upload images or videos",
        )
        self.picker = widgets.Dropdown(
            options=[], description="Variable:", layout=widgets.Layout(width="260px")
        )
        self.add_button = widgets.Button(
            description="Add",
            tooltip="Attach the selected image variable",
            layout=widgets.Layout(width="60px"),
        )
        self.refresh_button = widgets.Button(
            icon="refresh",
            tooltip="Look for image variables again",
            layout=widgets.Layout(width="40px"),
        )
        self.thumbnails = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap"))
        self.send_button = widgets.Button(
            description="Send",
            button_style="primary",
            icon="paper-plane",
            tooltip="Send (Ctrl+Enter)",
        )
        self.send_button.add_class("qwen-nb-send")
        self.stop_button = widgets.Button(
            description="Stop", button_style="warning", icon="stop", disabled=True
        )
        self.new_button = widgets.Button(
            description="New chat", icon="plus", tooltip="Forget this conversation and start over"
        )
        self.status = widgets.HTML("")

        # Settings: empty means "the provider's default" (or QWEN_NB_* / %config values).
        text = dict(style={"description_width": "110px"}, layout=widgets.Layout(width="420px"))
        self.model_field = widgets.Text(
            value=model or "", description="Model", placeholder="provider default", **text
        )
        self.provider_field = widgets.Dropdown(
            options=[("default", "")]
            + [(f"{p.label} ({name})", name) for name, p in PROVIDERS.items()],
            value=provider or "",
            description="Provider",
            **text,
        )
        self.base_url_field = widgets.Text(
            value=base_url or "", description="Base URL", placeholder="provider default", **text
        )
        self.temperature_field = widgets.Text(
            value=_number_text(temperature),
            description="Temperature",
            placeholder="provider default (0 to 2)",
            **text,
        )
        self.max_tokens_field = widgets.Text(
            value=_number_text(max_tokens),
            description="Max tokens",
            placeholder="provider default",
            **text,
        )
        self.thinking_budget_field = widgets.Text(
            value=_number_text(thinking_budget),
            description="Thinking budget",
            placeholder="none",
            **text,
        )
        self.ground_field = widgets.Text(
            value="", description="Locate", placeholder='e.g. cat, red car (boxes drawn)', **text
        )
        self.answer_as_field = widgets.Dropdown(
            options=[("text", ""), ("JSON", "json"), ("document: HTML", "html"),
                     ("document: Markdown", "markdown")],
            value="", description="Answer as", **text,
        )
        self.system_field = widgets.Textarea(
            value=system or "", description="System prompt", placeholder="none", rows=2, **text
        )
        self.resend_images_field = widgets.Checkbox(
            value=resend_images, description="Resend earlier images with each turn", indent=False
        )
        self.api_key_field = widgets.Password(
            value="",
            description="API key",
            continuous_update=False,
            placeholder="paste, then Enter (kept in memory only)",
            **text,
        )
        self.key_status = widgets.HTML("")
        self.forget_key_button = widgets.Button(
            description="Forget key", layout=widgets.Layout(width="100px")
        )
        self.settings = widgets.Accordion(
            children=[
                widgets.VBox(
                    [
                        self.model_field,
                        self.provider_field,
                        self.base_url_field,
                        self.temperature_field,
                        self.max_tokens_field,
                        self.thinking_budget_field,
                        self.ground_field,
                        self.answer_as_field,
                        self.system_field,
                        self.resend_images_field,
                        widgets.HBox([self.api_key_field, self.forget_key_button]),
                        self.key_status,
                    ]
                )
            ],
            titles=("Settings",),
            selected_index=None,
        )
        self._keys = widgets.Output(layout=widgets.Layout(height="0px", overflow="hidden"))
        self._keys.outputs = (
            {
                "output_type": "display_data",
                "data": {"application/javascript": KEYS_JS, "text/plain": ""},
                "metadata": {},
            },
        )

        self.widget = widgets.VBox(
            [
                self.transcript,
                self.notice,
                self.prompt,
                widgets.HBox([self.upload, self.picker, self.add_button, self.refresh_button]),
                self.thumbnails,
                widgets.HBox([self.send_button, self.stop_button, self.new_button]),
                self.status,
                self.settings,
                self._keys,
            ],
            layout=widgets.Layout(width="100%", border="1px solid #d0d7de", padding="6px"),
        )
        self.widget.add_class("qwen-nb-chat")

        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.new_button.on_click(lambda _: self.new_chat())
        self.add_button.on_click(lambda _: self.add_variable())
        self.refresh_button.on_click(lambda _: self.refresh_variables())
        self.forget_key_button.on_click(lambda _: self.forget_key())
        self.upload.observe(self._on_upload, names="value")
        self.api_key_field.observe(self._on_key, names="value")
        self.refresh_variables()

    # -- display ----------------------------------------------------------------------------

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        if self._closed:
            return {"text/plain": repr(self)}
        data = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        data["text/plain"] = repr(self)
        return data

    def __repr__(self) -> str:
        state = "closed" if self._closed else "streaming" if self.busy else "idle"
        return f"<qwen_nb.Panel: {len(self.history)} turns, {state}>"

    # -- state ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a reply is on its way."""
        return not self._idle.is_set()

    @property
    def last_response(self) -> QwenResponse | None:
        return self.history[-1].response if self.history else None

    @property
    def attachments(self) -> list[Attachment]:
        return list(self._attachments)

    @property
    def images(self) -> list[PreparedImage | PreparedVideo]:
        """The images (and videos) that the next Send will attach, in order."""
        return [image for item in self._attachments for image in item.images]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current reply (if any) has ended; False on timeout."""
        return self._idle.wait(timeout)

    def to_markdown(self, *, thinking: bool = False) -> str:
        """The conversation as Markdown for a report (thinking traces optional)."""
        from .conversation import transcript_markdown

        return transcript_markdown(self.history, thinking=thinking)

    # -- attachments ------------------------------------------------------------------------

    def _prepare(self, value: Any, label: str) -> list[PreparedImage]:
        from .media.images import prepare_images

        return prepare_images(
            value, label=label, max_pixels=self.max_pixels, inline_urls=self.inline_urls
        )

    def _prepare_upload(self, data: bytes, name: str) -> list[Any]:
        """An uploaded file: a video (sampled now, for the provider set now) or images."""
        from .media.video import sniff_video

        if sniff_video(data[:16]) is None:
            return self._prepare(data, name)
        videos = api.prepare_videos([data], settings=self.resolve_settings(), labels=[name])
        return [*videos]

    def attach(self, value: Any, label: str | None = None) -> list[PreparedImage]:
        """Attach an image-like value (PIL image, array, figure, bytes, path...) to the next
        message; raises ImageError if it cannot be used."""
        label = label or f"image {len(self._attachments) + 1}"
        images = self._prepare(value, label)
        self._add_attachment(Attachment(label, images, [thumbnail(i) for i in images]))
        return images

    def _add_attachment(self, attachment: Attachment) -> None:
        self._attachments.append(attachment)
        self._render_thumbnails()

    def remove_attachment(self, index: int) -> None:
        del self._attachments[index]
        self._render_thumbnails()

    def clear_attachments(self) -> None:
        self._attachments.clear()
        self._render_thumbnails()

    def _render_thumbnails(self) -> None:
        widgets = self._widgets
        old = self.thumbnails.children
        boxes = []
        for index, attachment in enumerate(self._attachments):
            remove = widgets.Button(
                icon="times",
                tooltip=f"Remove {attachment.label}",
                layout=widgets.Layout(width="32px"),
            )
            remove.on_click(lambda _, i=index: self.remove_attachment(i))
            caption = widgets.HTML(f"<small>{html.escape(_clip(attachment.label, 24))}</small>")
            boxes.append(
                widgets.VBox(
                    [
                        widgets.HBox(_thumbnail_widgets(widgets, attachment)),
                        widgets.HBox([caption, remove]),
                    ]
                )
            )
        self.thumbnails.children = boxes
        _close_tree(old)

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        problems: list[str] = []
        for item in files:
            name = str(item.get("name") or "upload")
            try:
                images = self._prepare_upload(bytes(item["content"]), name)
            except Exception as error:  # whatever the file holds, the panel stays usable
                message = _image_problem(error)
                problems.append(message if name in message else f"{name}: {message}")
                continue
            self._add_attachment(Attachment(name, images, [
                thumbnail(i.frames[0] if isinstance(i, PreparedVideo) else i) for i in images]))
        # Forget the bytes: they are attached, and widget state should not carry them.
        self.upload.value = ()
        if problems:
            self._show_notice(
                "Not attached ("
                + str(len(problems))
                + "):<br>"
                + "<br>".join(html.escape(p) for p in problems)
            )
        else:
            self._show_notice("")

    def image_variables(self) -> list[str]:
        """Names in the notebook's namespace that hold something image-like."""
        from .media.images import is_image_like

        namespace = self._user_namespace()
        names = []
        for name, value in list(namespace.items()):
            if name.startswith("_") or name in ("In", "Out"):
                continue
            try:
                if is_image_like(value):
                    names.append(name)
            except Exception:  # an odd object in the namespace must not break the panel
                continue
        return sorted(names)

    def refresh_variables(self) -> None:
        names = self.image_variables()
        current = self.picker.value
        self.picker.options = names
        self.picker.value = current if current in names else (names[0] if names else None)

    def add_variable(self, name: str | None = None) -> None:
        """Attach the variable chosen in the picker (or `name`)."""
        name = name or self.picker.value
        if not name:
            self._show_notice(
                "No image variable chosen. Define one (a PIL image, an array, "
                "a figure...) and press the refresh button."
            )
            return
        namespace = self._user_namespace()
        if name not in namespace:
            self._show_notice(f"{html.escape(name)} is no longer defined.")
            self.refresh_variables()
            return
        try:
            self.attach(namespace[name], label=name)
        except Exception as error:
            message = _image_problem(error)
            self._show_notice(html.escape(message if name in message else f"{name}: {message}"))
            return
        self._show_notice("")

    def _user_namespace(self) -> Mapping[str, Any]:
        if self._namespace is not None:
            return self._namespace
        try:
            from IPython import get_ipython
        except ImportError:
            return {}
        shell = get_ipython()
        return shell.user_ns if shell is not None else {}

    # -- settings ---------------------------------------------------------------------------

    def _on_key(self, change: dict[str, Any]) -> None:
        value = (change["new"] or "").strip()
        if not value:
            return
        self._key = Secret(value)
        # Empty the field at once: widget state may be saved with the notebook.
        self.api_key_field.value = ""
        self.key_status.value = "key set (in memory)"

    def set_api_key(self, key: str) -> None:
        """Use `key` for this panel only (kept in memory; same as the password field)."""
        self._on_key({"new": key})

    def forget_key(self) -> None:
        self._key = None
        self.key_status.value = "no key set here (using the environment / set_api_key)"

    def resolve_settings(self) -> Settings:
        """Settings for the next reply: this panel's fields, then QWEN_NB_*, then config."""
        return resolve_settings(
            provider=self.provider_field.value or None,
            base_url=self.base_url_field.value.strip() or None,
            model=self.model_field.value.strip() or None,
            api_key=self._key.reveal() if self._key is not None else None,
            config=self._config,
        )

    def _options(self) -> Any:
        return api.make_options(
            temperature=_parse_number(self.temperature_field.value, float, "Temperature"),
            max_tokens=_parse_number(self.max_tokens_field.value, int, "Max tokens"),
            thinking_budget=_parse_number(self.thinking_budget_field.value, int, "Thinking budget"),
        )

    def _vision_keywords(self) -> dict[str, Any]:
        """Settings' Locate and Answer as, as the keywords ask(ground=, json=, doc=) takes."""
        ground = self.ground_field.value.strip() or None
        answer_as = self.answer_as_field.value
        return {"ground": ground, "json": answer_as == "json",
                "doc": answer_as if answer_as in ("html", "markdown") else None}

    # -- sending ----------------------------------------------------------------------------

    def send(self, prompt: str | None = None) -> bool:
        """Send the prompt and attached images; returns at once (False if nothing was sent,
        with the reason shown in the panel)."""
        if self._closed:
            raise InputError("This panel is closed; create a new one.")
        if prompt is not None:
            self.prompt.value = prompt
        with self._lock:
            if self.busy:
                self._show_notice("A reply is on its way: wait for it or press Stop.")
                return False
            text = self.prompt.value
            attachments = list(self._attachments)
            resend = self.resend_images_field.value
            try:
                settings = self.resolve_settings()
                settings.require_key()
                options = self._options()
                images = [image for item in attachments for image in item.images]
                plan = api.vision_plan(self._vision_keywords(), len(images))
                parts, options = api.with_vision([*images, text], options, plan)
                request = api.build_request(
                    parts,
                    model=settings.model,
                    system=self.system_field.value or None,
                    history=self.conversation.messages(resend_images=resend),
                    options=options,
                    reading=plan.reading,
                )
                stream = api.open_stream(request, settings, **self._cache)
            except QwenError as error:
                self._show_error(error)
                return False
            self._idle.clear()
        reply = _Reply(
            user=request.messages[-1],
            attachments=attachments,
            prompt_text=text,
            tabs=LiveTabs(),
            stream=stream,
            note=self.conversation.history_note(resend_images=resend),
        )
        self._reply = reply
        self._show_notice("")
        self._append_turn(reply)
        self.prompt.value = ""
        self._attachments = []
        self._render_thumbnails()
        self._set_buttons(busy=True)
        self.status.value = "<em>waiting for the model...</em>"
        reply.thread = threading.Thread(
            target=self._consume, args=(reply, request, settings), name="qwen-nb-chat", daemon=True
        )
        reply.thread.start()
        return True

    def _append_turn(self, reply: _Reply) -> None:
        widgets = self._widgets
        count = len(reply.user.images)
        label = f" &middot; {count} image{'s' if count != 1 else ''}" if count else ""
        question = widgets.HTML(
            f"<div style='white-space:pre-wrap;background:#f6f8fa;border-radius:6px;"
            f"padding:4px 8px;margin:4px 0'><b>You</b>{label}<br>"
            f"{html.escape(reply.prompt_text.strip())}</div>"
        )
        thumbs = [w for a in reply.attachments for w in _thumbnail_widgets(widgets, a, 48)]
        box = widgets.VBox([question, widgets.HBox(thumbs), reply.tabs.box])
        self._turn_widgets.append(box)
        self.transcript.children = (*self.transcript.children, box)

    def _consume(self, reply: _Reply, request: Any, settings: Settings) -> None:
        """The reply thread: stream into the turn's tabs, then settle the turn."""
        view = _TurnView(self, reply)
        try:
            try:
                response = api.run(request, settings, view, stream=reply.stream)
            finally:
                view.stop()
        except Interrupted as error:
            self._settle(reply, error.response or view.partial(error.message), stopped=True)
        except QwenError as error:
            if reply.stop_requested:
                self._settle(reply, error.response or view.partial(error.message), stopped=True)
            else:
                self._settle(reply, error.response or view.partial(error.message), error=error)
        except Exception as error:  # a bug must still leave a usable panel
            wrapped = QwenError(f"Unexpected error ({type(error).__name__}: {error})")
            self._settle(reply, view.partial(wrapped.message), error=wrapped)
        else:
            self._settle(reply, response)

    def _settle(
        self,
        reply: _Reply,
        response: QwenResponse,
        *,
        stopped: bool = False,
        error: QwenError | None = None,
    ) -> None:
        """Show the final state of a turn and record it; the first caller wins."""
        with self._lock:
            if reply.settled:
                return
            reply.settled = True
        try:
            with reply.draw_lock:  # let a draw in progress finish first
                pass
            response = add_note(response, reply.note)
            if stopped and response.complete:
                response = response.replace(complete=False, error="stopped")
            elif stopped:
                response = response.replace(error="stopped by the user")
            self.history.append(Turn(reply.user, response))
            kept = error is None and self.conversation.add(reply.user, response)
            reply.tabs.show_final(response)
            if error is not None:
                self._show_error(error)
            if not kept:
                self._restore(reply)
            self.status.value = _final_status(response, stopped=stopped, failed=error is not None)
        finally:
            if self._reply is reply:
                self._reply = None
            self._set_buttons(busy=False)
            self._idle.set()

    def _restore(self, reply: _Reply) -> None:
        """Put back the prompt and images of a turn that is not part of the conversation,
        so the person can fix the cause and resend (unless they already typed anew)."""
        if not self.prompt.value.strip():
            self.prompt.value = reply.prompt_text
        if not self._attachments:
            self._attachments = list(reply.attachments)
            self._render_thumbnails()

    def stop(self) -> None:
        """Stop the reply now; the partial text stays, marked stopped."""
        reply = self._reply
        if reply is None or reply.settled:
            return
        reply.stop_requested = True
        self.status.value = "<em>stopping...</em>"
        if reply.stream is not None:
            reply.stream.close()
        thread = reply.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_GRACE_SECONDS)
        if not reply.settled:
            # Still waiting on a server that has not answered: settle without it; the
            # thread ends on its own when the connect call returns.
            partial = getattr(reply.stream, "response", None)
            if not isinstance(partial, QwenResponse):
                partial = _TurnView(self, reply).partial("stopped by the user")
            self._settle(reply, partial.replace(complete=False), stopped=True)

    def new_chat(self) -> None:
        """Stop any reply, forget the conversation and clear the transcript."""
        self.stop()
        self.conversation.reset()
        self.history.clear()
        old = self.transcript.children
        self.transcript.children = ()
        _close_tree(old)
        self._turn_widgets.clear()
        self.status.value = ""
        self._show_notice("")

    def close(self) -> None:
        """Stop the stream (freeing the connection) and close every widget."""
        self.stop()
        self._closed = True
        _close_tree((self.widget,))

    # -- helpers ----------------------------------------------------------------------------

    def _set_buttons(self, *, busy: bool) -> None:
        if self._closed:
            return
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy

    def _show_notice(self, message_html: str) -> None:
        self.notice.value = (
            f"<div style='color:#9a6700'>{message_html}</div>" if message_html else ""
        )

    def _show_error(self, error: QwenError) -> None:
        self._show_notice(
            f"⚠ <b>{html.escape(type(error).__name__)}</b>: {html.escape(error.message)}"
        )


class _TurnView:
    """Feeds one turn's LiveTabs from the stream, throttled; api.run drives it."""

    def __init__(self, panel: Panel, reply: _Reply) -> None:
        self.panel = panel
        self.reply = reply
        self.throttle = Throttle(panel.max_rate)
        self._lock = reply.draw_lock  # the quiet-flush thread draws too, and Stop settles
        self._quiet: QuietFlush | None = None  # started by the first event

    def update(self, event: StreamEvent) -> None:
        reply = self.reply
        with self._lock:
            if isinstance(event, ThinkingDelta):
                reply.thinking.append(event.text)
            elif isinstance(event, AnswerDelta):
                reply.answer.append(event.text)
            elif isinstance(event, UsageUpdate):
                reply.completion_tokens = event.usage.completion_tokens
            else:
                return  # Finished: _consume settles the turn with what api.run returns
            drawn = self.throttle.ready()
            if drawn:
                self._draw()
        if self._quiet is None:
            self._quiet = QuietFlush(self._draw_quiet)
        self._quiet.event(drawn=drawn)

    def _draw(self, *, force: bool = False) -> None:
        reply = self.reply
        if reply.settled:
            return
        reply.tabs.show_text("".join(reply.thinking), "".join(reply.answer), force=force)
        status = self.status()
        reply.tabs.show_status(status, force=force)
        self.panel.status.value = status

    def _draw_quiet(self) -> None:
        with self._lock:
            self._draw(force=True)

    def stop(self) -> None:
        if self._quiet is not None:
            self._quiet.stop()

    def fail(self, error: QwenError) -> None:
        pass  # _consume settles the turn with the error's partial response

    def status(self) -> str:
        reply = self.reply
        elapsed = time.monotonic() - reply.started
        phase = "answering" if reply.answer else "thinking"
        if reply.completion_tokens is not None:
            tokens = f"{reply.completion_tokens:,} tokens"
        else:
            chars = sum(map(len, reply.thinking)) + sum(map(len, reply.answer))
            tokens = f"~{estimate_tokens(' ' * chars):,} tokens (estimated)"
        return f"<em>{phase}... {tokens}, {elapsed:.1f} s</em>"

    def partial(self, error: str) -> QwenResponse:
        reply = self.reply
        return QwenResponse(
            answer="".join(reply.answer),
            thinking="".join(reply.thinking),
            complete=False,
            error=error,
            elapsed=time.monotonic() - reply.started,
        )


def _final_status(response: QwenResponse, *, stopped: bool, failed: bool) -> str:
    usage = response.usage
    tokens = f"{usage.total_tokens:,} tokens, " if usage.total_tokens is not None else ""
    elapsed = f"{response.elapsed:.1f} s" if response.elapsed is not None else ""
    if stopped:
        return f"<em>stopped: partial reply kept ({tokens}{elapsed})</em>"
    if failed:
        return (
            "<em>failed: the prompt and images are back in the box; fix the cause and "
            "send again</em>"
        )
    return f"<em>done: {tokens}{elapsed}</em>"


# -- thumbnails ------------------------------------------------------------------------------


def thumbnail(image: PreparedImage, size: int = THUMBNAIL_SIZE) -> tuple[bytes, str] | None:
    """A small PNG / JPEG of an image that is sent inline, or None (a remote URL)."""
    if not image.url.startswith("data:"):
        return None
    from PIL import Image

    try:
        encoded = image.url.split(",", 1)[1]
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as source:
            source.draft("RGB", (size * 2, size * 2))
            small = source.copy()
    except Exception:
        return None
    small.thumbnail((size, size))
    out = io.BytesIO()
    if small.mode in ("RGBA", "LA", "P"):
        small.save(out, format="PNG")
        return out.getvalue(), "png"
    small.convert("RGB").save(out, format="JPEG", quality=80)
    return out.getvalue(), "jpeg"


def _thumbnail_widgets(
    widgets: Any, attachment: Attachment, size: int = THUMBNAIL_SIZE
) -> list[Any]:
    items = []
    for image, thumb in zip(
        attachment.images, attachment.thumbnails or [None] * len(attachment.images), strict=False
    ):
        if thumb is None:
            items.append(widgets.HTML(f"<small>{html.escape(_clip(image.source, 30))}</small>"))
        else:
            data, fmt = thumb
            items.append(
                widgets.Image(
                    value=data,
                    format=fmt,
                    layout=widgets.Layout(max_width=f"{size}px", max_height=f"{size}px"),
                )
            )
    return items


# -- small helpers ---------------------------------------------------------------------------


def _image_problem(error: Exception) -> str:
    """A readable reason an image was refused (ours say what to do; others get named)."""
    if isinstance(error, QwenError):
        return error.message
    return f"could not be read as an image ({type(error).__name__}: {error})"


def _close_tree(roots: Sequence[Any]) -> None:
    """Close widgets and everything inside them (children, accordion pages), with their
    Layout and Style models (see display.close_widgets)."""
    close_widgets(roots)


def _number_text(value: float | int | None) -> str:
    return "" if value is None else str(value)


def _parse_number(text: str, kind: Callable[[str], Any], label: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InputError(
            f"{label}: {text!r} is not {what}; leave it empty for the default."
        ) from None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
