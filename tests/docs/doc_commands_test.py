#!/usr/bin/env python3
"""The documents' commands, run for real against the built programs (registered by tests/docs/CMakeLists.txt).

- test_collector_quick_start: the blocks of docs/COLLECTOR.md marked <!-- test: collector-quick-start --> run in one
  bash, as written, except that /var/lib/ferry and /etc/ferry become folders of a temporary directory and the port
  8443 a free one (the test must not need root or a fixed port). It makes the certificate, the write key, starts the
  collector, sends the test event with curl and finds it with ferryctl.
- test_compliance_commands: every block of docs/COMPLIANCE.md marked <!-- test: compliance-commands --> runs against
  a fresh collector over TLS, holding a subject user-4711 (an identify and a track event), with FERRY_URL,
  FERRY_TOKEN and FERRY_CA_FILE set as the guide tells the officer to. Each ferryctl line must succeed (exit 0); a
  line naming a placeholder request id (req_1a2b...) must reach the collector and get "not found" (exit 4).
- test_flags_match_help: every option `ferry-collector --help` prints is in the command-line table of
  docs/COLLECTOR.md and every option of that table is in --help; the same for ferryctl's global options, and for
  ferry-agent's options in the "Running" section of docs/AGENT.md.

Environment: FERRY_COLLECTOR_BIN, FERRY_CTL_BIN, FERRY_AGENT_BIN (the built programs; the agent's is optional). Python 3 standard library, bash, openssl, curl.
"""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import check_docs  # noqa: E402  (the block parser and --extract)

COLLECTOR = os.environ.get("FERRY_COLLECTOR_BIN", "")
FERRYCTL = os.environ.get("FERRY_CTL_BIN", "")
AGENT = os.environ.get("FERRY_AGENT_BIN", "")  # optional: a build without the agent has no ferry-agent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blocks(doc, block_id):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        text = f.read()
    out = []
    for _, _, prev, body in check_docs.code_blocks(text):
        m = check_docs.TESTED.match(prev)
        if m and m.group(1) == block_id:
            out.append(body)
    return out


