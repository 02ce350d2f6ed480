#!/usr/bin/env python3
"""Compile a gettext .po file into LuCI's LMO translation format.

    python3 scripts/po2lmo.py IN.po OUT.lmo
    python3 scripts/po2lmo.py --dump FILE.lmo      (list what a .lmo holds)

LuCI reads translations from /usr/lib/lua/luci/i18n/<app>.<lang>.lmo, which its
own `po2lmo` tool (luci-base, modules/luci-base/src/po2lmo.c, with the hash in
src/lib/lmo.c) writes. No package registry carries that tool, so this is a
Python 3 (stdlib only) implementation of the same format, written from the
format's definition:

* Strings: each translated string (UTF-8 bytes, no terminator) in the order the
  .po file lists them, each padded with NUL bytes to a multiple of 4.
* Index: one 16-byte entry per string, sorted by key_id ascending:
  key_id, val_id, offset, length -- four big-endian uint32.
  key_id = sfh_hash(key) where key is the msgid, "ctxt\\x01msgid" with a
  msgctxt, "msgid\\x02N" for plural form N ("ctxt\\x01msgid\\x02N" with both);
  val_id = number of plural forms of the message (1 for a plain message);
  offset/length locate the string. The Plural-Forms header line is stored as
  an entry with key_id 0 and val_id 0.
* Trailer: the offset of the index (= total size of the string area), one
  big-endian uint32, as the last 4 bytes of the file.

Like LuCI's po2lmo: untranslated (empty msgstr) messages and messages whose
translation hashes the same as their key (msgstr == msgid) are left out;
escapes \\" and \\\\ are decoded and any other escape (\\n, \\t) is kept as its
two characters; fuzzy flags are not looked at (CI rejects fuzzy entries in our
.po files before this runs); and when nothing at all is written, no output
file is left behind.
"""

import os
import struct
import sys

MASK = 0xFFFFFFFF
# po2lmo builds each key in a 4096-byte buffer (snprintf), so longer keys are cut.
KEY_MAX = 4095


def _get16(data, i):
    """Two bytes as a little-endian 16-bit value (lmo.h's sfh_get16)."""
    return data[i] | (data[i + 1] << 8)


def _s8(byte):
    """A byte read through C's `signed char` (bytes >= 0x80 are negative)."""
    return byte - 256 if byte >= 0x80 else byte


def sfh_hash(data, init=None):
    """Paul Hsieh's SuperFastHash over `data` (bytes), seeded with `init`.

    LuCI seeds it with the length of the data; `init=None` does the same.
    Returns 0 for empty input, as lmo.c does.
    """
    if init is None:
        init = len(data)
    if not data:
        return 0
    h = init & MASK
    rem = len(data) & 3
    i = 0
    for _ in range(len(data) >> 2):
        h = (h + _get16(data, i)) & MASK
        tmp = ((_get16(data, i + 2) << 11) ^ h) & MASK
        h = ((h << 16) & MASK) ^ tmp
        i += 4
        h = (h + (h >> 11)) & MASK
    if rem == 3:
        h = (h + _get16(data, i)) & MASK
        h ^= (h << 16) & MASK
        h ^= (_s8(data[i + 2]) << 18) & MASK
        h = (h + (h >> 11)) & MASK
    elif rem == 2:
        h = (h + _get16(data, i)) & MASK
        h ^= (h << 11) & MASK
        h = (h + (h >> 17)) & MASK
    elif rem == 1:
        h = (h + _s8(data[i])) & MASK
        h ^= (h << 10) & MASK
        h = (h + (h >> 1)) & MASK
    # Final avalanche.
    h ^= (h << 3) & MASK
    h = (h + (h >> 5)) & MASK
    h ^= (h << 4) & MASK
    h = (h + (h >> 17)) & MASK
    h ^= (h << 25) & MASK
    h = (h + (h >> 6)) & MASK
    return h


def canon_hash(msgid, ctxt=None, plural=None):
    """The hash LuCI looks a string up by (lmo_canon_hash; the browser's _()
    does the same): whitespace runs become one space, leading and trailing
    whitespace is dropped, then "ctxt\\x01" is put in front and "\\x02N" after."""

    def squeeze(s):
        return " ".join(s.split())

    key = squeeze(msgid)
    if ctxt is not None:
        key = squeeze(ctxt) + "\x01" + key
    if plural is not None:
        key += "\x02%d" % plural
    return sfh_hash(key.encode("utf-8"))


def _extract_string(line):
    """The text between the first pair of double quotes of a .po line, decoded
    the way po2lmo's extract_string() does; None for comments and lines
    without a string."""
    if line.startswith(b"#"):
        return None
    start = line.find(b'"')
    if start < 0:
        return None
    out = bytearray()
    i = start + 1
    while i < len(line):
        c = line[i]
        if c == 0x5C:  # backslash
            nxt = line[i + 1] if i + 1 < len(line) else None
            if nxt in (0x22, 0x5C):  # \" and \\ lose their backslash
                out.append(nxt)
            else:  # every other escape is kept verbatim
                out.append(c)
                if nxt is not None:
                    out.append(nxt)
            i += 2
            continue
        if c == 0x22:
            return bytes(out)
        out.append(c)
        i += 1
    raise ValueError("unterminated string: %r" % line.decode("utf-8", "replace"))


class _Msg:
    """One .po entry being read."""

    def __init__(self):
        self.ctxt = None
        self.id = None
        self.id_plural = None
        self.val = {}
        self.plural_num = 0
        self.cur = None

    def pending(self):
        return self.id is not None or self.val.get(0) is not None


