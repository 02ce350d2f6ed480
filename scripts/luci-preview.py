#!/usr/bin/env python3
"""Render the LuCI views of luci-app-aliddns in headless Chromium, without a router.

    python3 scripts/luci-preview.py [--lang en|zh-cn] [--view overview|log] [--out FILE.png]
                                    [--status-json FILE]   (what `aliddns status --json` printed)

Serves, on 127.0.0.1 only, a page that loads the views from
openwrt/luci-app-aliddns/htdocs with a stand-in for LuCI's client runtime
(openwrt/luci-app-aliddns/tests/preview/stub-luci.js: sample status, config and
log; forms drawn with LuCI's class names, not by LuCI's form.js) and, for
zh-cn, the translations compiled by scripts/po2lmo.py and read back from the
.lmo, looked up by the same hash LuCI's _() uses. Chromium loads it twice:
once dumping the DOM (the run fails on any JavaScript error, rejected promise
or missing status row) and once taking the screenshot.

Needs chromium (Debian: apt-get install chromium; fonts-noto-cjk for zh-cn).
A local check and the source of docs/images/luci-aliddns*.png; not a CI step.
"""

import argparse
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APP = os.path.join(ROOT, "openwrt", "luci-app-aliddns")
VIEWS = os.path.join(APP, "htdocs", "luci-static", "resources", "view")
PREVIEW = os.path.join(APP, "tests", "preview")
sys.path.insert(0, HERE)

import po2lmo  # noqa: E402

LANG_PO = {"zh-cn": "zh_Hans"}

PAGE = """<!DOCTYPE html>
<html lang="%(lang)s"><head><meta charset="utf-8">
<title>luci-app-aliddns preview</title>
<link rel="stylesheet" href="/preview.css">
<script>window.TR = %(tr)s; window.PREVIEW_STATUS = %(status)s;</script>
<script src="/stub-luci.js"></script>
</head><body>
<header><span class="brand">OpenWrt</span><span class="crumb">%(crumb)s</span></header>
<div class="preview-note">%(note)s</div>
<div id="maincontent">
<ul class="cbi-tabmenu">%(tabs)s</ul>
<pre id="preview-errors"></pre>
<div id="view"></div>
%(actions)s
</div>
<script>previewView('/view/aliddns/%(view)s.js');</script>
</body></html>
"""


# Words of the page frame that LuCI itself (luci-base) translates, not this app.
BASE_WORDS = {"zh-cn": {"Services": "服务", "Edit": "修改", "Delete": "删除", "Add": "添加",
                        "Save & Apply": "保存并应用", "Save": "保存", "Reset": "复位"}}


def translations(lang):
    """{hash: text} from the .lmo that po2lmo.py compiles, as LuCI serves it to _()."""
    if lang == "en":
        return {}
    po = os.path.join(APP, "po", LANG_PO[lang], "aliddns.po")
    with open(po, "rb") as f:
        ar = po2lmo.LmoArchive(po2lmo.compile_po(f.read()))
    tr = {"%08x" % po2lmo.canon_hash(k): v for k, v in BASE_WORDS.get(lang, {}).items()}
    tr.update({"%08x" % k: v.decode("utf-8") for k, (_, v) in ar.entries.items() if k != 0})
    return tr


def page(view, lang, status=None):
    tr = translations(lang)

    def t(s):
        return tr.get("%08x" % po2lmo.canon_hash(s), s)

    tabs = "".join(
        '<li class="%s"><a href="#">%s</a></li>' % ("cbi-tab" if v == view else "cbi-tab-disabled", t(title))
        for v, title in (("overview", "Overview"), ("log", "Log"))
    )
    actions = ""
    if view == "overview":
        actions = (
            '<div class="cbi-page-actions"><button class="btn cbi-button cbi-button-action">%s</button> '
            '<button class="btn">%s</button> <button class="btn cbi-button-remove">%s</button></div>'
        ) % tuple(html.escape(t(w)) for w in ("Save & Apply", "Save", "Reset"))
    note = ("Preview of the luci-app-aliddns views on a stand-in for LuCI's runtime with sample data "
            "(scripts/luci-preview.py); on a router LuCI's own form.js draws the settings.")
    return PAGE % {
        "lang": lang,
        "tr": json.dumps(tr, ensure_ascii=False).replace("</", "<\\/"),
        "crumb": html.escape(t("Services")) + " &raquo; " + html.escape(t("AliDNS DDNS")),
        "note": note,
        "tabs": tabs,
        "actions": actions,
        "view": view,
        "status": json.dumps(status).replace("</", "<\\/"),
    }


