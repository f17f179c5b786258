"""Videos in the static output: the strip of frames sent (Details) and the timeline of
the events an answer locates (Answer), as plain HTML and CSS that survive saving.

The thumbnails are qwen_nb's own small JPEG data URLs, made when the frames were sampled;
labels come from the model and are escaped. Boxes use Qwen3-VL's 0..1000 coordinates.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._types import PreparedVideo, QwenResponse

CSS_CLASS = "qwen-nb"
STRIP_LIMIT = 24  # thumbnails shown per video (evenly chosen when there are more frames)
TIMELINE_LIMIT = 40

STYLE = f"""<style>
.{CSS_CLASS}-strip{{display:flex;flex-wrap:wrap;gap:4px;margin:4px 0}}
.{CSS_CLASS}-strip figure,.{CSS_CLASS}-moment figure{{margin:0;text-align:center;
font-size:0.75em;position:relative;display:inline-block}}
.{CSS_CLASS}-strip img,.{CSS_CLASS}-moment img{{height:48px;display:block}}
.{CSS_CLASS}-timeline{{margin:8px 0;border-top:1px solid var(--jp-border-color1,#d0d7de)}}
.{CSS_CLASS}-bar{{position:relative;height:10px;background:var(--jp-layout-color2,#eef1f4);
margin:6px 0;border-radius:3px}}
.{CSS_CLASS}-bar span{{position:absolute;top:0;height:10px;min-width:3px;border-radius:3px;
background:var(--jp-brand-color1,#0969da);opacity:0.7}}
.{CSS_CLASS}-moment{{display:flex;gap:8px;align-items:center;margin:3px 0}}
.{CSS_CLASS}-moment .{CSS_CLASS}-when{{font-family:monospace;min-width:9em}}
.{CSS_CLASS}-frame{{position:relative;display:inline-block}}
.{CSS_CLASS}-box{{position:absolute;border:2px solid #e5534b;box-sizing:border-box}}
</style>"""


def clock(seconds: float) -> str:
    """00:12.5 (or 1:02:03.0 past an hour)."""
    minutes, rest = divmod(round(max(0.0, seconds), 1), 60)
    hours, minutes = divmod(int(minutes), 60)
    return (f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes:02d}:{rest:04.1f}")


def video_rows(response: QwenResponse) -> list[tuple[str, str]]:
    """Details rows: per video, what was sent and what it costs."""
    rows = []
    for index, video in enumerate(response.videos, 1):
        size = "x".join(map(str, video.frame_size or ())) or "?"
        original = "x".join(map(str, video.original_size or ())) or "?"
        times = (f"{video.timestamps[0]:.1f} s to {video.timestamps[-1]:.1f} s"
                 if video.timestamps else "-")
        value = (f"{video.source}: {len(video.frames)} frames ({times}, {video.sample_fps:.2g} "
                 f"per second), {original} -> {size} per frame, sent as {video.encoding}, "
                 f"{video.nbytes / 1024:.0f} KiB, ~{video.visual_tokens:,} visual tokens")
        if video.notes:
            value += " (" + "; ".join(video.notes) + ")"
        rows.append((f"Video {index}", value))
    return rows


def frame_strips_html(response: QwenResponse) -> str:
    """The frames each video sent, as small thumbnails with their times."""
    if not response.videos:
        return ""
    pieces = [STYLE]
    for index, video in enumerate(response.videos, 1):
        shown = _evenly(len(video.thumbnails), STRIP_LIMIT)
        more = (f" (showing {len(shown)} of {len(video.frames)})"
                if len(shown) < len(video.frames) else "")
        pieces.append(f"<div><strong>Video {index} frames sent</strong>{more}</div>"
                      f'<div class="{CSS_CLASS}-strip">')
        for i in shown:
            pieces.append(_figure(video.thumbnails[i], f"{video.timestamps[i]:.1f} s"))
        pieces.append("</div>")
    return "".join(pieces)


def timeline_html(response: QwenResponse) -> str:
    """The answer's events on a bar over the clip, each with the frame nearest it."""
    if not response.videos:
        return ""
    events = response.events[:TIMELINE_LIMIT]
    if not events:
        return ""
    video = response.videos[0]
    length = max([video.timestamps[-1] if video.timestamps else 0.0, video.duration or 0.0,
                  *(e.end if e.end is not None else e.start for e in events)]) or 1.0
    origin = min(0.0, video.timestamps[0] if video.timestamps else 0.0)
    span = max(length - origin, 1e-6)
    bar = []
    for event in events:
        left = (event.start - origin) / span * 100
        width = 0.0 if event.end is None else (event.end - event.start) / span * 100
        bar.append(f'<span style="left:{left:.2f}%;width:{width:.2f}%" '
                   f'title="{html.escape(event.label)}"></span>')
    rows = []
    for event in events:
        when = clock(event.start) + ("" if event.end is None else f" – {clock(event.end)}")
        nearest = _nearest(video, event.middle)
        box = ""
        if event.bbox is not None and event.end is None:
            x1, y1, x2, y2 = (max(0.0, min(1000.0, v)) / 10 for v in event.bbox)
            box = (f'<div class="{CSS_CLASS}-box" style="left:{x1:.1f}%;top:{y1:.1f}%;'
                   f'width:{x2 - x1:.1f}%;height:{y2 - y1:.1f}%"></div>')
        thumb = "" if nearest is None else _figure(
            video.thumbnails[nearest], f"frame at {video.timestamps[nearest]:.1f} s", box)
        rows.append(f'<div class="{CSS_CLASS}-moment">{thumb}<span class="{CSS_CLASS}-when">'
                    f"{when}</span><span>{html.escape(event.label)}</span></div>")
    return (f'{STYLE}<div class="{CSS_CLASS}-timeline"><div><strong>Timeline</strong> '
            f"({len(events)} event{'s' if len(events) != 1 else ''}, 0 to {clock(length)})"
            f'</div><div class="{CSS_CLASS}-bar">{"".join(bar)}</div>{"".join(rows)}</div>')


def events_text(response: QwenResponse) -> str:
    """The events as plain lines, for text/plain and text/markdown."""
    if not response.videos:
        return ""
    lines = []
    for event in response.events[:TIMELINE_LIMIT]:
        when = clock(event.start) + ("" if event.end is None else f"-{clock(event.end)}")
        lines.append(f"{when} {event.label}".rstrip())
    return "\n".join(lines)


def _figure(url: str, caption: str, overlay: str = "") -> str:
    # Only qwen_nb's own thumbnails (data:image/jpeg) are ever put in src.
    if not url.startswith("data:image/jpeg;base64,"):
        return ""
    return (f'<figure><span class="{CSS_CLASS}-frame"><img src="{html.escape(url)}" '
            f'alt="{html.escape(caption)}">{overlay}</span>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _nearest(video: PreparedVideo, moment: float) -> int | None:
    if not video.timestamps or not video.thumbnails:
        return None
    return min(range(min(len(video.timestamps), len(video.thumbnails))),
               key=lambda i: abs(video.timestamps[i] - moment))


def _evenly(total: int, limit: int) -> list[int]:
    if total <= limit:
        return list(range(total))
    return sorted({round(i * (total - 1) / (limit - 1)) for i in range(limit)})
