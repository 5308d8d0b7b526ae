"""The live board (--board): its JSON, its server under bad and hostile clients, and the
page itself in a real browser (Debian's Chromium, headless)."""

import http.server
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request

from . import support
from .support import json_lines

HOSTILE = "<img src=x onerror=alert(1)>"
ARTEFACTS = os.environ.get("MULTICAST_TEST_ARTEFACTS",
                           os.path.join(tempfile.gettempdir(), "multicast-test-artefacts"))


def free_tcp_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url, method="GET", timeout=5):
    """(status, body) of one request."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class BoardCase(support.ProcessTestCase):
    """A sender with --board over 127.0.0.1, and receivers that come and go."""

    def setUp(self):
        super().setUp()
        self.port = support.free_udp_port()
        self.web = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.web}"

    def start(self, name, *arguments, limit=()):
        return self.track(support.Watched([*limit, *support.python_script(
            name, "-i", "127.0.0.1", "-p", str(self.port), *arguments)]))

    def receiver(self, name):
        child = self.start("socket_multicast_receiver.py", "--json", "--quiet", "--name", name)
        self.assertTrue(support.wait_until(
            lambda: any(e["type"] == "start" for e in json_lines(child.lines)), 5), child.stderr)
        return child

    def sender(self, *arguments, limit=()):
        sender = self.start("socket_multicast_sender.py", "--count", "0", "--interval", "0.3",
                            "--board", str(self.web), "--json", *arguments, limit=limit)
        self.assertTrue(support.wait_until(lambda: self.state() is not None, 5), sender.stderr)
        return sender

    def state(self):
        try:
            status, body = fetch(self.url + "/board.json", timeout=2)
        except OSError:
            return None
        return json.loads(body) if status == 200 and body != b"{}" else None

    def rows(self):
        return {row["name"]: row for row in (self.state() or {}).get("receivers", [])}


class BoardTest(BoardCase):
    def test_rows_come_and_go_and_a_hostile_name_is_only_text(self):
        left = self.receiver("left")
        self.receiver(HOSTILE)
        sender = self.sender("--expect", "2")
        self.assertTrue(support.wait_until(lambda: {"left", HOSTILE} <= set(self.rows()), 3),
                        self.state())
        state = self.state()
        self.assertEqual((state["group"], state["port"], state["ttl"], state["expected"]),
                         (support.GROUP, self.port, 1, 2))
        row = self.rows()["left"]
        self.assertEqual((row["state"], row["address"], row["hops"]),
                         ("answering", "127.0.0.1", 0))
        left.signal(signal.SIGTERM)
        self.assertTrue(support.wait_until(
            lambda: self.rows()["left"]["state"] != "answering", 2), self.rows())
        self.assertEqual(self.rows()[HOSTILE]["state"], "answering")
        sender.signal(signal.SIGTERM)
        self.assertEqual(sender.wait(10), 1, "a round without 2 receivers fails")

    def test_bad_requests_get_a_status_never_a_traceback(self):
        self.receiver("left")
        sender = self.sender()
        self.assertEqual(fetch(self.url + "/", "POST")[0], 405)
        self.assertEqual(fetch(self.url + "/board.json", "DELETE")[0], 405)
        self.assertEqual(fetch(self.url + "/../etc/passwd")[0], 404)
        self.assertEqual(fetch(self.url + "/board.json?x=1")[0], 200)
        status, body = fetch(self.url + "/", "HEAD")
        self.assertEqual((status, body), (200, b""))
        with socket.create_connection(("127.0.0.1", self.web), timeout=5) as client:
            client.sendall(b"\x00\xffnot http at all\r\n\r\n")
            self.assertTrue(client.recv(100).startswith(b"HTTP/1.1 400 "))
        sender.signal(signal.SIGTERM)
        self.assertEqual(sender.wait(10), 0, sender.stderr)
        self.assertNotIn("Traceback", sender.stderr)

    def test_silent_and_many_clients_stop_neither_the_sending_nor_the_counting(self):
        support.skip_unless(shutil.which("prlimit"), "no prlimit (util-linux)")
        self.receiver("left")
        # 1,100 connections, more than the sender may have files open: each one it kept
        # open would stop it from taking new ones.
        sender = self.sender(limit=["prlimit", "--nofile=1024"])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2048:  # room for the 1,000 sockets below in this process
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        idle = []  # connections that never send a request
        try:
            for _ in range(1100):
                idle.append(socket.create_connection(("127.0.0.1", self.web), timeout=5))
            sent = self.state()["sent"]
            self.assertTrue(support.wait_until(
                lambda: (self.state() or {}).get("sent", 0) >= sent + 5, 5), self.state())
        finally:
            for client in idle:
                client.close()
        sender.signal(signal.SIGTERM)
        self.assertEqual(sender.wait(10), 0, sender.stderr)
        summary = json_lines(sender.lines)[-1]
        entry, = summary["receivers"]
        self.assertEqual((entry["acks"], entry["lost"]), (summary["sent"], 0))


class BrowserCase(BoardCase):
    """The page, as a browser runs it: its own script fetches the state and draws it."""

    def setUp(self):
        self.browser = shutil.which("chromium") or shutil.which("chromium-browser")
        support.skip_unless(self.browser, "no Chromium here (apt-get install chromium)")
        super().setUp()

    def page(self, *arguments):
        """The page's DOM after its scripts ran (or with arguments, e.g. a screenshot)."""
        result = subprocess.run(
            [self.browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=3000", *(arguments or ["--dump-dom"]), self.url + "/"],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        return result.stdout


class BrowserTest(BrowserCase):
    def test_the_page_draws_the_rows_and_greys_out_a_stopped_receiver(self):
        left = self.receiver("left")
        self.receiver(HOSTILE)
        sender = self.sender()
        self.assertTrue(support.wait_until(lambda: {"left", HOSTILE} <= set(self.rows()), 3))
        page = self.page()
        self.assertIn('<tr class="answering"><td>left</td>', page)
        # The hostile name is text in a cell: escaped in the DOM, no <img> element made.
        self.assertIn("<td>&lt;img src=x onerror=alert(1)&gt;</td>", page)
        self.assertNotIn("<img", page)
        os.makedirs(ARTEFACTS, exist_ok=True)
        screenshot = os.path.join(ARTEFACTS, "board.png")
        self.page("--window-size=1920,1080", f"--screenshot={screenshot}")
        with open(screenshot, "rb") as picture:
            self.assertEqual(picture.read(8), b"\x89PNG\r\n\x1a\n")
        left.signal(signal.SIGTERM)
        self.assertTrue(support.wait_until(
            lambda: self.rows()["left"]["state"] != "answering", 2))
        self.assertRegex(self.page(), r'<tr class="(silent|gone)( lossy)?"><td>left</td>')
        sender.signal(signal.SIGTERM)
        sender.wait(10)


class FakeSenderTest(BrowserCase):
    """The page against a server that plays a sender: gone then back, or 200 receivers."""

    def serve(self, answers):
        """Serve the page, and answers[i] (status, state) for the i-th /board.json asked
        for (the last one from then on)."""
        page = support.load("socket_multicast_sender.py").BOARD_PAGE
        asked = []

        class Fake(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/":
                    status, body = 200, page
                else:
                    status, state = answers[min(len(asked), len(answers) - 1)]
                    asked.append(self.path)
                    body = json.dumps(state).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *arguments):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fake)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        return asked

    def fake_state(self, receivers):
        return {"group": "224.10.10.10", "port": 10000, "ttl": 1, "session": "00", "sent": 9,
                "mode": "rounds", "answering": len(receivers), "expected": None,
                "never_heard": [], "stopped": False, "receivers": receivers}

    @staticmethod
    def row(index):
        return {"name": f"r{index}" + "\x07" * 3 + "x" * 5000, "address": f"10.0.{index // 250}"
                f".{index % 250 + 1}", "state": "answering", "silent": 0, "acks": 9,
                "loss_pct": 0.0, "rtt_p50_ms": 0.5, "hops": 0, "last_heard_s": 0.3}

    def test_the_page_says_sender_stopped_when_its_state_stops_coming(self):
        """A server with no state to give (a sender gone): the page says so rather than
        show figures as if they were live."""
        self.serve([(503, {})])
        dom = self.page()
        self.assertIn('<body class="stopped">', dom)
        self.assertIn('<div id="banner">sender stopped</div>', dom)

    def test_the_page_carries_on_when_a_sender_comes_back(self):
        asked = self.serve([(503, {}), (200, self.fake_state([self.row(1)]))])
        dom = self.page()
        self.assertGreaterEqual(len(asked), 2, "the page asked again after a failure")
        self.assertNotIn('class="stopped"', dom)
        self.assertEqual(dom.count('<tr class="answering">'), 1)

    def test_thirty_receivers_get_rows_sized_to_fit_one_screen(self):
        self.serve([(200, self.fake_state([self.row(i) for i in range(30)]))])
        dom = self.page()
        self.assertEqual(dom.count('<tr class="answering">'), 30)
        self.assertIn('<body style="--rows: 30;">', dom)  # the font follows the rows
        os.makedirs(ARTEFACTS, exist_ok=True)
        self.page("--window-size=1920,1080",
                  f"--screenshot={os.path.join(ARTEFACTS, 'board-30.png')}")

    def test_two_hundred_receivers_with_long_and_odd_names_get_compact_rows(self):
        self.serve([(200, self.fake_state([self.row(i) for i in range(200)]))])
        dom = self.page()
        self.assertEqual(dom.count('<tr class="answering">'), 200)
        self.assertIn('class="compact"', dom)
        os.makedirs(ARTEFACTS, exist_ok=True)
        screenshot = os.path.join(ARTEFACTS, "board-200.png")
        self.page("--window-size=1920,1080", f"--screenshot={screenshot}")
        self.assertTrue(os.path.getsize(screenshot) > 0)


class TerminalBoardTest(BoardCase):
    def test_live_prints_board_lines_when_stdout_is_not_a_terminal(self):
        self.receiver("left")
        sender = self.start("socket_multicast_sender.py", "--count", "4", "--interval", "0.5",
                            "--live")
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        board = [line for line in sender.lines if line.startswith("board: ")]
        self.assertTrue(any("answering" in line and "left" in line for line in board), board)
        self.assertTrue(any(line.startswith("seq ") for line in sender.lines))

    def test_live_redraws_in_place_on_a_terminal(self):
        import pty
        self.receiver("left")
        main, child = pty.openpty()
        self.addCleanup(os.close, main)
        process = subprocess.Popen(support.python_script(
            "socket_multicast_sender.py", "-i", "127.0.0.1", "-p", str(self.port), "--count",
            "3", "--interval", "0.6", "--live"), stdout=child, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
        os.close(child)
        output = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            output += chunk
        self.assertEqual(process.wait(20), 0, process.stderr.read())
        process.stderr.close()
        text = output.decode("utf-8", "replace")
        self.assertGreaterEqual(text.count("\x1b[H\x1b[J"), 2, text)
        self.assertIn("left", text)
        self.assertNotIn("\nseq 1:", text, "in place, the board stands for the round lines")


class MeshPageTest(BrowserCase):
    """A mesh's board (--mesh --board): a matrix per kind of probe, rows sending, columns
    receiving, each cell coloured by its loss, a peer gone greyed in its row and column."""

    serve = FakeSenderTest.serve

    @staticmethod
    def mesh_state(peers):
        names = [f"pc{index}" for index in range(peers)]
        rows = [{"address": f"10.0.0.{index + 1}", "name": name, "state": "heard",
                 "last_heard_s": 0.2} for index, name in enumerate(names)]
        rows[0]["state"], rows[-1]["state"] = "me", "gone"
        cell = [0.0, 100, 0, 0.4, 0]
        matrix = {kind: [[None if i == j else list(cell) for j in range(peers)]
                         for i in range(peers)] for kind in ("multicast", "unicast")}
        matrix["multicast"][2][3] = [25.0, 75, 25, 0.5, 0]  # pc2 to pc3 loses a quarter
        matrix["unicast"][1][4] = None  # not told yet
        return {"mesh": True, "group": "239.7.7.7", "port": 10000, "ttl": 1, "rounds": 100,
                "stopped": False, "peers": rows, "matrix": matrix, "not_shown": 0}

    def test_thirty_peers_fit_one_screen_and_each_cell_says_its_loss(self):
        self.serve([(200, self.mesh_state(30))])
        dom = self.page()
        self.assertIn('class="mesh"', dom)
        self.assertEqual(dom.count('<div class="matrix">'), 2)
        self.assertEqual(dom.count('<td class="self"></td>'), 60)
        self.assertEqual(dom.count('<td class="lost" title="pc2 to pc3, multicast: 75 received, '
                                   '25 lost (25%), rtt p50 0.5 ms, 0 hops">25</td>'), 1)
        self.assertEqual(dom.count('title="pc1 to pc4, unicast: not told yet">?</td>'), 1)
        # pc29 is gone: in each matrix its row and column heads and their 29 cells each, grey.
        self.assertEqual(dom.count(' gone" title'), 2 * (1 + 1 + 29 + 29))
        self.assertIn("29 / 30 peers", dom)
        os.makedirs(ARTEFACTS, exist_ok=True)
        screenshot = os.path.join(ARTEFACTS, "board-mesh-30.png")
        self.page("--window-size=1920,1080", f"--screenshot={screenshot}")
        with open(screenshot, "rb") as picture:
            self.assertEqual(picture.read(8), b"\x89PNG\r\n\x1a\n")

    def test_a_hundred_peers_are_colours_with_their_numbers_on_hover(self):
        self.serve([(200, self.mesh_state(100))])
        dom = self.page()
        self.assertIn("dense", dom)
        self.assertEqual(dom.count("<td "), 2 * 100 * 100)
        os.makedirs(ARTEFACTS, exist_ok=True)
        self.page("--window-size=1920,1080",
                  f"--screenshot={os.path.join(ARTEFACTS, 'board-mesh-100.png')}")
