"""`%%qwen` / `%qwen`: argument parsing and glue only; the request path lives in api.py."""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, kwds, magic_arguments
from traitlets import Bool, Float, Int, Unicode

from ._errors import ImageError, InputError
from ._types import DEFAULT_MAX_PIXELS, PromptPart

QWEN_SUMMARY = """\
Ask Qwen3-VL-32B-Thinking about text and images; the reply streams into Answer /
Thinking / Details tabs and is stored in `_qwen` (and in --out NAME).

  %%qwen [options]          the cell's text is the prompt
  %qwen [options] PROMPT    a one-line prompt
"""

QWEN_EXAMPLES = """\
examples:
  %%qwen -i photo                  the image `photo`, then the text
  What is unusual in this picture?

  %%qwen                           {name} puts a variable where it is written
  Compare {chart} with {photo}. The chart's title is {title}.

  %%qwen --chat trip               later cells with --chat trip continue it
  Plan one day in Kyoto for someone who likes gardens.

writing prompts:
  {name}, {name.attr} or {name[0]}: an image goes in at that place, any other value
  as text. Other braces (JSON, {undefined}) are sent as written, {{name}} sends a
  literal {name}, and --no-interpolate sends the whole cell as written. Braces inside
  `code spans` and ``` fenced code blocks are always sent as written.
  A prompt may end in ?: a %%qwen cell always reaches the model, and so does a
  one-line %qwen What is in {photo}? (qwen_nb keeps IPython from reading that ? as a
  help request). Only a bare %qwen? or %%qwen? shows this help.
"""


class _PlainHelp(argparse.RawDescriptionHelpFormatter):
    """`%%qwen?` is read as text: argparse's layout, without IPython's reST `::` markup."""


