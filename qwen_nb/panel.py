"""The chat panel: a transcript of turns with their Answer / Thinking / Details, the prompt
box pinned below, images, Stop, per-turn actions, and a transcript the notebook keeps.

The view is qwen_nb's front end (frontend/chat.py and qwen.js); this module is the panel's
Python API and its logic. The reply runs in a daemon thread (api.open_stream + api.run,
the path the magic uses), so the kernel stays free: Stop works while a reply streams and
other cells run. The panel holds no HTTP code; Stop closes the event stream, which wakes a
blocked read.

The API key typed into the settings travels once, in a message, into a Python-side Secret:
it never sits in widget state a notebook could save.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import api
from ._config import PROVIDERS, ConfigError, Secret, Settings, resolve_settings
from ._errors import InputError, Interrupted, QwenError
from ._types import DEFAULT_MAX_PIXELS, Message, PreparedImage, PreparedVideo, QwenResponse
from .conversation import Conversation, Turn, add_note

THUMBNAIL_SIZE = 96
# How long Stop waits for the reply thread to notice before it marks the turn stopped
# itself (a server that has not sent its first byte yet holds the connect call).
STOP_GRACE_SECONDS = 1.0
SETTING_NAMES = ("model", "provider", "base_url", "temperature", "max_tokens",
                 "thinking_budget", "ground", "answer_as", "system", "resend_images")
ANSWER_AS = (("text", ""), ("JSON", "json"), ("document: HTML", "html"),
             ("document: Markdown", "markdown"))


@dataclass
class Attachment:
    """Images attached to the next message (one upload or one variable may give several)."""

    label: str
    images: list[PreparedImage | PreparedVideo]
    thumbnails: list[tuple[bytes, str] | None] = field(default_factory=list)


@dataclass
class _Reply:
    """One reply on its way: its stream, its view, and whether it has been settled."""

    turn_id: int
    user: Message
    attachments: list[Attachment]
    prompt_text: str
    stream: Any = None
    view: Any = None  # the turn's TurnStream
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.monotonic)
    note: str | None = None
    stop_requested: bool = False
    settled: bool = False


class Panel:
    """A chat panel for Qwen3-VL. Show it as the last expression of a cell (or `%qwen_panel`).

    `history` is the list of turns (prompt, image_count, response), `last_response` the
    latest result, `busy` is True exactly while a reply is on its way; `send()`, `stop()`,
    `regenerate()`, `new_chat()`, `wait()`, `to_markdown()` and `close()` do what the
    buttons do and more.
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
        max_rate: float = 5.0,
        cache: str | None = None,
        cache_dir: str | None = None,
    ) -> None:
        from .frontend.chat import ChatView

        # Record/replay as for the magic: `cache` mode, else QWEN_NB_CACHE_MODE, else off.
        self._cache = {"cache": cache, "cache_dir": cache_dir}
        self.conversation = Conversation(resend_images=resend_images)
        self.history: list[Turn] = []
        self._thumbs: list[list[str]] = []  # per turn of history: its thumbnails (data URLs)
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
        self._turn_ids = iter(range(1, 1 << 62))
        self._turn_records: list[tuple[int, list[Attachment]]] = []  # per turn of history
        providers = [("default", "")] + [(f"{p.label} ({name})", name)
                                         for name, p in PROVIDERS.items()]
        settings = {"model": model or "", "provider": provider or "",
                    "base_url": base_url or "", "temperature": _number_text(temperature),
                    "max_tokens": _number_text(max_tokens),
                    "thinking_budget": _number_text(thinking_budget), "ground": "",
                    "answer_as": "", "system": system or "", "resend_images": resend_images}
        self.view = ChatView(providers=providers, settings=settings, on_action=self._on_action,
                             answer_as=ANSWER_AS)
        self.widget = self.view.widget
        self.widget.observe(lambda _change: self._show_model(), names="settings")
        self._show_model()
        self.refresh_variables()

    # -- display ----------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self._closed:
            display({"text/plain": repr(self)}, raw=True)
            return
        self.view.show(self._turns())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The static transcript as one bundle (where `_ipython_display_` is not used)."""
        from .frontend.chat import transcript_bundle

        return transcript_bundle(self._turns())

    def __repr__(self) -> str:
        state = "closed" if self._closed else "streaming" if self.busy else "idle"
        return f"<qwen_nb.Panel: {len(self.history)} turns, {state}>"

    def _turns(self) -> list[tuple[str, int, list[str], QwenResponse]]:
        """What the static transcript shows of each turn: prompt, images, thumbnails, reply."""
        return [(turn.prompt, turn.image_count, thumbs, turn.response)
                for turn, thumbs in zip(self.history, self._thumbs, strict=True)]

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

    @property
    def settings(self) -> dict[str, Any]:
        """The Settings fields as typed (empty: the provider's default)."""
        return dict(self.view.get("settings"))

    def set(self, **values: Any) -> None:
        """Change Settings fields (model, provider, base_url, temperature, max_tokens,
        thinking_budget, system, resend_images) as typing them would."""
        unknown = set(values) - set(SETTING_NAMES)
        if unknown:
            raise InputError(f"Unknown panel setting(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(SETTING_NAMES)}.")
        self.view.set(settings={**self.settings, **{
            name: value if name == "resend_images" else _number_text(value)
            for name, value in values.items()}})

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current reply (if any) has ended; False on timeout."""
        return self._idle.wait(timeout)

    def to_markdown(self, *, thinking: bool = False) -> str:
        """The conversation as Markdown for a report (thinking traces optional)."""
        from .conversation import transcript_markdown

        return transcript_markdown(self.history, thinking=thinking)

    # -- actions from the page --------------------------------------------------------------

    def _on_action(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        """One click or key in the page (qwen.js sends {action: ...})."""
        action = content.get("action")
        try:
            if action == "send":
                self.view.set(prompt="")  # the page emptied its box; the text is here
                self.send(str(content.get("prompt", "")), edit=bool(content.get("edit")))
            elif action == "stop":
                self.stop()
            elif action == "new_chat":
                self.new_chat()
            elif action == "regenerate":
                self.regenerate()
            elif action == "upload":
                self._upload(list(content.get("names") or ()), buffers)
            elif action == "add_variable":
                self.add_variable(content.get("name") or None)
            elif action == "refresh_variables":
                self.refresh_variables()
            elif action == "remove_attachment":
                self.remove_attachment(int(content.get("index", -1)))
            elif action == "set_key":
                self.set_api_key(str(content.get("key", "")))
            elif action == "forget_key":
                self.forget_key()
        except QwenError as error:
            self._show_error(error)
        except Exception as error:  # a bug must still leave a usable panel
            self._show_notice(f"⚠ {type(error).__name__}: {error}")

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
        from .frontend.chat import data_url

        items = []
        for attachment in self._attachments:
            thumbs = attachment.thumbnails or [None] * len(attachment.images)
            for thumb in thumbs:
                items.append({"label": _clip(attachment.label, 24), "src": data_url(thumb)})
        self.view.set(attachments=items)

    def _upload(self, names: list[str], contents: list[bytes]) -> None:
        """Files chosen in the page (their bytes came as message buffers, not state):
        images, or videos (sampled into frames for the provider set now)."""
        problems: list[str] = []
        for index, content in enumerate(contents):
            name = str(names[index] if index < len(names) else "upload")
            try:
                images = self._prepare_upload(content, name)
            except Exception as error:  # whatever the file holds, the panel stays usable
                message = _image_problem(error)
                problems.append(message if name in message else f"{name}: {message}")
                continue
            self._add_attachment(Attachment(name, images, [
                thumbnail(i.frames[0] if isinstance(i, PreparedVideo) else i) for i in images]))
        self._show_notice(f"Not attached ({len(problems)}): " + "; ".join(problems)
                          if problems else "")

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
        self.view.set(variables=self.image_variables())

    def add_variable(self, name: str | None = None) -> None:
        """Attach the image variable `name` (the one chosen in the page's picker)."""
        if not name:
            self._show_notice(
                "No image variable chosen. Define one (a PIL image, an array, "
                "a figure...) and press the refresh button."
            )
            return
        namespace = self._user_namespace()
        if name not in namespace:
            self._show_notice(f"{name} is no longer defined.")
            self.refresh_variables()
            return
        try:
            self.attach(namespace[name], label=name)
        except Exception as error:
            message = _image_problem(error)
            self._show_notice(message if name in message else f"{name}: {message}")
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

    def set_api_key(self, key: str) -> None:
        """Use `key` for this panel only (kept in memory; the page's key field sends it here
        in a message and empties itself)."""
        key = key.strip()
        if not key:
            return
        self._key = Secret(key)
        self.view.set(key_status="key set (in this kernel's memory only)", notice_key=False)
        if "API key" in self.view.get("notice"):
            self._show_notice("")

    def forget_key(self) -> None:
        self._key = None
        self.view.set(key_status="no key set here (using the environment / set_api_key)")

    def resolve_settings(self) -> Settings:
        """Settings for the next reply: this panel's fields, then QWEN_NB_*, then config."""
        fields = self.settings
        return resolve_settings(
            provider=fields.get("provider") or None,
            base_url=str(fields.get("base_url") or "").strip() or None,
            model=str(fields.get("model") or "").strip() or None,
            api_key=self._key.reveal() if self._key is not None else None,
            config=self._config,
        )

    def _options(self) -> Any:
        fields = self.settings
        return api.make_options(
            temperature=_parse_number(str(fields.get("temperature") or ""), float,
                                      "Temperature"),
            max_tokens=_parse_number(str(fields.get("max_tokens") or ""), int, "Max tokens"),
            thinking_budget=_parse_number(str(fields.get("thinking_budget") or ""), int,
                                          "Thinking budget"),
        )

    def _vision_keywords(self) -> dict[str, Any]:
        """Settings' Locate and Answer as, as the keywords ask(ground=, json=, doc=) takes."""
        fields = self.settings
        ground = str(fields.get("ground") or "").strip() or None
        answer_as = fields.get("answer_as") or ""
        return {"ground": ground, "json": answer_as == "json",
                "doc": answer_as if answer_as in ("html", "markdown") else None}

    def _show_model(self) -> None:
        """The model and provider the next Send will use, in the panel's header."""
        try:
            settings = self.resolve_settings()
        except QwenError as error:
            self.view.set(model_label=f"settings need a fix: {error.message}")
            return
        provider = settings.provider.label or settings.provider.name
        self.view.set(model_label=f"{settings.model} · {provider}")

    # -- sending ----------------------------------------------------------------------------

    def send(self, prompt: str | None = None, *, edit: bool = False) -> bool:
        """Send the prompt (default: what is typed in the box) and attached images; returns
        at once (False if nothing was sent, with the reason shown in the panel). `edit`:
        replace the last turn (the page's Edit, then Send)."""
        if self._closed:
            raise InputError("This panel is closed; create a new one.")
        text = self.view.get("prompt") if prompt is None else prompt
        with self._lock:
            if self.busy:
                self._show_notice("A reply is on its way: wait for it or press Stop.")
                self._give_back(text)
                return False
            if edit and self.history:
                last = self._forget_last()
                if not self._attachments:
                    self._attachments = list(last)
            attachments = list(self._attachments)
            try:
                request, settings, stream, note = self._open(text, attachments)
            except QwenError as error:
                self._show_error(error)
                self._give_back(text)
                return False
            self._idle.clear()
        self._start(request, settings, stream, note, text, attachments)
        return True

    def regenerate(self) -> bool:
        """Ask again for the last prompt and its images (the last turn is replaced)."""
        with self._lock:
            if self.busy or not self.history:
                self._show_notice("Nothing to regenerate yet." if not self.history else
                                  "A reply is on its way: wait for it or press Stop.")
                return False
            prompt = self.history[-1].prompt
            attachments = self._forget_last()
            try:
                request, settings, stream, note = self._open(prompt, attachments)
            except QwenError as error:
                self._show_error(error)
                return False
            self._idle.clear()
        self._start(request, settings, stream, note, prompt, attachments, keep_box=True)
        return True

    def _open(self, text: str, attachments: list[Attachment]) -> tuple[Any, Any, Any, Any]:
        """Check everything and open the stream (nothing is sent when a check fails)."""
        resend = bool(self.settings.get("resend_images", True))
        settings = self.resolve_settings()
        settings.require_key()
        options = self._options()
        images = [image for item in attachments for image in item.images]
        plan = api.vision_plan(self._vision_keywords(), len(images))
        parts, options = api.with_vision([*images, text], options, plan)
        request = api.build_request(
            parts,
            model=settings.model,
            system=str(self.settings.get("system") or "") or None,
            history=self.conversation.messages(resend_images=resend),
            options=options,
            reading=plan.reading,
        )
        stream = api.open_stream(request, settings, **self._cache)
        return request, settings, stream, self.conversation.history_note(resend_images=resend)

    def _forget_last(self) -> list[Attachment]:
        """Drop the last turn (to regenerate or edit it); returns its images."""
        turn = self.history.pop()
        self._thumbs.pop()
        turn_id, attachments = self._turn_records.pop()
        if self.conversation.turns and self.conversation.turns[-1].user is turn.user:
            self.conversation.turns.pop()
        self.view.drop_turn(turn_id)
        self.view.update_transcript(self._turns())
        return attachments

    def _start(self, request: Any, settings: Settings, stream: Any, note: str | None,
               text: str, attachments: list[Attachment], *, keep_box: bool = False) -> None:
        from .frontend.chat import data_url

        turn_id = next(self._turn_ids)
        user = request.messages[-1]
        thumbs = [data_url(t) for a in attachments for t in a.thumbnails if t is not None]
        reply = _Reply(turn_id, user, attachments, text, stream=stream, note=note)
        reply.view = self.view.open_turn(turn_id, text, thumbs, len(user.images),
                                         max_rate=self.max_rate)
        reply.thumbs = thumbs  # type: ignore[attr-defined]
        self._reply = reply
        values: dict[str, Any] = {"busy": True, "notice": "", "notice_key": False,
                                  "status": "waiting for the model..."}
        if not keep_box:
            values["prompt"] = ""
            self._attachments = []
        self.view.set(**values)
        self._render_thumbnails()
        reply.thread = threading.Thread(target=self._consume, args=(reply, request, settings),
                                        name="qwen-nb-chat", daemon=True)
        reply.thread.start()

    def _consume(self, reply: _Reply, request: Any, settings: Settings) -> None:
        """The reply thread: stream into the turn's view, then settle the turn."""
        view = reply.view
        try:
            try:
                response = api.run(request, settings, view, stream=reply.stream)
            finally:
                view.stop()
        except Interrupted as error:
            self._settle(reply, error.response or self._partial(reply, error.message),
                         stopped=True)
        except QwenError as error:
            partial = error.response or self._partial(reply, error.message)
            if reply.stop_requested:
                self._settle(reply, partial, stopped=True)
            else:
                self._settle(reply, partial, error=error)
        except Exception as error:  # a bug must still leave a usable panel
            wrapped = QwenError(f"Unexpected error ({type(error).__name__}: {error})")
            self._settle(reply, self._partial(reply, wrapped.message), error=wrapped)
        else:
            self._settle(reply, response)

    def _settle(self, reply: _Reply, response: QwenResponse, *, stopped: bool = False,
                error: QwenError | None = None) -> None:
        """Show the final state of a turn and record it; the first caller wins."""
        with self._lock:
            if reply.settled:
                return
            reply.settled = True
        try:
            response = add_note(response, reply.note)
            if stopped and response.complete:
                response = response.replace(complete=False, error="stopped")
            elif stopped:
                response = response.replace(error="stopped by the user")
            self.history.append(Turn(reply.user, response))
            self._thumbs.append(getattr(reply, "thumbs", []))
            self._turn_records.append((reply.turn_id, reply.attachments))
            kept = error is None and self.conversation.add(reply.user, response)
            status = _final_status(response, stopped=stopped, failed=error is not None)
            # One place for each message: the turn shows how it ended (stopped, cut at
            # the limit...), the panel's notice an error, its status line the totals.
            self.view.finish_turn(reply.turn_id, response, warn=error is None)
            if error is not None:
                self._show_error(error)
            if not kept:
                self._restore(reply)
            self.view.set(status=status)
            self.view.update_transcript(self._turns())
        finally:
            if self._reply is reply:
                self._reply = None
            if not self._closed:
                self.view.set(busy=False)
            self._idle.set()

    def _partial(self, reply: _Reply, error: str) -> QwenResponse:
        """What arrived so far, as an incomplete response."""
        view = reply.view
        return QwenResponse(
            answer="".join(view.answer) if view is not None else "",
            thinking="".join(view.thinking) if view is not None else "",
            complete=False,
            error=error,
            elapsed=time.monotonic() - reply.started,
        )

    def _restore(self, reply: _Reply) -> None:
        """Put back the prompt and images of a turn that is not part of the conversation,
        so the person can fix the cause and resend (unless they already typed anew)."""
        self._give_back(reply.prompt_text)
        if not self._attachments:
            self._attachments = list(reply.attachments)
            self._render_thumbnails()

    def _give_back(self, text: str) -> None:
        """The page empties its box on Send: a prompt that was not sent goes back into it
        (unless something new was typed since, or it holds a key: widget state may be
        saved with the notebook)."""
        from ._redact import contains_key

        if text.strip() and not str(self.view.get("prompt")).strip() and \
                not contains_key(text):
            self.view.put_in_box(text)

    def stop(self) -> None:
        """Stop the reply now; the partial text stays, marked stopped."""
        reply = self._reply
        if reply is None or reply.settled:
            return
        reply.stop_requested = True
        self.view.set(status="stopping...")
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
                partial = self._partial(reply, "stopped by the user")
            self._settle(reply, partial.replace(complete=False), stopped=True)

    def new_chat(self) -> None:
        """Stop any reply, forget the conversation and clear the transcript."""
        self.stop()
        self.conversation.reset()
        self.history.clear()
        self._thumbs.clear()
        self._turn_records.clear()
        self.view.reset()
        self.view.set(status="", notice="", notice_key=False)
        self.view.update_transcript(self._turns())

    def close(self) -> None:
        """Stop the stream (freeing the connection) and close the widget; the saved
        transcript stays in the output."""
        self.stop()
        self._closed = True
        self.view.close()

    # -- helpers ----------------------------------------------------------------------------

    def _show_notice(self, message: str) -> None:
        if not self._closed:
            self.view.set(notice=message, notice_key=False)

    def _show_error(self, error: QwenError) -> None:
        if self._closed:
            return
        if isinstance(error, ConfigError) and "API key" in error.message:
            self.view.set(notice=f"⚠ {error.message} Or paste a key into this panel: "
                                 "Settings → API key (kept in memory only).",
                          notice_key=True)
            return
        self.view.set(notice=f"⚠ {type(error).__name__}: {error.message}", notice_key=False)


def _final_status(response: QwenResponse, *, stopped: bool, failed: bool) -> str:
    usage = response.usage
    tokens = f"{usage.total_tokens:,} tokens, " if usage.total_tokens is not None else ""
    elapsed = f"{response.elapsed:.1f} s" if response.elapsed is not None else ""
    if stopped:
        return f"stopped: partial reply kept ({tokens}{elapsed})"
    if failed:
        return "failed: the prompt and images are back in the box; fix the cause and send again"
    return f"done: {tokens}{elapsed}"


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


# -- small helpers ---------------------------------------------------------------------------


def _image_problem(error: Exception) -> str:
    """A readable reason an image was refused (ours say what to do; others get named)."""
    if isinstance(error, QwenError):
        return error.message
    return f"could not be read as an image ({type(error).__name__}: {error})"


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
