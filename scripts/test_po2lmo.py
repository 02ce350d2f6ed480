"""Tests of scripts/po2lmo.py: python3 -m unittest discover -s scripts -p 'test_*.py'"""

import os
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import po2lmo  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ZH_PO = os.path.join(HERE, "..", "openwrt", "luci-app-aliddns", "po", "zh_Hans", "aliddns.po")

TRICKY_PO = r"""# a comment with "quotes"
msgid ""
msgstr ""
"Project-Id-Version: test\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

msgid "Same"
msgstr "Same"

msgid "Untranslated"
msgstr ""

msgid ""
"multi "
"line"
msgstr "mehr"
"zeilig"

msgid "Say \"hi\" \\ now"
msgstr "Sag \"hallo\" \\ jetzt"

msgctxt "menu"
msgid "Open"
msgstr "Oeffnen (Menue)"

msgid "Open"
msgstr "Oeffnen"

msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d Datei"
msgstr[1] "%d Dateien"

#~ msgid "Old"
#~ msgstr "Alt"

msgid "Update now"
msgstr "立即更新"
""".encode("utf-8")


class SfhHash(unittest.TestCase):
    def test_known_answer_by_hand(self):
        # "a" is one byte (0x61), so the hash starts at len = 1 and only the
        # one-byte tail case and the final avalanche run, all mod 2**32:
        #   tail:   h = 1 + 0x61                         = 0x00000062
        #           h ^= h << 10  (0x62 ^ 0x18800)       = 0x00018862
        #           h += h >> 1   (+ 0xC431)             = 0x00024C93
        #   final:  h ^= h << 3   (^ 0x126498)           = 0x0010280B
        #           h += h >> 5   (+ 0x8140)             = 0x0010A94B
        #           h ^= h << 4   (^ 0x10A94B0)          = 0x011A3DFB
        #           h += h >> 17  (+ 0x8D)               = 0x011A3E88
        #           h ^= h << 25  (0x88 << 25 mod 2**32 = 0x10000000)
        #                                                = 0x111A3E88
        #           h += h >> 6   (+ 0x4468FA)           = 0x115EA782
        self.assertEqual(po2lmo.sfh_hash(b"a"), 0x115EA782)

    def test_signed_char_tail(self):
        # lmo.c reads tail bytes through `signed char`: 0xFF counts as -1, so
        # 1 + (-1) = 0 and every later step keeps 0. An unsigned read would
        # give 1 + 255 = 0x100 and a non-zero hash.
        self.assertEqual(po2lmo.sfh_hash(b"\xff"), 0)

    def test_against_luci_lmo_c(self):
        # Values printed by sfh_hash() of LuCI's src/lib/lmo.c, compiled and run
        # locally: every tail length (0-3 left after the 4-byte blocks) and a
        # negative third tail byte ("a\xc3\xa9").
        cases = {
            "ab": 0x516B8B44,
            "abc": 0xD2BE198A,
            "abcd": 0xDAD8B8DB,
            "abcde": 0x51ED072E,
            "Hello": 0x3891935A,
            "Update now": 0x08F02835,
            "\u00e9": 0xC4FBA554,
            "a\u00e9": 0xE3D9C55B,
            "\u66f4\u65b0": 0x37AFABDF,
        }
        for text, want in cases.items():
            self.assertEqual(po2lmo.sfh_hash(text.encode("utf-8")), want, text)

    def test_empty_is_zero(self):
        self.assertEqual(po2lmo.sfh_hash(b""), 0)

    def test_canonical_hash_squeezes_whitespace(self):
        # LuCI looks strings up after collapsing whitespace and trimming.
        self.assertEqual(po2lmo.canon_hash("  Update \t\n now "), po2lmo.sfh_hash(b"Update now"))
        self.assertEqual(po2lmo.canon_hash("Open", ctxt="menu"), po2lmo.sfh_hash(b"menu\x01Open"))
        self.assertEqual(po2lmo.canon_hash("%d file", plural=1), po2lmo.sfh_hash(b"%d file\x021"))


class Layout(unittest.TestCase):
    def test_single_message_bytes(self):
        image = po2lmo.compile_po(b'msgid "Hello"\nmsgstr "Hallo"\n')
        want = (
            b"Hallo\0\0\0"  # the string, padded to a multiple of 4
            + struct.pack(">IIII", 0x3891935A, 1, 0, 5)  # key_id, val_id, offset, length
            + struct.pack(">I", 8)  # where the index starts
        )
        self.assertEqual(image, want)

    def test_nothing_to_write(self):
        self.assertIsNone(po2lmo.compile_po(b'msgid "A"\nmsgstr ""\n\nmsgid "B"\nmsgstr "B"\n'))