@magics_class
class QwenMagics(Magics):
    """Talk to Qwen3-VL from cells. Every trait can be set with `%config QwenMagics.x = ...`."""

    provider = Unicode(
        "",
        help="Provider preset: aimlapi, dashscope, dashscope-cn, "
        "openrouter, vllm, ollama, lmstudio, llamacpp, local, offline.",
    ).tag(config=True)
    base_url = Unicode(
        "", help="OpenAI-compatible base URL (the part before /chat/completions)."
    ).tag(config=True)
    model = Unicode("", help="Model name; empty means the provider's default.").tag(config=True)
    system = Unicode("", help="Default system prompt.").tag(config=True)
    max_pixels = Int(DEFAULT_MAX_PIXELS, help="Pixel budget per image.").tag(config=True)
    max_tokens = Int(0, help="Default max tokens (0: provider default).").tag(config=True)
    temperature = Float(-1.0, help="Default temperature (-1: provider default).").tag(config=True)
    thinking_budget = Int(0, help="Default thinking budget (0: none).").tag(config=True)
    timeout = Float(0.0, help="Read timeout between chunks, seconds (0: default 120).").tag(
        config=True
    )
    connect_timeout = Float(0.0, help="Connect timeout, seconds (0: default 10).").tag(config=True)
    max_attempts = Int(0, help="Attempts for 429 / 5xx / refused connections (0: default 4).").tag(
        config=True
    )
    max_retry_time = Float(-1.0, help="Total seconds spent retrying (-1: default 60).").tag(
        config=True
    )
    max_payload_mb = Float(0.0, help="Cap on the images in one request, MB (0: default 20).").tag(
        config=True
    )
    max_time = Float(0.0, help="Limit on the whole call, seconds (0: default 1800).").tag(
        config=True
    )
    max_reply_mb = Float(0.0, help="Cap on answer + thinking text, MB (0: default 8).").tag(
        config=True
    )
    max_line_mb = Float(0.0, help="Cap on one stream line, MB (0: default 16).").tag(config=True)
    max_body_mb = Float(0.0, help="Cap on a non-streamed reply body, MB (0: default 32).").tag(
        config=True
    )
    inline_urls = Bool(False, help="Fetch http(s) images and send them inline.").tag(config=True)
    cache_mode = Unicode(
        "",
        help="Record/replay cache: off, auto, replay or record "
        "(QWEN_NB_CACHE_MODE wins; empty: off).",
    ).tag(config=True)
    cache_dir = Unicode(
        "", help="Cache folder (QWEN_NB_CACHE wins; empty: .qwen_cache/ in the working directory)."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        if shell is not None:
            shell.configurables.append(self)  # so %config QwenMagics.x = ... finds us

    def config_values(self) -> dict[str, Any]:
        """The traits that feed settings resolution (empty means unset)."""
        return {
            "provider": self.provider or None,
            "base_url": self.base_url or None,
            "model": self.model or None,
            "timeout": self.timeout or None,
            "connect_timeout": self.connect_timeout or None,
            "max_attempts": self.max_attempts or None,
            "max_retry_time": self.max_retry_time if self.max_retry_time >= 0 else None,
            "max_payload_mb": self.max_payload_mb or None,
            "max_time": self.max_time or None,
            "max_reply_mb": self.max_reply_mb or None,
            "max_line_mb": self.max_line_mb or None,
            "max_body_mb": self.max_body_mb or None,
        }

    @magic_arguments()
    @kwds(description=QWEN_SUMMARY, epilog=QWEN_EXAMPLES, usage=argparse.SUPPRESS,
          formatter_class=_PlainHelp)
    @argument(
        "-i",
        "--image",
        action="append",
        default=[],
        metavar="EXPR",
        help="An image-like expression from the namespace (repeatable); sent before the text.",
    )
    @argument(
        "-v",
        "--video",
        action="append",
        default=[],
        metavar="EXPR",
        help="A video: a path (mp4, mov, webm, mkv, avi, gif), bytes, a T x H x W x 3 array, "
        "a list of frames or qwen_nb.Video(...) (repeatable); sent before the text.",
    )
    @argument(
        "--video-as",
        choices=("auto", "video_url", "frames", "images"),
        help="How videos go out: video_url (an MP4, vLLM), frames (DashScope's frame list), "
        "images (timestamped images, any server); auto (default) follows the provider.",
    )
    @argument("--max-video-tokens", type=int,
              help="Refuse a video estimated above this many visual tokens (default 24576).")
    @argument("-m", "--model", help="Model name.")
    @argument("-s", "--system", help="System prompt.")
    @argument("-t", "--temperature", type=float, metavar="T", help="Sampling temperature (0 to 2).")
    @argument("--top-p", type=float, metavar="P", help="Nucleus sampling (above 0, at most 1).")
    @argument("--max-tokens", type=int, metavar="N", help="Upper limit on generated tokens.")
    @argument("--seed", type=int, metavar="N",
              help="Sampling seed, where the provider supports it.")
    @argument(
        "--thinking-budget",
        type=int,
        metavar="N",
        help="Limit on thinking tokens (sent as thinking_budget where accepted).",
    )
    @argument("--provider", metavar="NAME",
              help="Provider preset (e.g. aimlapi, dashscope, vllm, offline).")
    @argument("--base-url", metavar="URL", help="OpenAI-compatible base URL.")
    @argument("--max-pixels", type=int, metavar="N", help="Pixel budget per image.")
    @argument("--max-payload-mb", type=float, metavar="MB",
              help="Cap on all images of one request, in MB (default 20).")
    @argument("--timeout", type=float, metavar="S", help="Read timeout between chunks, in seconds.")
    @argument("--connect-timeout", type=float, metavar="S", help="Connect timeout, in seconds.")
    @argument("--max-time", type=float, metavar="S",
              help="Limit on the whole call, in seconds (default 1800); the partial is kept.")
    @argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="Attempts for 429 / 5xx / refused connections (1: no retry).",
    )
    @argument(
        "--inline-urls", action="store_true", help="Fetch http(s) image URLs and send them inline."
    )
    @argument("--no-stream", action="store_true", help="Wait for the whole reply.")
    @argument(
        "--no-interpolate",
        action="store_true",
        help="Send the cell text as written, without {name} references.",
    )
    @argument("-o", "--out", metavar="NAME", help="Also store the result in this variable.")
    @argument(
        "--chat",
        nargs="?",
        const="default",
        metavar="NAME",
        help="Continue the conversation NAME (default: 'default'): earlier turns are "
        "sent first (answers without thinking). See %%qwen_history, %%qwen_reset.",
    )
    @argument(
        "--cache",
        metavar="MODE",
        choices=("off", "auto", "replay", "record"),
        help="Record/replay cache: off, auto (replay a hit, record a miss), replay "
        "(a miss is an error), record (always call and save).",
    )
    @argument("--ground", metavar="TARGETS",
              help='Locate these ("cat, red car"): asks for bbox JSON in the cookbook form; '
              "boxes are drawn and in _qwen.boxes.")
    @argument("--points", action="store_true",
              help="With --ground: ask for points (point_2d) instead of boxes.")
    @argument("--coords", choices=("auto", "relative", "absolute"), default="auto",
              help="How to read grounding coordinates: relative 0-1000 (Qwen3-VL, Qwen2-VL), "
              "absolute pixels as sent (Qwen2.5-VL), auto by model name (default).")
    @argument("--json", action="store_true",
              help="Ask for a JSON answer (response_format json_object); parsed into _qwen.data.")
    @argument("--schema", metavar="NAME",
              help="A pydantic model class or JSON-schema dict from the namespace: sent as "
              "response_format, the answer validated into _qwen.data.")
    @argument("--strict", action="store_true",
              help="With --json/--schema: fail the cell when the answer does not validate.")
    @argument("--doc", choices=("html", "markdown"),
              help="Parse a document page (qwenvl html / qwenvl markdown): the parsed document "
              "and its regions in _qwen.document.")
    @argument("prompt", nargs="*", help="With %%qwen on one line: the prompt.")
    @line_cell_magic
    # IPython would replace {img} on the magic's line by str(img) before the magic sees it
    # (so "%qwen what is in {img}" sent a repr, not the image): qwen_nb interpolates itself.
    @no_var_expand
    def qwen(self, line: str, cell: str | None = None) -> None:
        """Ask Qwen3-VL (the full help, from QWEN_SUMMARY, the options and QWEN_EXAMPLES,
        replaces this docstring: `%%qwen?`)."""
        if cell is None:
            # One line: only the options are shell-split; the prompt is sent as written,
            # so "%qwen What's in {img}" works and quotes, "--" and spacing survive.
            options, prompt = split_prompt(self.qwen.parser, line)
            args = parse_line(self.qwen, options)
            text = " ".join([*args.prompt, prompt])
        else:
            args = parse_line(self.qwen, line)
            text = cell
        if cell is not None and args.prompt:
            raise InputError(
                f"Unexpected words after %%qwen: {' '.join(args.prompt)!r}. "
                "Options start with - (see %%qwen?); the prompt goes in the cell."
            )
        self._ask(args, text)

    def _ask(self, args: Any, text: str) -> None:
        """inputs -> request -> stream -> view; every check happens before anything is sent."""
        from . import api
        from .frontend.live import make_view

        if not text.strip() and args.ground is None and args.doc is None:
            raise InputError("The cell is empty: write a prompt below %%qwen.")
        if args.out is not None and not args.out.isidentifier():
            raise InputError(f"--out {args.out!r} is not a valid variable name.")
        settings = self._settings(args)
        chat = None
        if args.chat is not None:
            from . import conversation

            chat = conversation.get(args.chat)
        parts = self._prompt_parts(args, text, settings)
        plan = api.vision_plan(self._vision_keywords(args), images=sum(
            1 for part in parts if not isinstance(part, str)))
        parts, options = api.with_vision(parts, self._options(args), plan)
        request = api.build_request(
            parts,
            model=settings.model,
            system=_pick(args.system, self.system or None),
            history=chat.messages() if chat is not None else (),
            options=options,
            reading=plan.reading,
        )
        # Open first: a missing key, a bad cache mode or a replay miss fails the cell
        # before an (empty) live view appears.
        stream = api.open_stream(request, settings, **self._cache_options(args.cache))
        view = make_view(self.shell, request=request)
        note = chat.history_note() if chat is not None else None
        if note:  # the Details tab says what the history cost
            from .conversation import NotingView

            view = NotingView(view, note)
        try:
            response = api.run(request, settings, view, stream=stream)
        except Exception as error:
            partial = getattr(error, "response", None)
            if partial is not None:
                self._store(partial, args.out)
            raise
        if chat is not None:
            from .conversation import add_note

            response = add_note(response, note)
            chat.add(request.messages[-1], response)
        self._store(response, args.out)

    def _vision_keywords(self, args: Any) -> dict[str, Any]:
        """--ground/--points/--coords/--json/--schema/--strict/--doc as plan_vision keywords."""
        keywords: dict[str, Any] = {
            "ground": args.ground, "points": args.points, "coords": args.coords,
            "json": args.json, "doc": args.doc, "strict": args.strict,
        }
        if args.schema is not None:
            name = args.schema.strip()
            try:
                keywords["schema"] = eval(name, self.shell.user_global_ns, self.shell.user_ns)  # noqa: S307
            except Exception as exc:
                raise InputError(
                    f"--schema {name}: {type(exc).__name__}: {exc}. Define a pydantic model "
                    "class or a JSON-schema dict with that name in a cell above."
                ) from None
            keywords["schema_label"] = f"--schema {name}"
        return keywords

    def _settings(self, args: Any) -> Any:
        from ._config import resolve_settings

        return resolve_settings(
            provider=args.provider,
            base_url=args.base_url,
            model=args.model,
            timeout=args.timeout,
            connect_timeout=args.connect_timeout,
            max_attempts=args.max_attempts,
            max_payload_mb=args.max_payload_mb,
            max_time=args.max_time,
            config=self.config_values(),
        )

    def _options(self, args: Any) -> Any:
        from . import api

        return api.make_options(
            temperature=_pick(
                args.temperature, self.temperature if self.temperature >= 0 else None
            ),
            top_p=args.top_p,
            max_tokens=_pick(args.max_tokens, self.max_tokens or None),
            seed=args.seed,
            thinking_budget=_pick(args.thinking_budget, self.thinking_budget or None),
            stream=not args.no_stream,
        )

    def _prompt_parts(self, args: Any, text: str, settings: Any) -> list[PromptPart]:
        """Images from -i and videos from -v first, then the cell text with {name}
        references resolved."""
        from . import api
        from .media.images import is_image_like, prepare_each
        from .media.video import is_video_like

        max_pixels = _pick(args.max_pixels, self.max_pixels)
        if max_pixels <= 0:
            raise InputError(f"--max-pixels must be positive, not {max_pixels}.")
        inline = args.inline_urls or self.inline_urls or not settings.provider.fetches_image_urls

        def prepare_video(value: Any, label: str) -> list[PromptPart]:
            return list(api.prepare_videos(
                [value], settings=settings, video_as=args.video_as,
                max_video_tokens=args.max_video_tokens, labels=[label]))

        def is_media(value: Any) -> bool:
            return is_video_like(value) or is_image_like(value)

        options = [(self._evaluate(expression), expression) for expression in args.image]
        if args.no_interpolate:
            pieces: list[Any] = [text]
        else:
            from ._interpolate import split_references

            pieces = list(split_references(text, self.shell.user_ns, is_media))
        referenced = [(piece[1], piece[0]) for piece in pieces
                      if not isinstance(piece, str) and not is_video_like(piece[1])]
        # Every image of the cell (-i options first, then {name}s) in one pass over the
        # shared pool, in input order, as ask() and the panel prepare theirs.
        groups = iter(prepare_each(options + referenced, max_pixels=max_pixels,
                                   inline_urls=inline) if options or referenced else [])
        parts: list[PromptPart] = []
        for _ in options:
            parts.extend(next(groups))
        for expression in args.video:
            parts.extend(prepare_video(self._evaluate(expression, option="-v"), expression))
        for piece in pieces:
            if isinstance(piece, str):
                parts.append(piece)
            elif is_video_like(piece[1]):
                parts.extend(prepare_video(piece[1], piece[0]))
            else:
                parts.extend(next(groups))
        return parts

    def _cache_options(self, mode: str | None) -> dict[str, Any]:
        """--cache, then QWEN_NB_CACHE_MODE, then %config (QWEN_NB_CACHE before cache_dir)."""
        from .cache import resolve_dir, resolve_mode

        return {
            "cache": resolve_mode(mode, config=self.cache_mode or None),
            "cache_dir": resolve_dir(config=self.cache_dir or None),
        }

    def _evaluate(self, expression: str, option: str = "-i") -> Any:
        expression = expression.strip()
        if expression.startswith("{") and expression.endswith("}"):
            expression = expression[1:-1].strip()  # -i {expr} reads as the prompt's {expr}
        if expression in ("plt", "pyplot", "matplotlib.pyplot"):
            import matplotlib.pyplot as plt  # "-i plt" means the current figure

            return plt
        try:
            return eval(expression, self.shell.user_global_ns, self.shell.user_ns)  # noqa: S307
        except NameError as exc:
            raise ImageError(
                f"{option} {expression}: {exc}. Define it in a cell above, or check the "
                "spelling."
            ) from None
        except Exception as exc:
            raise ImageError(
                f"{option} {expression} raised {type(exc).__name__}: {exc}") from None

    def _store(self, response: Any, out: str | None) -> None:
        self.shell.user_ns["_qwen"] = response
        if out:
            self.shell.user_ns[out] = response

    @line_magic
    def qwen_reset(self, line: str) -> None:
        """%qwen_reset [NAME]: forget the conversation NAME (of %%qwen --chat NAME), or
        every conversation when no name is given."""
        from . import conversation

        name = line.strip() or None
        forgotten = conversation.reset(name)
        if name is not None and not forgotten:
            known = ", ".join(conversation.names()) or "none"
            print(f"No conversation named {name!r}; known: {known}.")
        else:
            print(
                f"Forgot {len(forgotten)} conversation{'s' if len(forgotten) != 1 else ''}"
                + (f": {', '.join(forgotten)}." if forgotten else ".")
            )

    @line_magic
    def qwen_history(self, line: str) -> None:
        """%qwen_history [NAME]: list the turns of a conversation (all conversations
        without NAME)."""
        from . import conversation

        name = line.strip() or None
        if name is None:
            known = conversation.names()
            if not known:
                print("No conversations yet; start one with %%qwen --chat NAME.")
            for known_name in known:
                print(f"{known_name}: {len(conversation.get(known_name))} turns")
            return
        if name not in conversation.names():
            print(f"No conversation named {name!r}.")
            return
        print(conversation.get(name).summary())

    @line_magic
    def qwen_panel(self, line: str) -> Any:
        """%qwen_panel: a chat panel using this magic's settings (%config QwenMagics.*)."""
        from .panel import Panel

        return Panel(
            system=self.system or None,
            max_pixels=self.max_pixels,
            temperature=self.temperature if self.temperature >= 0 else None,
            max_tokens=self.max_tokens or None,
            thinking_budget=self.thinking_budget or None,
            inline_urls=self.inline_urls,
            config=self.config_values(),
            **self._cache_options(None),
        )


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # a word, as argparse sees it


