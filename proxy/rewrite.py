"""ModelNameRewriter: put the asked model name in place of whatever model the upstream named.

Pure and stdlib-only. It follows the JSON structure of a streamed body (one JSON document, an
SSE stream of `data:` documents, or JSON lines) with a small incremental scanner and never
parses or buffers it: bytes go out as they arrive, except an unfinished model value, which is
held back until its closing quote. The values replaced are the response's own model fields:

- the top-level `"model"` of every JSON document (OpenAI, llama-server, vLLM, Anthropic JSON);
- `"model"` directly inside a top-level `"message"` or `"response"` object (Anthropic's
  `message_start` event, the Responses API's `response.*` events).

A `"model"` anywhere else (inside `choices`, tool arguments, or a key inside text, which JSON
escapes anyway) is left alone. Whatever the upstream wrote there (its own name, a GGUF path,
an alias) becomes the asked name, so a client never learns which backend or A/B arm served it.
"""

from __future__ import annotations

import json
import re

# A model value longer than this is not a model name; it passes unchanged, never held back.
MAX_VALUE_BYTES = 4096

_MODEL = b"model"
_ENVELOPES = frozenset({b"message", b"response"})
_KEY_LIMIT = max(len(_MODEL), *map(len, _ENVELOPES))  # a longer key cannot be one of these

# What an object whose keys matter expects next.
_KEY, _COLON, _VALUE, _AFTER = range(4)
# The role of the string being scanned (_NONE: not inside a string).
_NONE, _KEY_STRING, _MODEL_STRING, _OTHER_STRING = range(4)

_QUOTE, _BACKSLASH, _NEWLINE = ord('"'), ord("\\"), ord("\n")
_COLON_BYTE, _COMMA = ord(":"), ord(",")
_OPEN = frozenset(b"{[")
_LBRACE = ord("{")

# A whole JSON string, quotes included, without raw newlines (never valid inside one).
_STRING = rb'"[^"\\\n]*(?:\\[^\n][^"\\\n]*)*"'
_ATOM = rb"(?:%s|[-+.0-9A-Za-z]+)" % _STRING  # a string or a scalar value
_GAP = rb"[ \t\r]*"  # whitespace except newlines, which _at_newline must see
_PLAIN = rb'[^"{}\[\]\n]+'  # bytes that never change the state
# The inside of a string up to (not including) its closing quote, a raw newline (the scanner
# starts over there) or a lone backslash at the end of the data.
_STRING_BODY = re.compile(rb'[^"\\\n]*(?:\\[^\n][^"\\\n]*)*')
# Where keys do not matter: skip whole strings and plain bytes up to a bracket or newline.
_SKIP = re.compile(rb"(?:%s|%s)*+" % (_PLAIN, _STRING))
# Where keys matter: the next byte that can change the state.
_STRUCTURE = re.compile(rb'["{}\[\]:,\n]')
# Fast paths where keys matter: many `"key": atom,` members at once whose key is not one that
# matters (model, message, response: see _MODEL and _ENVELOPES)...
_PLAIN_MEMBERS = re.compile(
    rb'(?:%s"(?!(?:model|message|response)")[^"\\\n]*"%s:%s%s%s,)*+'
    % (_GAP, _GAP, _GAP, _ATOM, _GAP)
)
# ...then one member: `"key": ` and, if it is there in full, an atom and the comma after it.
_MEMBER = re.compile(rb'%s"([^"\\\n]*)"%s:%s(?:(%s)%s,)?' % (_GAP, _GAP, _GAP, _ATOM, _GAP))


def _nested(levels: int) -> bytes:
    """A container body (possessive: no backtracking) with at most `levels` nested levels."""
    inner = rb"(?:%s|%s)*+" % (_PLAIN, _STRING)
    for _ in range(levels):
        inner = rb"(?:%s|%s|\{%s\}|\[%s\])*+" % (_PLAIN, _STRING, inner, inner)
    return inner


# A whole container value (`choices`, `usage`, `content`) up to four levels deep and without
# newlines, skipped in one step; anything else is followed bracket by bracket.
_CONTAINER = re.compile(rb"\{%s\}|\[%s\]" % (_nested(3), _nested(3)))


def _plain_events(chunk: bytes) -> bool:
    """Whole SSE events (ending in a blank line) without a `"model"` key: common for
    Anthropic and Responses API deltas, passed on without a scan."""
    return chunk.endswith((b"\n\n", b"\n\r\n")) and b'"model"' not in chunk


def _json_forms(name: str) -> tuple[bytes, bytes]:
    """`name` as a JSON string: raw UTF-8, and \\u-escaped ASCII."""
    return json.dumps(name, ensure_ascii=False).encode(), json.dumps(name).encode()


