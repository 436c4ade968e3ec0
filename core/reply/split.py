"""Markdown-safe splitting of a long answer into messages a platform accepts.

Cuts prefer a paragraph break, then a line break, then a space, and fall back to a hard cut that never
falls inside a user-perceived character (surrogate pair, combining sequence, emoji ZWJ sequence, flag).
A cut inside a code block closes the fence at the end of the part and reopens it, with its language
tag, at the start of the next.

Splitting is prefix-stable: where a part ends depends only on the text up to one character past the
platform limit, so re-splitting a growing answer never changes a part that was already cut — the
streamer only re-edits messages whose text really changed.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

# Below this a reopened fence plus its closing leaves too little room for text.
MIN_MESSAGE_CHARS = 64
# Caps keep a reopened fence short whatever the model wrote (a longer closing fence still closes it).
_LANG_MAX = 16
_MARKER_MAX = 8
_NON_SPACE = re.compile(r"\S")
_ZWJ = "\u200d"


@dataclass(frozen=True, slots=True)
class _Fence:
    """An open code fence: its marker (``` or ~~~, possibly longer) and language tag."""

    marker: str
    lang: str

    @property
    def reopen(self) -> str:
        return f"{self.marker}{self.lang}\n"

    @property
    def close(self) -> str:
        return f"\n{self.marker}"


@dataclass(frozen=True, slots=True)
class _Cut:
    end: int  # this part is text[start:end] (trailing whitespace dropped)
    next: int  # the next part starts here
    fence: _Fence | None  # fence still open at the cut


def split_message(text: str, max_chars: int) -> list[str]:
    """Split `text` into parts of at most `max_chars` characters each (an empty text gives no parts)."""
    if max_chars < MIN_MESSAGE_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MESSAGE_CHARS}, got {max_chars}")
    parts: list[str] = []
    start, fence, n = 0, None, len(text)
    while True:
        if fence is None:
            while start < n and text[start] in "\r\n":
                start += 1
        if _NON_SPACE.search(text, start) is None:
            return parts
        head = fence.reopen if fence else ""
        budget = max_chars - len(head)
        if n - start <= budget:
            parts.append(head + text[start:].rstrip())
            return parts
        cut = _find_cut(text, start, budget, fence)
        body = text[start : cut.end].rstrip()
        parts.append(head + body + (cut.fence.close if cut.fence else ""))
        start, fence = cut.next, cut.fence


def close_fence(text: str) -> str:
    """`text` with its last code block closed if the text ends inside one."""
    fence = None
    for line in text.split("\n"):
        fence = _fence_after(line, fence)
    return text + fence.close if fence else text


def _find_cut(text: str, start: int, budget: int, fence: _Fence | None) -> _Cut:
    """The best place to end the part that starts at `start`; `text[start + budget]` exists."""
    limit = start + budget
    floor = start + budget // 3
    paragraph = line = word = None
    line_starts: list[int] = []
    line_fences: list[_Fence | None] = []
    pos, state = start, fence
    while pos < limit:
        line_starts.append(pos)
        line_fences.append(state)
        newline = text.find("\n", pos, limit)
        line_end = limit if newline == -1 else newline
        word = _word_cut(text, start, pos, line_end, limit, state) or word
        if newline == -1:
            break
        after = _fence_after(text[pos:newline], state)
        nxt = newline + 1
        fits = newline > start and newline - start + (len(after.close) if after else 0) <= budget
        # Never leave an empty code block behind: not right after an opening fence, and not right before
        # what may be the closing fence (only one character of look-ahead keeps the cut prefix-stable).
        inside_ok = after is None or (state is not None and text[nxt] not in "`~")
        if fits and inside_ok:
            line = _Cut(newline, nxt, after)
            if state is None and after is None and not text[pos:newline].strip() and pos > start:
                paragraph = _Cut(pos, nxt, None)
        state = after
        pos = nxt
    for choice in (paragraph, line):
        if choice is not None and choice.end >= floor:
            return choice
    return word or line or _hard_cut(text, start, limit, line_starts, line_fences)


def _word_cut(
    text: str, start: int, pos: int, line_end: int, limit: int, state: _Fence | None
) -> _Cut | None:
    """The last space of the line [pos, line_end) the part can end at, if any."""
    if text[pos : pos + 4].lstrip(" ")[:1] in ("`", "~"):
        return None  # maybe a fence line: cutting it would garble the fence
    stop = min(line_end, limit - (len(state.close) if state else 0))
    space = text.rfind(" ", pos, stop)
    while space > start:
        if _can_break(text, space + 1) and _NON_SPACE.search(text, start, space):
            return _Cut(space, space + 1, state)
        space = text.rfind(" ", pos, space)
    return None


def _hard_cut(
    text: str, start: int, limit: int, line_starts: list[int], line_fences: list[_Fence | None]
) -> _Cut:
    reserve = max((len(f.close) for f in line_fences if f), default=0)
    end = limit - reserve
    cut = end
    while cut > start + 1 and not _can_break(text, cut):
        cut -= 1
    if cut <= start + 1:
        # One "character" longer than a message (e.g. thousands of combining marks): cut it anyway,
        # but still never between the halves of a surrogate pair.
        cut = end - 1 if _is_surrogate_pair(text, end) else end
    state = line_fences[bisect_right(line_starts, cut) - 1]
    return _Cut(cut, cut, state)


def _fence_after(line: str, fence: _Fence | None) -> _Fence | None:
    """The fence state after `line` (without its newline), given the state before it."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return fence
    char = stripped[:1]
    if char not in ("`", "~"):
        return fence
    run = len(stripped) - len(stripped.lstrip(char))
    if run < 3:
        return fence
    rest = stripped[run:].strip()
    if fence is None:
        if char == "`" and "`" in rest:
            return None  # ```inline``` on one line is a code span, not a fence
        return _Fence(char * min(run, _MARKER_MAX), rest.split(maxsplit=1)[0][:_LANG_MAX] if rest else "")
    if char == fence.marker[0] and run >= len(fence.marker) and not rest:
        return None
    return fence


def _is_surrogate_pair(text: str, i: int) -> bool:
    return "\ud800" <= text[i - 1] <= "\udbff" and "\udc00" <= text[i] <= "\udfff"


def _is_extender(char: str) -> bool:
    """Characters that belong to the character before them."""
    if char == _ZWJ or "\ufe00" <= char <= "\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff":
        return True  # joiner, variation selectors, emoji skin tones
    if "\U000e0020" <= char <= "\U000e007f" or "\u1160" <= char <= "\u11ff":
        return True  # emoji tag sequences (subdivision flags), Hangul medial and final jamo
    return unicodedata.category(char) in ("Mn", "Me", "Mc")


def _is_regional_indicator(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _can_break(text: str, i: int) -> bool:
    """True if text may be cut between text[i - 1] and text[i]."""
    before, after = text[i - 1], text[i]
    if _is_surrogate_pair(text, i) or (before == "\r" and after == "\n") or before == _ZWJ:
        return False
    if _is_extender(after):
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while i - 1 - run >= 0 and _is_regional_indicator(text[i - 1 - run]):
            run += 1
        return run % 2 == 0  # flags are pairs: an odd run means `before` starts a flag
    return True
