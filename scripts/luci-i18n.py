#!/usr/bin/env python3
"""Translation upkeep for openwrt/luci-app-aliddns (Python 3 stdlib only).

    python3 scripts/luci-i18n.py update   rewrite po/templates/aliddns.pot from the sources, and
                                          each po/<lang>/aliddns.po in its order (translations kept,
                                          new strings added untranslated, unused ones dropped)
    python3 scripts/luci-i18n.py check    fail unless the .pot matches the sources and
                                          every po/<lang>/aliddns.po translates every
                                          string (no empty, fuzzy or stale entry, and the
                                          same %-placeholders as the English text)

The strings are what LuCI translates at run time: every _('...') in the views'
JavaScript, the menu titles of root/usr/share/luci/menu.d/*.json and the ACL
descriptions of root/usr/share/rpcd/acl.d/*.json (as LuCI's own i18n scan
collects them). _() must be given string literals, so a call with anything
else is reported: its text could never be in the catalog.
"""

import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "openwrt", "luci-app-aliddns")
DOMAIN = "aliddns"
POT = os.path.join(APP, "po", "templates", DOMAIN + ".pot")

JS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
# A '/' after one of these (or at the start) opens a regex literal, not a division.
REGEX_PRECEDERS = set("(,=:[!&|?{};+-*%<>~^")
IDENT = re.compile(r"[A-Za-z0-9_$]")
PLACEHOLDER = re.compile(r"%(?:%|[-0 ']?\d*(?:\.\d+)?[bcdufoxXsqhjtm])")


class ExtractError(Exception):
    pass


def _read_js_string(src, i, path, line):
    """The JS string literal starting at src[i] (a quote): (value, index after it)."""
    quote = src[i]
    out = []
    i += 1
    while i < len(src):
        c = src[i]
        if c == "\\":
            n = src[i + 1]
            if n == "u":
                out.append(chr(int(src[i + 2 : i + 6], 16)))
                i += 6
                continue
            if n == "x":
                out.append(chr(int(src[i + 2 : i + 4], 16)))
                i += 4
                continue
            if n == "\n":
                i += 2
                continue
            out.append(JS_ESCAPES.get(n, n))
            i += 2
            continue
        if c == quote:
            return "".join(out), i + 1
        if c == "\n" and quote != "`":
            raise ExtractError("%s:%d: unterminated string" % (path, line))
        out.append(c)
        i += 1
    raise ExtractError("%s:%d: unterminated string" % (path, line))


def _skip_regex(src, i):
    """Index after the regex literal starting at src[i] ('/')."""
    i += 1
    in_class = False
    while i < len(src) and src[i] != "\n":
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            i += 1
            while i < len(src) and IDENT.match(src[i]):
                i += 1
            return i
        i += 1
    return i


def js_strings(src, path):
    """[(msgctxt or None, msgid, line)] for every _() call in JavaScript source."""
    found = []
    i = 0
    line = 1
    prev = ""  # last significant character, to tell regex literals from division
    while i < len(src):
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = len(src) if j < 0 else j
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = len(src) if j < 0 else j + 2
            line += src.count("\n", i, j)
            i = j
            continue
        if c in "'\"`":
            _, j = _read_js_string(src, i, path, line)
            line += src.count("\n", i, j)
            i = j
            prev = "a"
            continue
        if c == "/" and (prev == "" or prev in REGEX_PRECEDERS):
            i = _skip_regex(src, i)
            prev = "a"
            continue
        if IDENT.match(c):
            j = i
            while j < len(src) and IDENT.match(src[j]):
                j += 1
            word = src[i:j]
            before = src[i - 1] if i > 0 else ""
            if word == "_" and before != ".":
                k = j
                while k < len(src) and src[k] in " \t":
                    k += 1
                if k < len(src) and src[k] == "(":
                    args, j = _call_strings(src, k + 1, path, line)
                    msgid, ctxt = args[0], (args[1] if len(args) > 1 else None)
                    found.append((ctxt, msgid, line))
            # `return /re/` starts a regex; other words end an expression.
            prev = "(" if word in ("return", "typeof", "case", "in", "of") else "a"
            i = j
            continue
        prev = c
        i += 1
    return found


