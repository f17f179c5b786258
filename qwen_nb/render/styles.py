"""The static output's one stylesheet: tabs, code colours, math, thumbnails.

Colours come from JupyterLab's theme variables, so the dark theme stays readable (Lab
marks it with `data-jp-theme-light="false"` on <body>); the fallbacks after each variable
are for nbconvert pages and other hosts that do not define them. The notice has fixed
colours: Lab's dark theme pairs its light warning background with light text. Nothing here loads a
resource: no url(), no @import, no fonts.
"""

from __future__ import annotations

CSS_CLASS = "qwen-nb"

# Pygments' short class names the stylesheet colours; other tokens are plain text.
CODE_COLOURS = {
    "k": ("keyword", "#008000", "font-weight:bold"),
    "ow": ("keyword", "#008000", "font-weight:bold"),
    "nb": ("builtin", "#008000", ""),
    "bp": ("builtin", "#008000", ""),
    "nf": ("def", "#0000ff", ""),
    "fm": ("def", "#0000ff", ""),
    "nc": ("def", "#0000ff", ""),
    "nd": ("meta", "#aa22ff", ""),
    "nt": ("tag", "#117700", ""),
    "na": ("attribute", "#0000cc", ""),
    "s": ("string", "#ba2121", ""),
    "m": ("number", "#008800", ""),
    "c": ("comment", "#3d7a7a", "font-style:italic"),
    "cp": ("meta", "#aa22ff", ""),
    "gh": ("header", "#0000ff", "font-weight:bold"),
    "gu": ("header", "#0000ff", ""),
    "gd": ("error", "#c00000", ""),
    "gi": ("string", "#ba2121", ""),
    "err": ("error", "#c00000", ""),
}
CODE_CLASSES = frozenset(CODE_COLOURS)
# Lab's dark editor colours that fall under 4.5:1 on its dark code background.
_DARK_OVERRIDES = {"c": "#8fbfbf", "nf": "#6fa8ff", "nc": "#6fa8ff", "fm": "#6fa8ff"}

_C = CSS_CLASS
_BORDER = "var(--jp-border-color1,#bdbdbd)"
_TEXT = "var(--jp-content-font-color1,#1f2328)"
_MUTED = "var(--jp-content-font-color2,#57606a)"
_CODE_BG = "var(--jp-cell-editor-background,#f5f5f5)"
_DARK = 'body[data-jp-theme-light="false"]'


def _code_rules() -> str:
    rules = []
    for css, (variable, fallback, extra) in CODE_COLOURS.items():
        extra = f";{extra}" if extra else ""
        rules.append(
            f".{_C}-code .{css}{{color:var(--jp-mirror-editor-{variable}-color,{fallback}){extra}}}"
        )
    for css, colour in _DARK_OVERRIDES.items():
        rules.append(f"{_DARK} .{_C}-code .{css}{{color:{colour}}}")
    return "\n".join(rules)


STYLE = f"""<style>
.{_C}{{display:flex;flex-wrap:wrap;border:1px solid {_BORDER};border-radius:6px;margin:2px 0;
color:{_TEXT}}}
.{_C}>input.{_C}-tab{{position:absolute;opacity:0;width:1px;height:1px;margin:0}}
.{_C}>label{{padding:4px 14px;cursor:pointer;border-bottom:2px solid transparent;
color:{_MUTED};font-weight:600}}
.{_C}>input.{_C}-tab:checked+label{{border-bottom-color:var(--jp-brand-color1,#1976d2);
color:{_TEXT}}}
.{_C}>input.{_C}-tab:focus-visible+label{{outline:2px solid var(--jp-brand-color1,#1976d2)}}
.{_C}>.{_C}-panel{{order:1;width:100%;padding:6px 12px;border-top:1px solid {_BORDER};
box-sizing:border-box;overflow-x:auto;display:none;margin:0}}
.{_C}>input:nth-of-type(1):checked~.{_C}-answer,
.{_C}>input:nth-of-type(2):checked~.{_C}-thinking,
.{_C}>input:nth-of-type(3):checked~.{_C}-details{{display:block}}
@supports selector(::details-content){{
.{_C}>details.{_C}-panel>summary{{display:none}}
.{_C}>details.{_C}-panel::details-content{{content-visibility:visible;display:contents}}
}}
.{_C}>.{_C}-notice{{order:-1;width:100%;padding:4px 12px;box-sizing:border-box;
background:#fff3c4;color:#3b2f00}}
.{_C}>.{_C}-thumbs{{order:-2;width:100%;padding:4px 8px 0;display:flex;gap:4px}}
.{_C}-thumbs img{{max-height:48px;max-width:96px;border:1px solid {_BORDER};border-radius:3px}}
.{_C}-trace{{white-space:pre-wrap;overflow-wrap:break-word;word-break:normal;
font-family:var(--jp-content-font-family,system-ui,sans-serif);font-size:0.95em;color:{_TEXT};
margin:0}}
.{_C}-code{{margin:8px 0;border:1px solid {_BORDER};border-radius:4px;background:{_CODE_BG};
overflow:hidden}}
.{_C}-code+.{_C}-code{{margin-top:12px}}
.{_C}-code-label{{font-size:0.8em;padding:1px 8px;color:{_MUTED};
border-bottom:1px solid {_BORDER};font-family:var(--jp-code-font-family,monospace)}}
.{_C}-code>pre{{margin:0;padding:6px 10px;overflow-x:auto;background:transparent;
color:{_TEXT}}}
.{_C}-answer math[display=block]{{margin:6px 0;overflow-x:auto}}
.{_C} a.{_C}-image-link{{font-style:italic}}
{_code_rules()}
</style>"""