def env_with_programs(extra=None):
    env = dict(os.environ)
    dirs = sorted({os.path.dirname(COLLECTOR), os.path.dirname(FERRYCTL)})
    env["PATH"] = os.pathsep.join(dirs + [env.get("PATH", "")])
    for k in ("FERRY_URL", "FERRY_TOKEN", "FERRY_CA_FILE"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def wait_for_file(path, proc, timeout_s=60):
    """Until the collector wrote its port file (it does once it listens) or exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


class Collector:
    """A real ferry-collector over TLS on a free loopback port, with a compliance/operator token."""

    def __init__(self, work):
        self.work = work
        self.data = os.path.join(work, "data")
        os.makedirs(self.data, mode=0o700)
        self.cert = os.path.join(work, "cert.pem")
        key = os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", self.cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.write_key = self.ctl("--data-dir", self.data, "keys", "create-write-key", "--project", "shop").strip()
        self.token = self.ctl("--data-dir", self.data, "keys", "create-admin-token", "--roles",
                              "compliance,operator", "--name", "doc test").strip()
        self.log = open(os.path.join(work, "collector.log"), "wb")
        self.proc = subprocess.Popen([COLLECTOR, "--listen", "127.0.0.1:0", "--data-dir", self.data, "--tls-cert",
                                      self.cert, "--tls-key", key], stdout=self.log, stderr=subprocess.STDOUT)
        port_file = os.path.join(self.data, "collector.port")
        if not wait_for_file(port_file, self.proc):
            raise RuntimeError("the collector did not start")
        with open(port_file) as f:
            self.url = "https://127.0.0.1:%s" % f.read().strip()

    def ctl(self, *args):
        return subprocess.run([FERRYCTL] + list(args), check=True, stdout=subprocess.PIPE,
                              env=env_with_programs()).stdout.decode()

    def post(self, batch):
        req = urllib.request.Request(self.url + "/v1/batch", data=json.dumps({"batch": batch}).encode(),
                                     headers={"Authorization": "Bearer " + self.write_key,
                                              "Content-Type": "application/json"})
        ctx = ssl.create_default_context(cafile=self.cert)
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


class DocCommandsTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(COLLECTOR and FERRYCTL, "FERRY_COLLECTOR_BIN and FERRY_CTL_BIN must name the programs")
        self.work = tempfile.mkdtemp(prefix="ferry-doc-commands-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def test_collector_quick_start(self):
        parts = blocks("docs/COLLECTOR.md", "collector-quick-start")
        self.assertEqual(len(parts), 2, "the quick start has two tested blocks: set up and start, then check")
        script = "\n".join(parts)
        self.assertIn("openssl req", script)
        self.assertIn("curl", script)
        script = (script.replace("/var/lib/ferry", os.path.join(self.work, "var-lib-ferry"))
                  .replace("/etc/ferry", os.path.join(self.work, "etc-ferry"))
                  .replace("8443", str(free_port())))
        # The collector started with '&' is stopped when the script ends, whatever happened.
        wrapped = "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\nset -euo pipefail\n" + script + "\n"
        r = subprocess.run(["bash", "-c", wrapped], cwd=self.work, env=env_with_programs(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=240)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn('"accepted":2', out)  # the consent record and the event it admits
        self.assertRegex(out, r"write key for the app: fw_[0-9a-f]+")
        self.assertIn("Quick Start Test", out.split('"accepted":2', 1)[1])  # found by ferryctl after the send

    def test_compliance_commands(self):
        parts = blocks("docs/COMPLIANCE.md", "compliance-commands")
        self.assertGreaterEqual(len(parts), 5)
        ran = 0
        for n, block in enumerate(parts):
            work = os.path.join(self.work, "block%d" % n)
            os.makedirs(work)
            col = Collector(work)
            try:
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                # The person's consent on record first: the collector enforces it (issue 12).
                ans = col.post([
                    {"type": "consent", "userId": "user-4711", "anonymousId": "device-1", "messageId": "m0",
                     "timestamp": now, "purpose": "necessary", "deviceSeq": 1,
                     "properties": {"purpose": "analytics", "state": "granted", "method": "explicit", "seq": 1,
                                    "receiptId": "r-4711"}},
                    {"type": "identify", "userId": "user-4711", "anonymousId": "device-1", "messageId": "m1",
                     "timestamp": now, "purpose": "analytics", "traits": {"phone": "masked", "plan": "pro"}},
                    {"type": "track", "event": "Order Completed", "userId": "user-4711", "anonymousId": "device-1",
                     "messageId": "m2", "timestamp": now, "purpose": "analytics"}])
                self.assertEqual(ans["accepted"], 3, ans)
                env = env_with_programs({"FERRY_URL": col.url, "FERRY_TOKEN": col.token, "FERRY_CA_FILE": col.cert})
                for line in block.split("\n"):
                    command = line.split("  #", 1)[0].strip()
                    if not command.startswith("ferryctl "):
                        continue
                    r = subprocess.run(["bash", "-c", command], cwd=work, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, timeout=120)
                    out = r.stdout.decode("utf-8", "replace")
                    want = 4 if "req_1a2b..." in command else 0
                    self.assertEqual(r.returncode, want, "%s\n%s" % (command, out))
                    ran += 1
                    if " -o user-4711.json" in command:
                        self.check_export_as_documented(os.path.join(work, "user-4711.json"))
            finally:
                col.stop()
        self.assertGreaterEqual(ran, 12)

    def check_export_as_documented(self, path):
        """The export file has the keys COMPLIANCE.md names, at the level it names them."""
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        with open(os.path.join(ROOT, "docs/COMPLIANCE.md"), encoding="utf-8") as f:
            guide = f.read()
        para = guide.split("The export is one JSON object:", 1)[1].split("\n\n", 1)[0]
        top, per_project = para.split("Each entry has", 1)
        per_project = per_project.split("(every stored event as received)", 1)[0]
        for key in re.findall(r"`([a-zA-Z]+)`", top):
            if key != "ferry":
                self.assertIn(key, doc, "COMPLIANCE.md names %s at the top of the export" % key)
        self.assertEqual(doc["format"], "ferry-subject-export/1")
        self.assertEqual(len(doc["projects"]), 1)
        entry = doc["projects"][0]
        for key in re.findall(r"`([a-zA-Z]+)`", per_project):
            if key not in ("at", "purpose", "state", "previous"):  # members of consentHistory's items
                self.assertIn(key, entry, "COMPLIANCE.md names %s in each projects[] entry" % key)
        self.assertEqual(entry["userId"], "user-4711")
        self.assertEqual(len(entry["events"]), 3)  # the consent record (stored as an event too), identify, track

    def help_options(self, program):
        out = subprocess.run([program, "--help"], stdout=subprocess.PIPE, check=True).stdout.decode()
        head = out.split("Subcommands:", 1)[0]
        return set(re.findall(r"^\s+(?:-\w,)?(--[a-z][a-z0-9-]*)", head, re.M))

    def test_flags_match_help(self):
        with open(os.path.join(ROOT, "docs/COLLECTOR.md"), encoding="utf-8") as f:
            doc = f.read()
        table = doc.split("## Command line", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"`(--[a-z][a-z0-9-]*)", table)) | set(
            re.findall(r"`--[a-z][a-z0-9-]* [^`]*?(--[a-z][a-z0-9-]*)", table))
        documented |= set(re.findall(r", `(--[a-z][a-z0-9-]*)", table))
        helped = self.help_options(COLLECTOR)
        self.assertEqual(sorted(helped - documented), [], "in ferry-collector --help, missing from COLLECTOR.md")
        self.assertEqual(sorted(documented - helped), [], "in COLLECTOR.md's table, unknown to ferry-collector")

        section = doc.split("## ferryctl", 1)[1].split("\n## ", 1)[0]
        globals_line = re.search(r"Global options \(([^)]*)\)", section.replace("\n", " ")).group(1)
        documented = set(re.findall(r"--[a-z][a-z0-9-]*", globals_line)) | {"--help", "--version"}
        helped = self.help_options(FERRYCTL)
        self.assertEqual(sorted(helped ^ documented), [], "ferryctl's global options differ from COLLECTOR.md")

        if AGENT:
            with open(os.path.join(ROOT, "docs/AGENT.md"), encoding="utf-8") as f:
                running = f.read().split("## Running", 1)[1].split("\n## ", 1)[0]
            documented = set(re.findall(r"--[a-z][a-z0-9-]*", running))
            helped = self.help_options(AGENT)
            self.assertEqual(sorted(helped ^ documented), [], "ferry-agent's options differ from AGENT.md's Running")


if __name__ == "__main__":
    unittest.main()