def _call_strings(src, i, path, line):
    """The string-literal arguments of a _( call whose '(' is just before src[i]."""
    args = []
    while True:
        while i < len(src) and src[i].isspace():
            i += 1
        if i >= len(src) or src[i] not in "'\"":
            raise ExtractError("%s:%d: _() needs string literals as its arguments" % (path, line))
        value, i = _read_js_string(src, i, path, line)
        args.append(value)
        while i < len(src) and src[i].isspace():
            i += 1
        if i < len(src) and src[i] == ")":
            return args, i + 1
        if i < len(src) and src[i] == "," and len(args) < 2:
            i += 1
            continue
        raise ExtractError("%s:%d: _() needs string literals as its arguments" % (path, line))


def collect():
    """{(ctxt, msgid): [reference, ...]} in first-seen order over all sources."""
    entries = {}

    def add(ctxt, msgid, ref):
        entries.setdefault((ctxt, msgid), []).append(ref)

    for path in sorted(glob.glob(os.path.join(APP, "htdocs", "**", "*.js"), recursive=True)):
        rel = os.path.relpath(path, APP)
        with open(path, encoding="utf-8") as f:
            for ctxt, msgid, line in js_strings(f.read(), rel):
                add(ctxt, msgid, "%s:%d" % (rel, line))
    # The JSON files LuCI shows a string of: menu titles, ACL group descriptions.
    for subdir, key in ((("luci", "menu.d"), "title"), (("rpcd", "acl.d"), "description")):
        for path in sorted(glob.glob(os.path.join(APP, "root", "usr", "share", *subdir, "*.json"))):
            rel = os.path.relpath(path, APP)
            with open(path, encoding="utf-8") as f:
                for node in json.load(f).values():
                    if node.get(key):
                        add(None, node[key], rel)
    return entries


def po_quote(s):
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n")
    return '"%s"' % s


def render_pot(entries):
    out = ['msgid ""', 'msgstr "Content-Type: text/plain; charset=UTF-8\\n"', ""]
    out += render_entries(entries, lambda ctxt, msgid: "")
    return "\n".join(out)


def render_entries(entries, msgstr):
    """The entries in order, each with its references (once each) and msgstr(ctxt, msgid)."""
    out = []
    for (ctxt, msgid), refs in entries.items():
        out.extend("#: " + r for r in dict.fromkeys(refs))
        if ctxt is not None:
            out.append("msgctxt " + po_quote(ctxt))
        out.append("msgid " + po_quote(msgid))
        out.append("msgstr " + po_quote(msgstr(ctxt, msgid)))
        out.append("")
    return out