def parse_po(data):
    """Reads .po bytes as po2lmo does and returns the messages, in file order,
    as (ctxt, msgid, msgid_plural, {index: msgstr}, plural_num) tuples of bytes.
    Empty strings count as absent (None / missing index), as in po2lmo."""
    msgs = []
    msg = _Msg()

    def flush():
        msgs.append((msg.ctxt, msg.id, msg.id_plural, dict(msg.val), msg.plural_num))

    lines = data.split(b"\n")
    for lineno, line in enumerate(lines + [None], 1):
        eof = line is None
        if not eof and line.startswith(b'msgctxt "'):
            if msg.pending():
                flush()
                msg = _Msg()
            msg.ctxt = None
            msg.cur = "ctxt"
        elif eof or line.startswith(b'msgid "'):
            if msg.pending():
                flush()
                msg = _Msg()  # a msgctxt read before this msgid stays
            msg.id = None
            msg.cur = "id"
        elif line.startswith(b'msgid_plural "'):
            msg.id_plural = None
            msg.cur = "id_plural"
        elif line.startswith(b'msgstr "') or line.startswith(b"msgstr["):
            if line[6:7] == b"[":
                digits = line[7:].split(b"]", 1)[0]
                if not digits.isdigit():
                    raise ValueError("line %d: bad plural index" % lineno)
                msg.plural_num = int(digits)
            else:
                msg.plural_num = 0
            if msg.plural_num >= 10:
                raise ValueError("line %d: too many plural forms" % lineno)
            msg.val.pop(msg.plural_num, None)
            msg.cur = ("val", msg.plural_num)
        if eof:
            break
        if msg.cur is None:
            continue
        try:
            text = _extract_string(line)
        except ValueError as e:
            raise ValueError("line %d: %s" % (lineno, e)) from None
        if not text:
            continue
        if isinstance(msg.cur, tuple):
            idx = msg.cur[1]
            msg.val[idx] = (msg.val.get(idx) or b"") + text
        else:
            setattr(msg, msg.cur, (getattr(msg, msg.cur) or b"") + text)
    return msgs


def _plural_forms(header):
    """The value of the header's "Plural-Forms: " line (po2lmo only looks at
    lines ended by an escaped newline), or None."""
    for field in header.split(b"\\n")[:-1]:
        if field[:14].lower() == b"plural-forms: ":
            return field[14:]
    return None


def compile_po(data):
    """The LMO image (bytes) for .po bytes, or None when it holds nothing."""
    strings = bytearray()
    index = []

    def add(key_id, val_id, text):
        index.append((key_id, val_id, len(strings), len(text)))
        strings.extend(text)
        strings.extend(b"\0" * ((4 - len(text) % 4) % 4))

    for ctxt, msgid, id_plural, val, plural_num in parse_po(data):
        if msgid is not None and val.get(0):
            for i in range(plural_num + 1):
                text = val.get(i)
                if not text:
                    continue
                key = msgid
                if ctxt is not None:
                    key = ctxt + b"\x01" + key
                if id_plural is not None:
                    key += b"\x02%d" % i
                key = key[:KEY_MAX]
                key_id = sfh_hash(key)
                if key_id != sfh_hash(text):
                    add(key_id, plural_num + 1, text)
        elif val.get(0):
            forms = _plural_forms(val[0])
            if forms is not None:
                add(0, 0, forms)

    if not strings:
        return None
    out = bytearray(strings)
    for entry in sorted(index, key=lambda e: e[0]):
        out.extend(struct.pack(">IIII", *entry))
    out.extend(struct.pack(">I", len(strings)))
    return bytes(out)


class LmoArchive:
    """A parsed .lmo file: `entries` maps key_id to (val_id, bytes)."""

    def __init__(self, data):
        if len(data) < 4:
            raise ValueError("too short for an LMO file")
        (idx_offset,) = struct.unpack(">I", data[-4:])
        if idx_offset >= len(data) or (len(data) - 4 - idx_offset) % 16:
            raise ValueError("index offset %d does not fit a %d-byte file" % (idx_offset, len(data)))
        self.entries = {}
        self.order = []
        for pos in range(idx_offset, len(data) - 4, 16):
            key_id, val_id, offset, length = struct.unpack(">IIII", data[pos : pos + 16])
            if offset + length > idx_offset:
                raise ValueError("entry %08x points past the string area" % key_id)
            self.entries[key_id] = (val_id, data[offset : offset + length])
            self.order.append(key_id)

    def lookup(self, msgid, ctxt=None, plural=None):
        """The translation LuCI would show for msgid (str), or None."""
        hit = self.entries.get(canon_hash(msgid, ctxt, plural))
        return hit[1].decode("utf-8") if hit else None

    def plural_forms(self):
        hit = self.entries.get(0)
        return hit[1].decode("utf-8") if hit else None


def main(argv):
    if len(argv) == 3 and argv[1] == "--dump":
        with open(argv[2], "rb") as f:
            ar = LmoArchive(f.read())
        for key_id in ar.order:
            val_id, text = ar.entries[key_id]
            print("%08x %d %s" % (key_id, val_id, text.decode("utf-8", "replace")))
        return 0
    if len(argv) != 3:
        sys.stderr.write("Usage: %s input.po output.lmo\n" % argv[0])
        return 1
    src, dst = argv[1], argv[2]
    try:
        with open(src, "rb") as f:
            image = compile_po(f.read())
    except (OSError, ValueError) as e:
        sys.stderr.write("Error: %s: %s\n" % (src, e))
        return 1
    if image is None:
        # po2lmo leaves no file when there is nothing to write.
        if os.path.exists(dst):
            os.unlink(dst)
        return 0
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(image)
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
