"""The anywidget models behind the live reply view and the chat panel.

One model per live reply (or per panel); its ES module and stylesheet ship in this
package (qwen.js, qwen.css) and travel once, in the model's opening message. Everything
that changes afterwards goes as custom messages (`widget.send`) carrying HTML that
qwen_nb.render made safe, so the front end never parses Markdown or TeX itself.
anywidget and ipywidgets are imported here, on first use, never at `%load_ext`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import lru_cache
from importlib import resources
from typing import Any

from ..render import tabs_html


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def compact(source: str) -> str:
    """The file without comment lines and indentation: it is sent with every live reply
    (the fixed cost of a cell), and qwen.js is written so lines can be stripped safely."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith(("//", "/*")))


@lru_cache(maxsize=1)
def esm() -> str:
    return compact(_asset("qwen.js"))


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """qwen_nb.render's stylesheet (the static output's look) plus the front end's own."""
    from .._types import QwenResponse

    static = re.findall(r"<style>(.*?)</style>", tabs_html(QwenResponse()), flags=re.S)
    own = re.sub(r"/\*.*?\*/", "", _asset("qwen.css"), flags=re.S)
    return "".join(part.strip() for part in (*static, own))


@lru_cache(maxsize=1)
def version() -> str:
    """Names this front end in the page, so two kernels with different qwen_nb versions
    (two notebooks open in one JupyterLab) each get their own."""
    return hashlib.sha256((esm() + stylesheet()).encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def _shared_layout() -> Any:
    """One Layout model for every qwen_nb widget of the kernel: otherwise each live reply
    opens (and leaks) a Layout model of its own."""
    import ipywidgets

    return ipywidgets.Layout()


@lru_cache(maxsize=1)
def _classes() -> tuple[type, type, type]:
    import anywidget
    import traitlets

    class QwenFrontEnd(anywidget.AnyWidget):
        """The kernel's one front-end model: carries qwen.js and the stylesheet, once."""

        _esm = esm()
        _css = stylesheet()
        kind = traitlets.Unicode("core").tag(sync=True)
        version = traitlets.Unicode(version()).tag(sync=True)

    class QwenWidget(anywidget.AnyWidget):
        """A live reply (`kind="reply"`) or a chat panel (`kind="chat"`): a handle onto
        the front end that QwenFrontEnd loaded."""

        _esm = compact(_asset("handle.js"))
        kind = traitlets.Unicode("reply").tag(sync=True)
        # Names the model's state in the page (anywidget gives each view its own proxy).
        uid = traitlets.Unicode().tag(sync=True)
        core = traitlets.Unicode().tag(sync=True)  # the front-end model's id
        version = traitlets.Unicode(version()).tag(sync=True)

    class QwenChatWidget(QwenWidget):
        """The chat panel: turns travel as messages; these traits are its small state."""

        widget_id = traitlets.Unicode().tag(sync=True)  # finds its notebook cell
        providers = traitlets.List().tag(sync=True)
        answer_as = traitlets.List().tag(sync=True)  # the choices of Settings' Answer as
        settings = traitlets.Dict().tag(sync=True)
        model_label = traitlets.Unicode("provider default").tag(sync=True)
        prompt = traitlets.Unicode().tag(sync=True)
        busy = traitlets.Bool(False).tag(sync=True)
        notice = traitlets.Unicode().tag(sync=True)
        notice_key = traitlets.Bool(False).tag(sync=True)  # the notice is about the key
        status = traitlets.Unicode().tag(sync=True)
        key_status = traitlets.Unicode().tag(sync=True)
        variables = traitlets.List().tag(sync=True)
        attachments = traitlets.List().tag(sync=True)
        turns = traitlets.Int(0).tag(sync=True)

        def __repr__(self) -> str:
            return "Qwen chat panel (live; its transcript is saved in the output above)"

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
            """No text/plain words: where the chat cannot show (nbconvert, GitHub, no
            kernel), the transcript just above is the whole story, not this output."""
            data, metadata = super()._repr_mimebundle_(**kwargs)  # anywidget's pair
            return {**data, "text/plain": ""}, metadata

    return QwenFrontEnd, QwenWidget, QwenChatWidget


_core: list[Any] = []


def _front_end() -> Any:
    """The kernel's front-end model, opened on first use (again if someone closed it)."""
    if not _core or _core[0].comm is None:
        core_class = _classes()[0]
        _core[:] = [core_class(layout=_shared_layout())]
    return _core[0]


def new_widget(kind: str = "reply", **traits: Any) -> Any:
    """A QwenWidget; the first one of a kernel also opens the front-end model."""
    core = _front_end()
    widget_class = _classes()[2 if kind == "chat" else 1]
    return widget_class(kind=kind, uid=secrets.token_hex(8), core=core.model_id,
                         layout=_shared_layout(), **traits)
