"""A real DNS server on loopback (dnslib), serving records made for a test.

``LoopbackDnsServer(zone)`` answers over UDP on a free loopback port from
``zone``, text in zone-file syntax (``example.com. 300 IN TXT "v=spf1 -all"``):
the records of a name and type asked for, no answer for a known name without
that type, NXDOMAIN for any other name. It never forwards a question.
"""

import socket
import threading

from .servers import _check_loopback


def _udp_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LoopbackDnsServer:
    """An authoritative-only DNS server for the records of ``zone``."""

    def __init__(self, zone, host="127.0.0.1"):
        _check_loopback(host)
        self.host = host
        self.port = 0
        self.zone = zone
        self.questions = []
        self._server = None
        self._thread = None

    @property
    def address(self):
        """``host:port``, as the product's resolver setting takes it."""
        return f"{self.host}:{self.port}"

    def _resolver(self):
        from dnslib import QTYPE, RCODE, RR

        records = RR.fromZone(self.zone)
        owner = self

        class ZoneResolver:
            def resolve(self, request, _handler):
                reply = request.reply()
                name = request.q.qname
                qtype = QTYPE[request.q.qtype]
                owner.questions.append((str(name), qtype))
                known = False
                for record in records:
                    if record.rname == name:
                        known = True
                        if QTYPE[record.rtype] == qtype:
                            reply.add_answer(record)
                if not known:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply

        return ZoneResolver()

    def start(self):
        """Start answering; return self."""
        from dnslib.server import DNSLogger, DNSServer

        self.port = self.port or _udp_port(self.host)
        quiet = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-error,-data")
        self._server = DNSServer(
            self._resolver(), address=self.host, port=self.port, logger=quiet
        )
        self._thread = threading.Thread(
            target=self._server.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="loopback-dns",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        """Stop the server and its thread."""
        server, self._server = self._server, None
        if server is not None:
            server.server.shutdown()
            server.server.server_close()
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