class RoundTrip(unittest.TestCase):
    def setUp(self):
        self.image = po2lmo.compile_po(TRICKY_PO)
        self.ar = po2lmo.LmoArchive(self.image)

    def test_lookups(self):
        ar = self.ar
        self.assertEqual(ar.lookup("multi line"), "mehrzeilig")
        self.assertEqual(ar.lookup('Say "hi" \\ now'), 'Sag "hallo" \\ jetzt')
        self.assertEqual(ar.lookup("Open"), "Oeffnen")
        self.assertEqual(ar.lookup("Open", ctxt="menu"), "Oeffnen (Menue)")
        self.assertEqual(ar.lookup("%d file", plural=0), "%d Datei")
        self.assertEqual(ar.lookup("%d file", plural=1), "%d Dateien")
        self.assertEqual(ar.lookup("Update now"), "\u7acb\u5373\u66f4\u65b0")
        self.assertEqual(ar.plural_forms(), "nplurals=2; plural=(n != 1);")

    def test_left_out(self):
        for msgid in ("Same", "Untranslated", "Old"):
            self.assertIsNone(self.ar.lookup(msgid), msgid)

    def test_index(self):
        keys = self.ar.order
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(keys), 8)  # header + 7 strings
        (idx_offset,) = struct.unpack(">I", self.image[-4:])
        self.assertEqual((len(self.image) - 4 - idx_offset) % 16, 0)
        for pos in range(idx_offset, len(self.image) - 4, 16):
            key_id, val_id, offset, length = struct.unpack(">IIII", self.image[pos : pos + 16])
            self.assertEqual(offset % 4, 0)
            self.assertEqual(val_id, {0: 0}.get(key_id, 2 if key_id in self._plural_keys() else 1))

    def _plural_keys(self):
        return {po2lmo.canon_hash("%d file", plural=0), po2lmo.canon_hash("%d file", plural=1)}

    def test_unterminated_string_is_an_error(self):
        with self.assertRaises(ValueError):
            po2lmo.compile_po(b'msgid "Hello\nmsgstr "x"\n')


class AppCatalog(unittest.TestCase):
    def test_zh_hans_catalog(self):
        with open(ZH_PO, "rb") as f:
            data = f.read()
        ar = po2lmo.LmoArchive(po2lmo.compile_po(data))
        self.assertEqual(ar.plural_forms(), "nplurals=1; plural=0;")
        self.assertEqual(ar.lookup("Update now"), "\u7acb\u5373\u66f4\u65b0")
        self.assertEqual(ar.lookup("Host record"), "\u4e3b\u673a\u8bb0\u5f55")
        # Every translated message (other than those equal to their msgid) is found.
        found = 0
        for ctxt, msgid, _, val, _ in po2lmo.parse_po(data):
            if msgid is None or not val.get(0) or val[0] == msgid:
                continue
            self.assertEqual(ar.lookup(msgid.decode("utf-8"), None if ctxt is None else ctxt.decode("utf-8")),
                             val[0].decode("utf-8"))
            found += 1
        self.assertGreater(found, 100)
        self.assertEqual(found + 1, len(ar.entries))


class Cli(unittest.TestCase):
    def run_cli(self, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, "po2lmo.py")] + list(args),
                              capture_output=True, text=True)

    def test_writes_and_dumps(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "aliddns.zh-cn.lmo")
            res = self.run_cli(ZH_PO, out)
            self.assertEqual(res.returncode, 0, res.stderr)
            with open(out, "rb") as f:
                self.assertEqual(po2lmo.LmoArchive(f.read()).lookup("Log"), "\u65e5\u5fd7")
            dump = self.run_cli("--dump", out)
            self.assertEqual(dump.returncode, 0)
            self.assertIn("00000000 0 nplurals=1; plural=0;", dump.stdout)

    def test_empty_catalog_leaves_no_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "empty.po")
            out = os.path.join(tmp, "empty.lmo")
            with open(src, "w") as f:
                f.write('msgid "A"\nmsgstr ""\n')
            with open(out, "w") as f:
                f.write("stale")
            self.assertEqual(self.run_cli(src, out).returncode, 0)
            self.assertFalse(os.path.exists(out))

    def test_usage(self):
        res = self.run_cli("only-one-argument")
        self.assertEqual(res.returncode, 1)
        self.assertIn("Usage", res.stderr)


if __name__ == "__main__":
    unittest.main()