class Handler(http.server.BaseHTTPRequestHandler):
    view = "overview"
    lang = "en"
    status = None

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        body, ctype = None, "text/plain"
        if path == "/":
            body, ctype = page(self.view, self.lang, self.status).encode("utf-8"), "text/html; charset=utf-8"
        elif path in ("/stub-luci.js", "/preview.css"):
            with open(os.path.join(PREVIEW, path[1:]), "rb") as f:
                body = f.read()
            ctype = "text/javascript" if path.endswith(".js") else "text/css"
        elif re.fullmatch(r"/view/aliddns/[a-z]+\.js", path):
            fn = os.path.join(VIEWS, path[len("/view/"):])
            if os.path.isfile(fn):
                with open(fn, "rb") as f:
                    body = f.read()
                ctype = "text/javascript"
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def chromium(args, url, profile):
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not exe:
        sys.exit("chromium is not installed (Debian: apt-get install chromium)")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--hide-scrollbars", "--user-data-dir=" + profile, "--virtual-time-budget=5000"] + args + [url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lang", choices=["en", "zh-cn"], default="en")
    ap.add_argument("--view", choices=["overview", "log"], default="overview")
    ap.add_argument("--out", help="PNG to write (default: only check for errors)")
    ap.add_argument("--size", default="1280,1700")
    ap.add_argument("--status-json", help="show this output of `aliddns status --json` instead of the sample")
    opts = ap.parse_args()

    Handler.view, Handler.lang = opts.view, opts.lang
    if opts.status_json:
        with open(opts.status_json, encoding="utf-8") as f:
            Handler.status = json.load(f)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/" % server.server_address[1]
    profile = tempfile.mkdtemp(prefix="aliddns-preview-")
    try:
        res = chromium(["--dump-dom"], url, profile)
        dom = res.stdout
        errors = re.search(r'<pre id="preview-errors">(.*?)</pre>', dom, re.S)
        if res.returncode != 0 or errors is None:
            sys.exit("chromium failed (%d): %s" % (res.returncode, res.stderr[-2000:]))
        if errors.group(1).strip():
            sys.exit("JavaScript errors in the views:\n" + errors.group(1))
        if opts.view == "overview":
            table = re.search(r'<table class="table" id="aliddns-status-table">(.*?)</table>', dom, re.S)
            want = len(Handler.status["records"]) if Handler.status else 3
            rows = table.group(1).count('<tr class="tr') - 1 if table else 0
            if rows != max(want, 1) or (Handler.status is None and "aliddns-error" not in dom):
                sys.exit("the status table did not render (%d rows)" % rows)
        elif 'id="aliddns-log"' not in dom or "daemon.err aliddns" not in dom:
            sys.exit("the log did not render")
        if opts.lang == "zh-cn" and ("立即更新" if opts.view == "overview" else "刷新") not in dom:
            sys.exit("the zh-cn translations were not applied")
        print("%s (%s): rendered without JavaScript errors" % (opts.view, opts.lang))
        if opts.out:
            res = chromium(["--screenshot=" + os.path.abspath(opts.out), "--window-size=" + opts.size], url, profile)
            if res.returncode != 0 or not os.path.isfile(opts.out):
                sys.exit("screenshot failed: %s" % res.stderr[-2000:])
            print("wrote %s (%d bytes)" % (opts.out, os.path.getsize(opts.out)))
    finally:
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