class ModelNameRewriter:
    """Rewrites the response's model fields to `asked` across arbitrary chunk boundaries.

    Only an unfinished model value is held back (at most MAX_VALUE_BYTES); every other byte is
    returned by the feed() call that brought it. The output does not depend on how the stream
    was split. `served` (the name swapgate sent upstream) is not needed, because any value is
    replaced; it is accepted so existing callers keep working.
    """

    __slots__ = (
        "_asked",
        "_asked_ascii",
        "_depth",
        "_envelope",
        "_escape",
        "_expect",
        "_held",
        "_hold_from",
        "_key",
        "_keybuf",
        "_mark",
        "_newline",
        "_out",
        "_string",
        "_top_object",
    )

    def __init__(self, served: str | None, asked: str) -> None:
        del served  # any upstream name is replaced; see the class docstring
        self._asked, self._asked_ascii = _json_forms(asked)
        self._out: list[bytes] = []
        self._mark = 0  # where the unsent part of the current chunk starts
        self._hold_from = 0  # where the held model value starts in the current chunk
        self._held = b""  # the model value's bytes from earlier chunks
        self._reset()

    def _reset(self) -> None:
        """Back to "between documents" (also the recovery from input that is not JSON)."""
        self._depth = 0
        self._top_object = False  # the depth-1 container is an object
        self._envelope = False  # the depth-2 container is a top-level message/response object
        self._expect = _KEY
        self._key = b""
        self._keybuf = b""
        self._string = _NONE
        self._escape = False  # the previous chunk ended inside a string on a backslash
        self._newline = 0  # 1: the previous chunk ended on "\n"; 2: on "\n\r"

    def feed(self, chunk: bytes) -> bytes:
        """The rewritten bytes that are safe to send now; b"" while a model value is pending."""
        if not chunk:
            return b""
        if self._depth == 0 and not self._string and _plain_events(chunk):
            # Nothing to rewrite, and the final blank line resets the scanner: this is the
            # state a full scan would leave (with the last "\n" pending).
            self._reset()
            self._newline = 1
            return chunk
        self._out = []
        self._mark = self._hold_from = 0
        pos = self._resume(chunk)
        end = len(chunk)
        while pos < end:
            if self._string:
                pos = self._string_step(chunk, pos)
            elif (self._depth == 1 and self._top_object) or (self._depth == 2 and self._envelope):
                pos = self._object_step(chunk, pos)
            else:
                pos = self._skip_step(chunk, pos)
        return self._end_chunk(chunk)

    def flush(self) -> bytes:
        """Whatever is still held back (an unfinished value, unchanged); call once at the end."""
        tail = self._held
        self._held = b""
        self._reset()
        return tail

    # ---- chunk boundaries ------------------------------------------------------------------

    def _resume(self, data: bytes) -> int:
        """Finish what the previous chunk left open at its end; the position to go on from."""
        newline, self._newline = self._newline, 0
        if newline and (data[:1] == b"\n" or (newline == 1 and data[:2] == b"\r\n")):
            self._reset()  # a blank line: an SSE event ends, whatever the JSON inside it did
        elif newline == 1 and data == b"\r":
            self._newline = 2
        if not self._escape:
            return 0
        self._escape = False
        if data[0] == _NEWLINE:  # a backslash before a raw newline: not JSON
            self._abandon_string(0)
            return 0
        if self._string == _KEY_STRING:
            self._keybuf += data[:1]
        return 1

    def _end_chunk(self, data: bytes) -> bytes:
        if self._string == _MODEL_STRING:
            self._held += data[self._hold_from :]
            if len(self._held) >= MAX_VALUE_BYTES:  # too long for a name: let it through
                self._out.append(self._held)
                self._held = b""
                self._string = _OTHER_STRING
        else:
            self._out.append(data[self._mark :])
        return b"".join(self._out)

    # ---- scanning --------------------------------------------------------------------------

    def _skip_step(self, data: bytes, pos: int) -> int:
        """Outside the objects whose keys matter: only brackets, strings and newlines count.

        Returns when a string starts or the scan is back in an object whose keys matter."""
        size = len(data)
        depth = self._depth
        # `*` always matches, so match() never returns None here.
        while (at := _SKIP.match(data, pos).end()) < size:  # type: ignore[union-attr]
            byte = data[at]
            pos = at + 1
            if byte == _QUOTE:  # a string that does not end in this chunk (or is broken)
                self._depth = depth
                self._string = _OTHER_STRING
                return pos
            if byte == _NEWLINE:
                self._depth = depth
                self._at_newline(data, at)
                depth = self._depth
            elif byte in _OPEN:
                if depth == 0:  # a document starts
                    self._open(byte)
                    return pos
                depth += 1
            elif depth:
                depth -= 1
                if (depth == 1 and self._top_object) or (depth == 2 and self._envelope):
                    self._depth = depth  # its expect was set to _AFTER when this value opened
                    return pos
        self._depth = depth
        return size

    def _object_step(self, data: bytes, pos: int) -> int:
        """Inside a top-level object (or its message/response object): follow keys and values.

        Returns when a string starts or a bracket or newline may have changed the mode."""
        size = len(data)
        while pos < size:
            if self._expect == _KEY:
                pos = _PLAIN_MEMBERS.match(data, pos).end()  # type: ignore[union-attr]
                if (member := _MEMBER.match(data, pos)) is not None:
                    pos = self._member(data, member)
                    continue
            found = _STRUCTURE.search(data, pos)
            if found is None:
                return size
            at = found.start()
            byte = data[at]
            pos = at + 1
            if byte == _COMMA:
                self._expect = _KEY
            elif byte == _COLON_BYTE:
                if self._expect == _COLON:
                    self._expect = _VALUE
            elif byte == _QUOTE:
                self._open_string(data, at)
                return pos
            elif (skipped := self._skippable(data, at, byte)) is not None:
                pos = skipped
            else:
                self._structural(data, at, byte)
                return pos
        return pos

    def _skippable(self, data: bytes, at: int, byte: int) -> int | None:
        """Where a container value at `at` ends, if it is whole here and holds nothing to
        rewrite (only a top-level message/response object does); else None."""
        if byte not in _OPEN or self._expect != _VALUE:
            return None
        if self._depth == 1 and byte == _LBRACE and self._key in _ENVELOPES:
            return None
        found = _CONTAINER.match(data, at)
        if found is None:
            return None
        self._expect = _AFTER
        return found.end()

    def _structural(self, data: bytes, at: int, byte: int) -> None:
        if byte == _NEWLINE:
            self._at_newline(data, at)
        elif byte in _OPEN:
            self._open(byte)
        else:
            self._close()

    def _member(self, data: bytes, member: re.Match[bytes]) -> int:
        """One `"key": value,` matched whole, or just its `"key": ` (then the value follows)."""
        self._key = member[1]
        value = member[2]
        if value is None:
            self._expect = _VALUE
            return member.end()
        if self._key == _MODEL and value[0] == _QUOTE and len(value) <= MAX_VALUE_BYTES:
            start = member.start(2)
            self._out += (data[self._mark : start], self._replacement(value))
            self._mark = member.end(2)
        self._expect = _KEY  # the comma is part of the match
        return member.end()

    def _open_string(self, data: bytes, at: int) -> None:
        if self._expect == _KEY:
            self._string = _KEY_STRING
            self._keybuf = b""
        elif self._expect == _VALUE and self._key == _MODEL:
            self._string = _MODEL_STRING
            self._out.append(data[self._mark : at])
            self._hold_from = at
        else:
            self._string = _OTHER_STRING

    def _string_step(self, data: bytes, pos: int) -> int:
        """Inside a string: find its end in this chunk, or note that it goes on."""
        end = _STRING_BODY.match(data, pos).end()  # type: ignore[union-attr]  # `*` matches
        size = len(data)
        if end < size and data[end] == _QUOTE:
            self._close_string(data, pos, end)
            return end + 1
        if end == size or (end == size - 1 and data[end] == _BACKSLASH):
            self._escape = end < size
            if self._string == _KEY_STRING and len(self._keybuf) <= _KEY_LIMIT:
                self._keybuf += data[pos:]
            return size
        self._abandon_string(end)  # a raw newline inside a string: this is not JSON
        return end

    def _close_string(self, data: bytes, pos: int, end: int) -> None:
        """The string's closing quote is at `end`."""
        role, self._string = self._string, _NONE
        if role == _KEY_STRING:
            self._key = self._keybuf + data[pos:end] if len(self._keybuf) <= _KEY_LIMIT else b""
            self._expect = _COLON
            return
        if role == _MODEL_STRING:
            value = self._held + data[self._hold_from : end + 1]
            self._held = b""
            self._out.append(self._replacement(value) if len(value) <= MAX_VALUE_BYTES else value)
            self._mark = end + 1
        if self._expect == _VALUE:
            self._expect = _AFTER

    def _abandon_string(self, at: int) -> None:
        """Input that cannot be JSON: send any held bytes unchanged and start over at `at`."""
        if self._string == _MODEL_STRING:
            self._out.append(self._held)
            self._held = b""
            self._mark = self._hold_from
        self._reset()

    def _at_newline(self, data: bytes, at: int) -> None:
        """A newline outside strings: a blank line (SSE event boundary) starts over."""
        after = data[at + 1 : at + 3]
        if after[:1] == b"\n" or after == b"\r\n":
            self._reset()
        elif not after:
            self._newline = 1
        elif after == b"\r" and at + 2 == len(data):
            self._newline = 2

    def _open(self, byte: int) -> None:
        if self._depth == 0:
            self._top_object = byte == _LBRACE
            self._expect = _KEY
        elif self._expect == _VALUE and (
            (self._depth == 1 and self._top_object) or (self._depth == 2 and self._envelope)
        ):
            if self._depth == 1 and byte == _LBRACE and self._key in _ENVELOPES:
                self._envelope = True
                self._expect = _KEY
            else:
                self._expect = _AFTER  # what it holds is skipped; back here, a comma follows
        self._depth += 1

    def _close(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 1 and self._envelope:
            self._envelope = False
            self._expect = _AFTER

    def _replacement(self, value: bytes) -> bytes:
        """The asked name, \\u-escaped if the upstream escaped its (ASCII-only) value."""
        return self._asked_ascii if b"\\u" in value and value.isascii() else self._asked
