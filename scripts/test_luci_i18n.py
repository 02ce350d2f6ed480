"""Tests of scripts/luci-i18n.py's string extraction (run with the other scripts/test_*.py)."""

import importlib.util
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("luci_i18n", os.path.join(HERE, "luci-i18n.py"))
i18n = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(i18n)


class JsStrings(unittest.TestCase):
    def strings(self, src):
        return [(c, m) for c, m, _ in i18n.js_strings(src, "t.js")]

    def test_calls_comments_strings_and_regexes(self):
        src = r"""
var RE = /^["'_(]+$/;            // a regex with quotes and "_(" in it
/* _('not in a comment') */
var s = "_('not in a string')";
o = f(_('Plain'), _("Double \"quoted\""), _('It\'s'), _('Menu', 'ctx'));
x = a / b / _('After division');
if (/_\(/.test(v)) return _( 'Spaced' );
obj._('method, not gettext');
"""
        self.assertEqual(self.strings(src), [
            (None, "Plain"), (None, 'Double "quoted"'), (None, "It's"), ("ctx", "Menu"),
            (None, "After division"), (None, "Spaced"),
        ])

    def test_line_numbers(self):
        found = i18n.js_strings("a();\n\n_('x')\n", "t.js")
        self.assertEqual(found, [(None, "x", 3)])

    def test_non_literal_argument_is_reported(self):
        with self.assertRaises(i18n.ExtractError):
            i18n.js_strings("_(name)", "t.js")
        with self.assertRaises(i18n.ExtractError):
            i18n.js_strings("_('a' + b)", "t.js")

    def test_whitespace_that_luci_would_not_find(self):
        problems = i18n.check({(None, "Two  spaces"): ["t.js:1"], (None, "Fine text"): ["t.js:2"]})
        self.assertTrue(any("Two  spaces" in p and "single spaces" in p for p in problems))
        self.assertFalse(any("Fine text" in p and "single spaces" in p for p in problems))

    def test_po_quote_round_trip(self):
        text = 'say "hi"\\ \t and\nmore'
        self.assertEqual(i18n._po_unquote(i18n.po_quote(text), "t"), text)

    def test_app_sources_extract(self):
        entries = i18n.collect()
        self.assertIn((None, "Update now"), entries)
        self.assertIn((None, "AliDNS DDNS"), entries)  # menu title
        self.assertIn((None, "Grant access to the AliDNS DDNS settings, status and log"), entries)  # ACL


if __name__ == "__main__":
    unittest.main()