PO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _po_unquote(s, where):
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise ExtractError("%s: not a quoted string: %s" % (where, s))
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(PO_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def parse_po(path):
    """[{ctxt, id, str, fuzzy, obsolete, line}] of a .po file (plain messages)."""
    entries = []
    cur = None
    field = None
    flags = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            where = "%s:%d" % (path, n)
            if not line:
                continue
            if line.startswith("#~"):
                entries.append({"obsolete": True, "line": n, "ctxt": None, "id": None, "str": "", "fuzzy": False})
                cur = None
                continue
            if line.startswith("#,"):
                flags += [x.strip() for x in line[2:].split(",")]
                continue
            if line.startswith("#"):
                continue
            key, _, rest = line.partition(" ")
            if key == "msgctxt" or (key == "msgid" and (cur is None or "id" in cur)):
                # A new entry (a msgctxt line opens the entry its msgid then joins).
                cur = {"ctxt": None, "fuzzy": "fuzzy" in flags, "obsolete": False, "line": n}
                entries.append(cur)
                flags = []
            if key == "msgctxt":
                cur["ctxt"] = _po_unquote(rest, where)
                field = "ctxt"
            elif key == "msgid":
                cur["id"] = _po_unquote(rest, where)
                field = "id"
            elif key.startswith("msgid_plural") or key.startswith("msgstr["):
                raise ExtractError("%s: plural forms are not used by this app" % where)
            elif key == "msgstr":
                cur["str"] = _po_unquote(rest, where)
                field = "str"
            elif line.startswith('"') and cur is not None and field:
                cur[field] += _po_unquote(line, where)
            else:
                raise ExtractError("%s: cannot read: %s" % (where, line))
    return entries


def render_po(entries, path):
    """The .po at `path` rewritten in the .pot's order and references, keeping its
    header and translations (new strings get an empty msgstr, unused ones go)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    header = text.split("\n\n", 1)[0]
    done = {(e["ctxt"], e["id"]): e.get("str", "") for e in parse_po(path) if not e["obsolete"] and e["id"]}
    out = [header, ""]
    out += render_entries(entries, lambda ctxt, msgid: done.get((ctxt, msgid), ""))
    return "\n".join(out)


def check(entries):
    problems = []
    wanted = render_pot(entries)
    try:
        with open(POT, encoding="utf-8") as f:
            have = f.read()
    except OSError:
        have = None
    if have != wanted:
        problems.append("%s is out of date: run python3 scripts/luci-i18n.py update" % os.path.relpath(POT, ROOT))
    for ctxt, msgid in entries:
        # LuCI looks strings up with whitespace squeezed, but po2lmo hashes the msgid
        # as written: a msgid with a newline, a tab or two spaces is never found.
        if msgid != " ".join(msgid.split()):
            problems.append("%r: use single spaces only (no newline, tab, or leading/trailing space)" % msgid)
    keys = set(entries)
    pos = sorted(glob.glob(os.path.join(APP, "po", "*", DOMAIN + ".po")))
    if not pos:
        problems.append("no po/<lang>/%s.po" % DOMAIN)
    for path in pos:
        rel = os.path.relpath(path, ROOT)
        seen = set()
        for e in parse_po(path):
            if e["obsolete"]:
                problems.append("%s:%d: obsolete (#~) entry; delete it" % (rel, e["line"]))
                continue
            if e["id"] == "":
                continue  # header
            key = (e["ctxt"], e["id"])
            seen.add(key)
            if key not in keys:
                problems.append("%s:%d: %r is not used by the app any more" % (rel, e["line"], e["id"]))
            if e["fuzzy"]:
                problems.append("%s:%d: fuzzy: %r" % (rel, e["line"], e["id"]))
            if not e.get("str"):
                problems.append("%s:%d: untranslated: %r" % (rel, e["line"], e["id"]))
            elif PLACEHOLDER.findall(e["id"]) != PLACEHOLDER.findall(e["str"]):
                problems.append("%s:%d: placeholders differ from %r" % (rel, e["line"], e["id"]))
        for key in keys - seen:
            problems.append("%s: missing: %r" % (rel, key[1]))
    return problems


def main(argv):
    if len(argv) != 2 or argv[1] not in ("update", "check"):
        sys.stderr.write(__doc__)
        return 2
    try:
        entries = collect()
        if argv[1] == "update":
            os.makedirs(os.path.dirname(POT), exist_ok=True)
            with open(POT, "w", encoding="utf-8") as f:
                f.write(render_pot(entries))
            print("%s: %d strings" % (os.path.relpath(POT, ROOT), len(entries)))
            for path in sorted(glob.glob(os.path.join(APP, "po", "*", DOMAIN + ".po"))):
                text = render_po(entries, path)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                print("%s: references refreshed" % os.path.relpath(path, ROOT))
            return 0
        problems = check(entries)
    except ExtractError as e:
        print("FAIL: %s" % e)
        return 1
    for p in problems:
        print("FAIL: %s" % p)
    if not problems:
        print("translations: %d strings, .pot in sync, every .po complete" % len(entries))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