def split_prompt(parser: Any, line: str) -> tuple[str, str]:
    """(options, prompt) of a one-line `%qwen`: the options are the words before the first
    one that is neither an option nor an option's value; the prompt is the rest of the line
    exactly as written. A prompt that is one quoted word loses its quotes, as before."""
    actions = parser._option_string_actions
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    values_due: int | str = 0  # values the last option still takes ("?": optional)
    position = 0
    while True:
        start = len(line) - len(line[position:].lstrip())
        if start >= len(line):
            return line, ""
        starts_option = line[start] == "-" and not _NEGATIVE_NUMBER.match(
            line[start:].split(maxsplit=1)[0]
        )
        if values_due == "?" and starts_option:
            values_due = 0
        if not values_due and not starts_option:
            prompt = line[start:].rstrip()
            if prompt[:1] in "'\"" and prompt[-1:] == prompt[:1]:
                try:
                    words = shlex.split(prompt)
                except ValueError:
                    words = []
                if len(words) == 1:
                    prompt = words[0]
            return line[:start], prompt
        lexer.instream.seek(start)
        try:
            word = lexer.get_token()
        except ValueError:  # an unclosed quote among the options: parse_line says so
            return line, ""
        position = lexer.instream.tell()
        if values_due:
            values_due = 0
            continue
        if word == "--":
            return line[:start], line[position:].strip()
        action = actions.get(word)
        if action is None and word.startswith("--") and "=" not in word:
            matches = {a for name, a in actions.items() if name.startswith(word)}
            action = matches.pop() if len(matches) == 1 else None
        if action is not None:
            values_due = "?" if action.nargs == "?" else (0 if action.nargs == 0 else 1)


def parse_line(magic: Any, line: str) -> Any:
    """Parse options with shell quoting (`-s 'Be brief.'` gives `Be brief.`).

    IPython's parse_argstring keeps quote characters on Linux, so split with shlex first.
    """
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"Could not parse the options ({exc}); check the quotes.") from None
    return magic.parser.parse_args(argv)


def _pick(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
