"""Bytes from an upload to clean text.

Checklists come from many editors and wikis: UTF-8 with or without a BOM, UTF-16 from
Windows tools, Windows-1252 from old Word exports, and text that was already decoded with
the wrong charset once ("ðŸš€" for 🚀) before it was saved as UTF-8 again. Repair touches
only lines that are visibly broken, so correct text (`&lt;script&gt;`, curly quotes) is
never "improved".
"""

from __future__ import annotations

import codecs
import re
import unicodedata

import ftfy
import ftfy.badness

from .tree import ParseError

NOT_TEXT = "not a text file"


def _latin1_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    # cp1252 leaves five bytes undefined; they still stand for something (usually half of a
    # mis-decoded UTF-8 sequence that ftfy can put back together), so keep them as latin-1.
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("deploycheck-latin1", _latin1_fallback)

# C0 controls that never appear in text files (tab, LF, VT, FF, CR and ESC do).
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def decode(data: bytes) -> str:
    """Decode an uploaded file and repair it; raise ParseError when it is not text at all."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ParseError(NOT_TEXT, None) from None
    else:
        if b"\x00" in data:
            raise ParseError(NOT_TEXT, None)
        data = data.removeprefix(codecs.BOM_UTF8)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Decide per line: a file edited in two tools can be UTF-8 except for one
            # line that an old editor saved as Windows-1252.
            text = "\n".join(_decode_line(line) for line in data.split(b"\n"))
    text = text.removeprefix("\ufeff")
    # Images and archives renamed to .md are full of control bytes; mojibake is not.
    if "\x00" in text or len(_BINARY_CONTROLS.findall(text)) * 100 > len(text):
        raise ParseError(NOT_TEXT, None)
    return repair_text(text)


def repair_text(text: str) -> str:
    """Normalise line ends and undo mojibake on the lines that show it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(_repair_line(line) for line in text.split("\n"))


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("cp1252", errors="deploycheck-latin1")


def _repair_line(line: str) -> str:
    if line.isascii():
        return line
    if ftfy.badness.is_bad(line):
        line = ftfy.fix_encoding(line)
    return _fix_mac_roman(line)


# Characters Mac Roman has above 0x7F; a run of them may be UTF-8 bytes shown as Mac Roman.
_MAC_ROMAN_HIGH = bytes(range(0x80, 0x100)).decode("mac_roman")
_MAC_ROMAN_RUN = re.compile("[" + re.escape(_MAC_ROMAN_HIGH) + "]{3,}")
# Only 3- and 4-byte sequences (symbols, emoji) are repaired: a two-character run such as
# "“é" is also valid UTF-8 once re-encoded and would be mangled by a bolder rule.
_UTF8_LONG = re.compile(rb"[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _fix_mac_roman(line: str) -> str:
    """ftfy does not undo Mac Roman mojibake (`\\uf8ffüöÄ` for 🚀, `‚úÖ` for ✅)."""

    def fix_run(match: re.Match[str]) -> str:
        raw = match.group().encode("mac_roman")
        out: list[str] = []
        pos = 0
        for seq in _UTF8_LONG.finditer(raw):
            out.append(raw[pos : seq.start()].decode("mac_roman"))
            decoded = _utf8_symbol(seq.group())
            out.append(decoded if decoded is not None else seq.group().decode("mac_roman"))
            pos = seq.end()
        out.append(raw[pos:].decode("mac_roman"))
        return "".join(out)

    return _MAC_ROMAN_RUN.sub(fix_run, line)


def _utf8_symbol(raw: bytes) -> str | None:
    try:
        char = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # An unassigned or private-use result means these bytes were never UTF-8.
    if unicodedata.category(char) in ("Cn", "Co", "Cs"):
        return None
    return char
