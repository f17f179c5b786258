"""`{name}` references in a cell: images become image parts where written, values text.

Pure: the namespace and the image test are passed in. Only a reference whose root name
exists is replaced; every other brace (JSON, dicts, code, `{undefined}`, `{{undefined}}`)
stays exactly as written. `{{name}}` is the escape for a literal `{name}` where `name` exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import InputError

_REF = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\])*"
_TOKEN = re.compile(r"\{\{(" + _REF + r")\}\}|\{(" + _REF + r")\}")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+)\]")


def resolve(ref: str, namespace: Mapping[str, Any]) -> Any:
    """Evaluate `name.attr[0]` against the namespace; raises InputError on a bad step."""
    root = re.match(r"[A-Za-z_]\w*", ref)
    assert root is not None
    value = namespace[root.group(0)]
    for step in _STEP.finditer(ref, root.end()):
        attr, index = step.groups()
        try:
            value = getattr(value, attr) if attr else value[int(index)]
        except Exception as exc:
            raise InputError(
                f"{{{ref}}} in the cell could not be evaluated: {type(exc).__name__}: {exc}. "
                "Fix the reference, or write {{" + ref + "}} for literal braces."
            ) from None
    return value


def split_references(
    text: str, namespace: Mapping[str, Any], is_image: Callable[[Any], bool]
) -> list[str | tuple[str, Any]]:
    """Cell text -> text pieces and (expression, image value) pairs, in written order."""
    parts: list[str | tuple[str, Any]] = []
    buffer: list[str] = []
    last = 0
    for match in _TOKEN.finditer(text):
        escaped, ref = match.groups()
        buffer.append(text[last : match.start()])
        last = match.end()
        if escaped is not None:
            # `{{name}}` is the escape only where `{name}` would be a reference; a template
            # such as `{{title}}` with no `title` defined is sent exactly as written.
            name = re.match(r"[A-Za-z_]\w*", escaped)
            defined = name is not None and name.group(0) in namespace
            buffer.append("{" + escaped + "}" if defined else match.group(0))
            continue
        root = re.match(r"[A-Za-z_]\w*", ref)
        if root is None or root.group(0) not in namespace:
            buffer.append(match.group(0))  # not a reference: leave as written
            continue
        value = resolve(ref, namespace)
        if is_image(value):
            parts.append("".join(buffer))
            buffer = []
            parts.append((ref, value))
        else:
            buffer.append(str(value))
    buffer.append(text[last:])
    parts.append("".join(buffer))
    return [p for p in parts if p != ""]
