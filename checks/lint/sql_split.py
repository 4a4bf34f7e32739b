"""Split a ``.sql`` file into the statements psql would send, one at a time, in linear time.

psql, not the server, decides where a script's statements end: at a semicolon outside
quotes, comments, parentheses and ``BEGIN ... END`` bodies (``BEGIN ATOMIC`` functions),
with backslash meta-commands (``\\set``, ``\\i``, ``\\gexec``) taken out of the SQL and
``COPY ... FROM STDIN`` followed by data lines up to ``\\.``. This module mirrors psql's
lexer (``psqlscan.l``) for those decisions only; every statement then goes to PostgreSQL's
own parser, so a boundary drawn in the wrong place shows up as a parse error, never as a
statement nobody looked at.

Cost: a handful of regular-expression searches per statement (the text between the
characters that matter is skipped in C), and lines are counted incrementally, so a 50 MB
file is split in seconds, in memory proportional to one statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The only characters that can change where a statement ends.
_INTERESTING = re.compile(r"['\"$\-/\\;()]")
_IDENT_CHAR = re.compile(r"[\w$\u0080-\U0010ffff]")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][\w\u0080-\U0010ffff]*)?\$")
_STD_STRING_END = re.compile(r"[^']*(?:''[^']*)*'")
_ESC_STRING_END = re.compile(r"(?:[^'\\]|\\.|'')*'", re.S)
_IDENT_END = re.compile(r'[^"]*(?:""[^"]*)*"')
_COMMENT_TOKEN = re.compile(r"/\*|\*/")
_WS_OR_COMMENT = re.compile(r"(?:\s+|--[^\n\r]*)+")
_COMMENT_END = re.compile(r"[\n\r]")
# psql counts BEGIN / CASE (not as a statement's first word) against END; only statements
# that contain one of these words need the slower word-by-word pass.
_BEGIN_CASE = re.compile(r"(?i)(?<![\w$])(?:begin|case)(?![\w$])")
_WORD = re.compile(r"[A-Za-z_\u0080-\U0010ffff][\w$\u0080-\U0010ffff]*")
_WORD_MODE = re.compile(r"['\"$\-/\\;()]|[A-Za-z_\u0080-\U0010ffff]")
_META_NAME = re.compile(r"\\([A-Za-z!?]*)")
# Meta-commands that send the query buffer, like a semicolon.
_SENDS = {"g", "gx", "gset", "gexec", "gdesc", "crosstabview", "watch"}
# ... of which these only show or store the result (nothing for the linter to say).
_QUIET = {"g", "gx", "gset", "gdesc", "crosstabview", "watch"}


@dataclass(frozen=True, slots=True)
class Chunk:
    """One statement as psql sends it, or one psql meta-command (``meta`` set)."""

    text: str
    line: int  # line of its first token
    end_line: int
    meta: str | None = None  # meta-command name, e.g. "set", "i", "gexec"


class Splitter:
    """Iterate with :meth:`next_chunk`; after a ``COPY ... FROM STDIN`` call
    :meth:`skip_copy_data`, as psql reads the data that follows as data."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1  # line number at self.pos
        self._pending: list[Chunk] = []

    # ----------------------------------------------------------------- positions and lines
    def _advance(self, to: int) -> None:
        self.line += self.text.count("\n", self.pos, to)
        self.pos = to

    def _line_at(self, at: int) -> int:
        return self.line + self.text.count("\n", self.pos, at)

    def _skip_block_comment(self, at: int) -> int:
        """End of the (nested) ``/* */`` comment starting at ``at``; -1 if unterminated."""
        depth, p = 0, at
        while True:
            m = _COMMENT_TOKEN.search(self.text, p)
            if m is None:
                return -1
            depth += 1 if m.group() == "/*" else -1
            p = m.end()
            if depth == 0:
                return p

    def _skip_quoted(self, at: int) -> int:
        """End of the string, quoted identifier or dollar-quoted body starting at ``at``
        (the position after it), or -1 when the character there starts none of them."""
        text = self.text
        c = text[at]
        if c == "'":
            escaped = at > 0 and text[at - 1] in "eE" and not (
                at > 1 and _IDENT_CHAR.match(text, at - 2))
            m = (_ESC_STRING_END if escaped else _STD_STRING_END).match(text, at + 1)
            return m.end() if m else len(text)
        if c == '"':
            m = _IDENT_END.match(text, at + 1)
            return m.end() if m else len(text)
        if c == "$":
            if at > 0 and _IDENT_CHAR.match(text, at - 1):
                return -1  # part of an identifier such as foo$bar
            m = _DOLLAR_TAG.match(text, at)
            if m is None:
                return -1  # a parameter such as $1
            close = text.find(m.group(), m.end())
            return len(text) if close < 0 else close + len(m.group())
        if c == "-" and text.startswith("--", at):
            m = _COMMENT_END.search(text, at)  # PostgreSQL ends a comment at \n or \r
            return m.start() if m else len(text)
        if c == "/" and text.startswith("/*", at):
            end = self._skip_block_comment(at)
            return len(text) if end < 0 else end
        return -1

    # ----------------------------------------------------------------- statements
    def next_chunk(self) -> Chunk | None:
        """The next statement or meta-command; None at the end of the text."""
        text, n = self.text, len(self.text)
        while not self._pending:
            start = self._first_token(self.pos)
            if start >= n:
                self._advance(n)
                return None
            self._advance(start)
            if text[start] == ";":  # an empty statement
                self._advance(start + 1)
                continue
            self._statement(start)
        return self._pending.pop(0)

    def _first_token(self, p: int) -> int:
        text, n = self.text, len(self.text)
        while p < n:
            m = _WS_OR_COMMENT.match(text, p)
            if m:
                p = m.end()
                continue
            if text.startswith("/*", p):
                end = self._skip_block_comment(p)
                if end < 0:
                    return p  # unterminated: the server rejects it, so it is a statement
                p = end
                continue
            return p
        return n

    def _statement(self, start: int) -> None:
        """Queue the statement starting at ``start``, after the meta-commands inside it
        (psql runs those as it reads them, before it sends the statement)."""
        text, n = self.text, len(self.text)
        queued = len(self._pending)
        pieces: list[tuple[int, int]] = []  # text spans, without meta-commands
        piece_start, p, parens = start, start, 0
        words = False  # word-by-word mode once BEGIN/CASE bodies may be open
        depth, idents = 0, 0
        while True:
            m = (_WORD_MODE if words else _INTERESTING).search(text, p)
            if m is None:
                end = n
                break
            at, c = m.start(), m.group()
            if words and (c.isalpha() or c == "_" or ord(c) >= 0x80):
                w = _WORD.match(text, at)
                assert w is not None
                idents += 1
                word = w.group().lower()
                if word in ("begin", "case") and idents > 1:
                    depth += 1
                elif word == "end" and depth > 0:
                    depth -= 1
                p = w.end()
                continue
            skipped = self._skip_quoted(at)
            if skipped >= 0:
                p = skipped
                continue
            if c == "(":
                parens += 1
            elif c == ")":
                parens = max(0, parens - 1)
            elif c == "\\":
                meta = self._meta(at)
                pieces.append((piece_start, at))
                if meta.meta in _SENDS or meta.meta == "r":
                    sql = "" if meta.meta == "r" else self._join(pieces).strip()
                    if sql:
                        self._pending.append(Chunk(sql, self._line_at(start), self._line_at(at)))
                    if meta.meta not in _QUIET:
                        self._pending.append(meta)
                    self._advance(self._line_end(at))
                    return
                # Run now; the statement around it (if any) goes on after the line.
                self._pending.append(meta)
                if all(not self.text[a:b].strip() for a, b in pieces):
                    self._advance(self._line_end(at))
                    return
                piece_start = p = self._line_end(at)
                continue
            elif c == ";" and parens == 0:
                if not words and _BEGIN_CASE.search(text, start, at):
                    # Recount from the start, word by word: a BEGIN ATOMIC body may be open.
                    words, depth, idents, parens, p = True, 0, 0, 0, start
                    pieces, piece_start = [], start
                    del self._pending[queued:]
                    continue
                if depth == 0:
                    end = at
                    break
            p = at + 1
        pieces.append((piece_start, end))
        sql = self._join(pieces).rstrip()
        if sql.strip():
            self._pending.append(Chunk(sql, self._line_at(start), self._line_at(end)))
        self._advance(min(end + 1, n))

    def _join(self, pieces: list[tuple[int, int]]) -> str:
        if len(pieces) == 1:
            return self.text[pieces[0][0]:pieces[0][1]]
        # Keep the newlines of what was cut out, so line numbers inside stay right.
        out, last = [], None
        for a, b in pieces:
            if last is not None:
                out.append("\n" * self.text.count("\n", last, a))
            out.append(self.text[a:b])
            last = b
        return "".join(out)

    def _line_end(self, at: int) -> int:
        nl = self.text.find("\n", at)
        return len(self.text) if nl < 0 else nl

    def _meta(self, at: int) -> Chunk:
        m = _META_NAME.match(self.text, at)
        name = m.group(1) if m else ""
        line = self._line_at(at)
        return Chunk(self.text[at:self._line_end(at)].rstrip(), line, line, meta=name or "\\")

    def skip_copy_data(self) -> int:
        """Skip the data of a ``COPY ... FROM STDIN`` up to and including its ``\\.`` line
        (or the end of the text); return the line after it."""
        text = self.text
        p = self._line_end(self.pos)  # the data starts on the line after the statement
        while p < len(text):
            p += 1
            nl = text.find("\n", p)
            end = len(text) if nl < 0 else nl
            if text[p:end].rstrip("\r") == "\\.":
                self._advance(end)
                return self.line + 1
            p = end
        self._advance(len(text))
        return self.line
