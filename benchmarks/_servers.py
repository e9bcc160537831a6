"""A slow loopback SMTP server, for the benchmarks of checks in bulk.

``SlowServer`` speaks enough SMTP for a test message (greeting, EHLO/HELO,
MAIL, RCPT, DATA, RSET, NOOP, QUIT) and waits ``delay`` seconds before each
of its replies, the greeting included, as a distant or busy server does.
Each connection is served by a thread of its own, so that many clients wait
side by side; ``conversations`` keeps when each began and ended.
"""

import time

import _common  # noqa: F401  (puts the repository root on sys.path)

from smtp_engine.tests.servers import _SocketServer

REPLIES = {
    "EHLO": b"250-slow.localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
    "HELO": b"250 slow.localhost\r\n",
    "MAIL": b"250 2.1.0 OK\r\n",
    "RCPT": b"250 2.1.5 OK\r\n",
    "DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
    "RSET": b"250 2.0.0 OK\r\n",
    "NOOP": b"250 2.0.0 OK\r\n",
    "QUIT": b"221 2.0.0 Bye\r\n",
}


class SlowServer(_SocketServer):
    """Answers every command, the greeting included, after ``delay`` s."""

    # Many clients connect at the same moment: a short backlog would drop
    # their first SYN and add the kernel's one-second retry to the figures.
    BACKLOG = 256

    def __init__(self, host="127.0.0.1", port=0, delay=0.5):
        super().__init__(host, port)
        self.delay = delay
        self.messages = 0
        self.conversations = []

    def start(self):
        super().start()
        self._listener.listen(self.BACKLOG)
        return self

    def _reply(self, client, data):
        if self._stop.wait(self.delay):
            raise EOFError
        client.sendall(data)

    def _serve(self, client):
        began = time.perf_counter()
        client.settimeout(self._POLL)
        buffer = b""
        in_data = False
        try:
            self._reply(client, b"220 slow.localhost ESMTP\r\n")
            while not self._stop.is_set():
                if in_data:
                    # The message ends with a line holding only a dot.
                    end = (b"\r\n" + buffer).find(b"\r\n.\r\n")
                    if end < 0:
                        buffer += self._recv(client)
                        continue
                    buffer = buffer[end + 3 :]
                    in_data = False
                    with self._lock:
                        self.messages += 1
                    self._reply(client, b"250 2.0.0 Queued\r\n")
                    continue
                line, found, rest = buffer.partition(b"\r\n")
                if not found:
                    buffer += self._recv(client)
                    continue
                buffer = rest
                verb = line[:4].decode("ascii", "replace").upper()
                self._reply(client, REPLIES.get(verb, b"502 5.5.2 Not known\r\n"))
                if verb == "DATA":
                    in_data = True
                elif verb == "QUIT":
                    return
        except (OSError, EOFError):
            return
        finally:
            client.close()
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
                self.conversations.append((began, time.perf_counter()))

    def _recv(self, client):
        while not self._stop.is_set():
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise EOFError
            return data
        raise EOFError
