"""What a file's bytes are when they are not UTF-8 text, so that a reader can say it and the fix.

Farm files, buildkitd configs and Dockerfiles are UTF-8. Editors and shells also write
UTF-16 and UTF-32 (PowerShell 5's `>` writes UTF-16 LE), with a byte order mark or without
(then ASCII text has a NUL beside every character), and a wrong path can name an archive or
an image. `sniff` names those; `decode` returns the text (a UTF-8 BOM is dropped: it says
"UTF-8" and editors on Windows add it) or raises `NotUTF8` with a message and a hint.
"""

from __future__ import annotations

import codecs
import shlex
from dataclasses import dataclass

from buildkit_farm.errors import shown

UTF8_BOM = codecs.BOM_UTF8
_HEAD = 1024  # enough bytes to tell an encoding or a format by

# Byte order marks, longest first: UTF-32 LE's starts with UTF-16 LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE", "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32 BE", "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE", "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE", "UTF-16"),
)

# Formats a wrong path most often names, by their first bytes (checked only when the bytes
# are not UTF-8 text, or hold a NUL: "MZ" or "BZh" may well start a text file).
_MAGIC = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "a zip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"(\xb5/\xfd", "a zstd archive"),
    (b"BZh", "a bzip2 archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"RIFF", "a RIFF file (a WebP image, a WAV sound)"),
    (b"%PDF-", "a PDF document"),
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O executable or a Java class"),
    (b"\x00asm", "a WebAssembly module"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


@dataclass(frozen=True)
class Foreign:
    """Bytes that are text in another Unicode encoding (`codec` set) or a binary format."""

    what: str  # "UTF-16 LE", "a gzip archive"
    codec: str | None = None  # iconv's name, for text: "UTF-16" (with a BOM), "UTF-16LE"
    bom: bool = False

    @property
    def is_text(self) -> bool:
        return self.codec is not None

    def describe(self) -> str:
        if self.is_text:
            mark = "with a byte order mark" if self.bom else "without a byte order mark"
            return f"is {self.what} text ({mark}), not UTF-8"
        return f"is not text: it looks like {self.what}"

    def hint(self, name: str = "FILE") -> str:
        """How to make it UTF-8 (text) or what to check (a binary file)."""
        if not self.is_text:
            return "is it the right file?"
        quoted = shown(shlex.quote(name))
        fix = f"save it as UTF-8, e.g. `iconv -f {self.codec} -t UTF-8 {quoted} > utf8.tmp && mv utf8.tmp {quoted}`"
        if self.what == "UTF-16 LE":
            fix += "; PowerShell 5's `>` writes UTF-16: use `| Out-File -Encoding utf8`"
        return fix


class NotUTF8(ValueError):
    """The bytes are not UTF-8 text; `message` says what they are, `hint` how to fix it."""

    def __init__(self, message: str, hint: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.line = line


def sniff(data: bytes) -> Foreign | None:
    """What `data` is when it is UTF-16 / UTF-32 text or a known binary format; None otherwise
    (UTF-8 text, or bytes of no format told here)."""
    for bom, what, codec in _BOMS:
        if data.startswith(bom):
            return Foreign(what, codec, bom=True)
    head = data[:_HEAD]
    if b"\x00" not in head and _is_utf8(head):
        return None
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return Foreign(what)
    if len(data) > 262 and data[257:262] == b"ustar":
        return Foreign("a tar archive")
    return _wide_text(head) if b"\x00" in head else None


def decode(data: bytes, name: str = "FILE") -> str:
    """The text of UTF-8 bytes, without a leading BOM; `NotUTF8` naming what else they are."""
    data = data.removeprefix(UTF8_BOM)
    foreign = sniff(data)
    if foreign is not None:
        raise NotUTF8(foreign.describe(), foreign.hint(name), line=None)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _bad_byte(data, err, name) from None


def _is_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.reason == "unexpected end of data" and err.start >= len(head) - 3  # cut mid-character
    return True


def _wide_text(head: bytes) -> Foreign | None:
    """UTF-32 or UTF-16 without a BOM, told by where the NUL bytes of ASCII characters fall."""
    for width, endians in ((4, ("LE", "BE")), (2, ("LE", "BE"))):
        units = [head[i : i + width] for i in range(0, len(head) - len(head) % width, width)]
        if not units:
            continue
        for endian in endians:
            ascii_units = sum(1 for unit in units if _is_ascii_unit(unit, endian))
            if ascii_units >= 0.6 * len(units) and _decodes(head[: len(units) * width], width, endian):
                return Foreign(f"UTF-{width * 8} {endian}", f"UTF-{width * 8}{endian}")
    return None


def _is_ascii_unit(unit: bytes, endian: str) -> bool:
    """A code unit holding one ASCII character: its one non-zero byte at the little or big end."""
    low, rest = (unit[0], unit[1:]) if endian == "LE" else (unit[-1], unit[:-1])
    return 0 < low < 0x80 and not any(rest)


def _decodes(head: bytes, width: int, endian: str) -> bool:
    try:
        text = head.decode(f"utf-{width * 8}-{endian.lower()}")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


def _bad_byte(data: bytes, err: UnicodeDecodeError, name: str) -> NotUTF8:
    line = data.count(b"\n", 0, err.start) + 1
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    where = f"byte 0x{data[err.start]:02X} at line {line}, column {column}"
    head = data[:_HEAD]
    controls = sum(1 for byte in head if byte < 0x20 and byte not in b"\t\n\r" or byte == 0x7F)
    if controls > len(head) // 10:
        return NotUTF8(f"is not text: binary data ({where} is not UTF-8)", "is it the right file?", line)
    quoted = shown(shlex.quote(name))
    return NotUTF8(
        f"is not UTF-8 text: {where}",
        "save it as UTF-8; if it was written as Latin-1 or Windows-1252 (e.g. an accented letter in a "
        f"comment), `iconv -f WINDOWS-1252 -t UTF-8 {quoted} > utf8.tmp && mv utf8.tmp {quoted}`",
        line,
    )
