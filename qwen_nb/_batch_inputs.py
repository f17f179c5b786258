"""What `batch()` accepts, turned into a lazy stream of jobs.

Lists, tuples and pandas Series are checked whole before anything is sent (cheap: no image
is opened); generators and other iterables are read one item at a time as workers free up,
so a million paths never sit in memory at once. A folder or a glob lists its file names
(sorted), and each image is opened only by the worker that sends it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ._errors import InputError

_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Job:
    """One request to make: its place in the input, prompt, image values and their names."""

    index: int
    prompt: str
    values: tuple[Any, ...]
    names: tuple[str, ...]
    video: Any = None  # batch(videos=[...]): this request's video (as ask()'s video=)


def plan_jobs(prompts: Any, images: Any) -> tuple[Iterator[Job], int | None]:
    """(jobs, how many or None when the input is a lazy iterable); refuses a bad shape now."""
    if images is not None:
        images = _image_source(images)
    make_pairs, total = _pairing(prompts, images)
    if total is not None:
        for number, pair in enumerate(make_pairs()):
            _check_pair(number, pair)  # the whole input, before anything is sent
    return _jobs(make_pairs()), total


def _pairing(prompts: Any, images: Any) -> tuple[Callable[[], Iterable[Any]], int | None]:
    """A maker of (prompt, image) pairs (sized inputs are walked twice), and their count."""
    if isinstance(prompts, str):
        if images is None:
            return (lambda: [(prompts, None)]), 1
        return (lambda: ((prompts, value) for value in images)), _length(images)
    if not _is_iterable(prompts):
        raise InputError(
            f"batch() takes a prompt or a list of prompts, not {type(prompts).__name__}."
        )
    total = _length(prompts)
    if images is None:
        return (lambda: (p if isinstance(p, tuple) else (p, None) for p in prompts)), total
    image_total = _length(images)
    if total is None or image_total is None:
        raise InputError(
            "Prompts and images read lazily cannot be paired one to one; pass one prompt "
            "with images=..., or an iterable of (prompt, image) pairs."
        )
    if total != image_total:
        raise InputError(
            f"{total} prompts but {image_total} images: give one image (or list of images) "
            "per prompt, or pass pairs [(prompt, image), ...]."
        )
    return (lambda: zip(prompts, images, strict=True)), total


def _jobs(pairs: Iterable[Any]) -> Iterator[Job]:
    position = 0
    for number, pair in enumerate(pairs):
        _check_pair(number, pair)
        prompt, value = pair
        values = (
            [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]
        )
        names = []
        for item in values:
            position += 1
            names.append(image_name(item, position))
        yield Job(number, prompt, tuple(values), tuple(names))


def _check_pair(number: int, pair: Any) -> None:
    if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str):
        raise InputError(
            f"Item {number}: expected a prompt (text) or a (prompt, image) pair, got "
            f"{_clip(repr(pair))}."
        )


def _image_source(images: Any) -> Any:
    """images= as given, or the sorted files of a folder or glob."""
    if hasattr(images, "columns") and hasattr(images, "iloc"):
        raise InputError(
            "images= got a whole DataFrame; pass one column of it, e.g. images=df['path']."
        )
    if isinstance(images, os.PathLike):
        images = os.fspath(images)
    if isinstance(images, bytes):
        raise InputError(
            "images= takes a list (one entry per request), a folder or a glob, not bytes; "
            "for one image pass images=[data]."
        )
    if isinstance(images, str):
        return _files_of(images)
    if not _is_iterable(images):
        raise InputError(
            "images= takes a list (one entry per request), e.g. batch(prompt, images=[a, b]), "
            f"a folder, a glob such as 'photos/*.jpg', or an iterable; not "
            f"{type(images).__name__}."
        )
    return images


def _files_of(where: str) -> list[str]:
    from .media.sniff import has_image_extension

    expanded = os.path.expanduser(where)
    if os.path.isdir(expanded):
        with os.scandir(expanded) as entries:
            found = sorted(
                entry.path for entry in entries
                if entry.is_file() and has_image_extension(entry.name)
            )
        if not found:
            raise InputError(f"images={where!r}: the folder holds no image files.")
        return found
    if _GLOB_CHARACTERS & set(where):
        found = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
        if not found:
            raise InputError(f"images={where!r} matched no files.")
        return found
    raise InputError(
        f"images={where!r} is neither a folder nor a glob (such as 'photos/*.jpg'). For one "
        "image, pass a list: images=[path]."
    )


def _is_iterable(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def _length(value: Any) -> int | None:
    """len() of a list, tuple, Series...; None for generators and other one-pass iterables."""
    if isinstance(value, Iterator):
        return None
    try:
        return len(value)
    except TypeError:
        return None


def image_name(value: Any, position: int) -> str:
    """A short name for tables: a file or URL's last part, else "image N"."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and not value.startswith("data:"):
        name = value.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        return name or value
    filename = getattr(value, "filename", None)  # PIL images opened from a file
    if isinstance(filename, str) and filename:
        return os.path.basename(filename)
    return f"image {position}"


def _clip(text: str, limit: int = 50) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
