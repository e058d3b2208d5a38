"""ModelNameRewriter: swap the served model name for the asked one in a streamed JSON body.

Pure and stdlib-only. It scans bytes for the literal `"model":"<served>"` (with or without one
space after the colon) and never parses JSON, so SSE events pass through as they arrive.
"""

from __future__ import annotations

import json
import re


def _json_forms(name: str) -> list[bytes]:
    """Every way a JSON encoder may write `name`: raw UTF-8 and \\u-escaped ASCII."""
    forms = [json.dumps(name, ensure_ascii=False).encode(), json.dumps(name).encode()]
    return list(dict.fromkeys(forms))


class ModelNameRewriter:
    """Rewrites `"model":"<served>"` to `"model":"<asked>"` across chunk boundaries.

    Only a tail that could still grow into a match is held back (at most the longest pattern
    minus one byte); a chunk whose end cannot start a match goes out whole and at once.
    """

    __slots__ = ("_patterns", "_regex", "_replacements", "_tail")

    def __init__(self, served: str, asked: str) -> None:
        served_forms = _json_forms(served)
        # Keep the encoding the upstream chose: escaped in, escaped out.
        asked_forms = _json_forms(asked)
        self._replacements = {
            form: asked_forms[min(i, len(asked_forms) - 1)] for i, form in enumerate(served_forms)
        }
        alternatives = b"|".join(re.escape(form) for form in served_forms)
        self._regex = re.compile(b'"model":( ?)(' + alternatives + b")")
        self._patterns = [b'"model":' + gap + form for form in served_forms for gap in (b"", b" ")]
        self._tail = b""

    def feed(self, chunk: bytes) -> bytes:
        """The rewritten bytes that are safe to send now; may be b"" while a match is pending."""
        data = self._tail + chunk if self._tail else chunk
        out: list[bytes] = []
        start = 0
        for found in self._regex.finditer(data):
            out += (data[start : found.start()], b'"model":', found[1])
            out.append(self._replacements[found[2]])
            start = found.end()
        hold = self._pending(data, start)
        out.append(data[start : len(data) - hold])
        self._tail = data[len(data) - hold :]
        return b"".join(out)

    def flush(self) -> bytes:
        """Whatever is still held back; call once at the end of the stream."""
        tail, self._tail = self._tail, b""
        return tail

    def _pending(self, data: bytes, start: int) -> int:
        """Length of the longest suffix of data[start:] that is a proper prefix of a pattern."""
        longest = max(len(p) for p in self._patterns) - 1
        first = max(start, len(data) - longest)
        # Every pattern begins with a quote, so only suffixes starting at one can be pending.
        at = data.find(b'"', first)
        while at != -1:
            suffix = data[at:]
            if any(p.startswith(suffix) for p in self._patterns):
                return len(data) - at
            at = data.find(b'"', at + 1)
        return 0
