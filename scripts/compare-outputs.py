#!/usr/bin/env python3
"""Runs two aliddns binaries on the same inputs and shows where their output differs.

  compare-outputs.py OLD NEW [RUNNER]

For a change that must not change what the binary prints, writes or answers (the JSON
layer, size work): each binary gets a fresh simulator (`alidns-sim`, built by
`cargo build -p alidns-sim`) and an echo URL on 127.0.0.1, then runs `update`, prints the
state file, `status --json`, `domains`/`lines`/`records list --json`, and answers GoEdge
requests from `serve` (valid and invalid ones). Times, temp paths and the simulator's random
ids are masked. RUNNER (e.g. `qemu-mipsel`) runs router builds on the host.
Exit status: 0 the same, 1 some output differs (each difference is printed), 2 usage.
"""
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM = os.environ.get("ALIDDNS_SIM", os.path.join(ROOT, "target", "debug", "alidns-sim"))
SECRET = "0123456789abcdef0123"
TXT = 'a "q" \\ 中文 \t <x> \x01 end'

# GoEdge requests: every action, the answers' string escaping, and refusals.
REQUESTS = [
    "{}",
    '{"action":"GetDomains"}',
    '{"action":"DefaultRoute"}',
    '{"action":"GetRecords","domain":"example.com"}',
    '{"action":"GetRoutes","domain":"example.com"}',
    '{"action":"QueryRecord","domain":"example.com","name":"txt","recordType":"TXT"}',
    '{"action":"QueryRecords","domain":"example.com","name":"cdn","recordType":""}',
    '{"action":"QueryRecord","domain":"example.com","name":"none","recordType":"A"}',
    '{"action":"GetRecords","domain":"example.org"}',
    "not json",
    "[1]",
    b'{"a":"\xff"}',
    '{"action":1}',
    '{"action":"GetDomains","x":' + "[" * 126 + "]" * 126 + "}",
    '{"action":"GetDomains","x":' + "[" * 127 + "]" * 127 + "}",
    '{"action":"UpdateRecord","domain":"example.com","record":{"id":"x"},'
    '"newRecord":{"type":"A","value":"192.0.2.4","ttl":"600"}}',
    '{"action":"AddRecord","domain":"example.com","newRecord":{"name":"add","type":"TXT",'
    '"value":"v\\"\\u2028\\ud83d\\ude00","route":"","ttl":600}}',
    '{"action":"GetRecords","domain":"Example.COM."}',
]


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"203.0.113.9\n")

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, body):
    ts = str(int(time.time()))
    token = hashlib.sha1(f"{SECRET}@{ts}".encode()).hexdigest()
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=data, method="POST",
                                 headers={"Timestamp": ts, "Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return f"{r.status} {r.read().decode()}"
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.read().decode()}"


def outputs(binary, runner, echo_url, tmp):
    """Every output of one binary, keyed by what produced it."""
    sim = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--domain", "example.com", "--domain", "example.org",
                            "--record", f"example.com,txt,TXT,{TXT}",
                            "--record", "example.com,cdn,CNAME,cdn.example.net",
                            "--record", "example.com,home,A,198.51.100.1"],
                           stdout=subprocess.PIPE, text=True)
    srv = None
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", sim.stdout.readline()).group(0)
        port = free_port()
        conf = os.path.join(tmp, "aliddns.conf")
        with open(conf, "w") as f:
            f.write(f"[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint={url}\n"
                    f"state_file={tmp}/state\nip_urls={echo_url}\nretries=0\n"
                    "[home]\ndomain=example.com\nsub_domain=home\n"
                    "[new]\ndomain=example.com\nsub_domain=new\ncreate=true\nttl=120\n"
                    "[gone]\ndomain=example.com\nsub_domain=gone\n"
                    f"[httpdns]\nsecret={SECRET}\ndomains=example.com\nlisten=127.0.0.1:{port}\n")
        os.chmod(conf, 0o600)
        base = ([runner] if runner else []) + [binary, "-c", conf]

        def run(*args):
            r = subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)
            return f"exit {r.returncode}\n{r.stdout}"

        out = {"update": run("update")}
        with open(os.path.join(tmp, "state")) as f:
            out["state file"] = f.read()
        out["status --json"] = run("--json", "status")
        out["domains --json"] = run("--json", "domains")
        out["lines --json"] = run("--json", "lines", "example.com")
        out["records list --json"] = run("--json", "records", "list", "example.com")
        srv = subprocess.Popen(base + ["serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        for body in REQUESTS:
            shown = body if isinstance(body, str) else repr(body)
            shown = re.sub(r"(\[+)(\]+)", lambda m: f"[*{len(m.group(1))} ]*{len(m.group(2))}", shown)
            out[f"serve {shown}"] = post(port, body)
        return out
    finally:
        for p in (srv, sim):
            if p:
                p.terminate()
                p.wait(timeout=30)


def masked(text):
    text = re.sub(r'"(checked_at|changed_at)":\d+', r'"\1":T', text)
    text = re.sub(re.escape(tempfile.gettempdir()) + r"/aliddns-compare-\w+/\w+", "TMP", text)
    text = re.sub(r'"id":"0000000(\d)-[0-9a-f-]+"', r'"id":"DOMAIN\1"', text)
    return re.sub(r"RequestId [0-9A-F-]+", "RequestId R", text)


def main(argv):
    if len(argv) not in (3, 4) or argv[1].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    old, new = argv[1], argv[2]
    runner = argv[3] if len(argv) == 4 else None
    if not os.path.exists(SIM):
        print(f"compare-outputs: no simulator at {SIM} (cargo build -p alidns-sim)", file=sys.stderr)
        return 2
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    echo_url = f"http://127.0.0.1:{echo.server_address[1]}/"
    top = tempfile.mkdtemp(prefix="aliddns-compare-")
    try:
        got = {}
        for name, binary in (("old", old), ("new", new)):
            os.mkdir(os.path.join(top, name))
            got[name] = outputs(binary, runner, echo_url, os.path.join(top, name))
    finally:
        echo.shutdown()
        shutil.rmtree(top, ignore_errors=True)
    differ = 0
    for key, old_out in got["old"].items():
        a, b = masked(old_out), masked(got["new"][key])
        if a == b:
            print(f"same    {key}: {a[:100]!r}")
        else:
            differ += 1
            print(f"DIFFERS {key}\n  old: {a!r}\n  new: {b!r}")
    print(f"{len(got['old']) - differ} the same, {differ} different")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
