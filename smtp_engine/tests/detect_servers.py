"""A DNS server and an HTTP server on loopback, for the detection tests.

``LoopbackDnsServer`` answers UDP queries from a table of records
(``{("smtp.example.test", "A"): ["127.0.0.1"]}``), as an authoritative
server would: a known name without records of the asked type gets an empty
answer, an unknown name NXDOMAIN. ``LoopbackHttpServer`` serves documents by
host name and path, as virtual hosts do. Both record what they were asked,
and are context managers that stop their thread and close their socket.
``resolver_for`` gives a dnspython resolver that asks only the test server.
"""

import http.server
import select
import socket
import threading

import dns.message
import dns.name
import dns.rcode
import dns.resolver
import dns.rrset

from .servers import _check_loopback


class LoopbackDnsServer:
    """An authoritative DNS server over UDP on a loopback address."""

    _POLL = 0.05

    def __init__(self, records=None, host="127.0.0.1"):
        _check_loopback(host)
        self.host = host
        self.port = 0
        self.records = {}
        self.queries = []
        for (name, rdtype), values in (records or {}).items():
            self.add(name, rdtype, *values)
        self._sock = None
        self._thread = None
        self._stop = threading.Event()

    def add(self, name, rdtype, *values):
        """Add records of ``name``, in zone-file syntax (``"0 1 587 smtp.x."``)."""
        key = (dns.name.from_text(name), rdtype.upper())
        self.records.setdefault(key, []).extend(values)

    def start(self):
        """Start answering; return self."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((self.host, self.port))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._serve, name="LoopbackDnsServer", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self):
        while not self._stop.is_set():
            readable, _w, _x = select.select([self._sock], [], [], self._POLL)
            if not readable:
                continue
            try:
                data, client = self._sock.recvfrom(4096)
                query = dns.message.from_wire(data)
            except (OSError, dns.exception.DNSException):
                continue
            self._sock.sendto(self._answer(query).to_wire(), client)

    def _answer(self, query):
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((question.name.to_text(omit_final_dot=True), rdtype))
            values = self.records.get((question.name, rdtype))
            if values:
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, "IN", rdtype, *values)
                )
            elif not any(name == question.name for name, _type in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def stop(self):
        """Stop answering and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def resolver_for(server):
    """Return a dnspython resolver that asks ``server`` and nothing else."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server.host]
    resolver.port = server.port
    return resolver


class LoopbackHttpServer:
    """Serves ``documents[(host, path)]`` over plain HTTP on loopback.

    ``path`` includes the query string. Anything else is a 404. ``requests``
    lists the ``(host, path)`` asked for, the port left out of the host.
    """

    def __init__(self, documents=None, host="127.0.0.1"):
        _check_loopback(host)
        self.host = host
        self.port = 0
        self.documents = dict(documents or {})
        self.requests = []
        self._server = None
        self._thread = None

    def _handler(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").rpartition(":")[0]
                owner.requests.append((host, self.path))
                body = owner.documents.get((host, self.path))
                if body is None:
                    self.send_error(404)
                    return
                body = body.encode() if isinstance(body, str) else body
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def start(self):
        """Start serving; return self."""
        self._server = http.server.ThreadingHTTPServer(
            (self.host, self.port), self._handler()
        )
        self._server.daemon_threads = False
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="LoopbackHttpServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, join the threads and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def client_config(host, port, socket_type, *, authentication="password-cleartext"):
    """Return a configuration file in Thunderbird's format with one SMTP server."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    <incomingServer type="imap">
      <hostname>imap.example.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>{port}</port>
      <socketType>{socket_type}</socketType>
      <authentication>{authentication}</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""
