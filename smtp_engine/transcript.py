"""A masked record of the dialogue between the client and the SMTP server."""

import base64

MASK = "********"
WITHHELD = "[text withheld: it contained a credential]"
MAX_LINES = 1000
# Longer lines are cut: a hostile server must not fill memory or the log.
MAX_LINE_LENGTH = 500


def _b64(text):
    # As the session encodes credentials; a text it refuses to send is
    # still given a form here, so that building the forms never fails.
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return base64.b64encode(data).decode("ascii")


def secret_forms(credentials, secrets):
    """Return every form in which a secret could appear on the wire.

    Each password as is and in base64, the login in base64 (as AUTH LOGIN
    sends it) and the AUTH PLAIN token.
    """
    forms = set()
    for secret in secrets:
        if secret:
            forms.update((secret, _b64(secret)))
    if credentials:
        login, password = credentials
        if login:
            forms.add(_b64(login))
        if password:
            forms.add(_b64(f"\0{login}\0{password}"))
    return tuple(forms)


class Transcript:
    """Lines of the dialogue: ``C:`` client, ``S:`` server, ``*`` events.

    AUTH arguments and client lines answering a 334 challenge are masked;
    any other line with a secret form in it is withheld but for a reply's
    code. The message data is never recorded.
    """

    def __init__(self, forms=()):
        self._forms = list(forms)
        self._lines = []
        self._in_auth = False
        self._dropped = 0

    def _add(self, prefix, text):
        if len(self._lines) >= MAX_LINES:
            self._dropped += 1
            return
        line = prefix + text
        if self.withhold(line) is WITHHELD:
            line = prefix + WITHHELD
        elif len(line) > MAX_LINE_LENGTH:
            cut = len(line) - MAX_LINE_LENGTH
            line = f"{line[:MAX_LINE_LENGTH]}... ({cut} more characters)"
        self._lines.append(line)

    def client(self, line):
        if self._in_auth:
            self._add("C: ", MASK)
            return
        verb, _sep, rest = line.partition(" ")
        if verb.upper() == "AUTH":
            self._in_auth = True
            mechanism, _sep, response = rest.partition(" ")
            line = f"{verb} {mechanism} {MASK}" if response else line
        self._add("C: ", line)

    def client_data(self, size):
        self._add("C: ", f"<message data, {size} bytes>")

    def server(self, line, final=True):
        code = line[:4] if line[:3].isdigit() else ""
        self._add(f"S: {code}", line[len(code) :])
        if final and not line.startswith("334"):
            self._in_auth = False

    def event(self, text):
        self._add("* ", text)

    def withhold(self, text):
        """Return ``text``, or ``WITHHELD`` if a secret form occurs in it.

        The whole text goes, not the secret alone: a mask in place would show
        which word of a reply was the password.
        """
        return WITHHELD if any(form in text for form in self._forms) else text

    def text(self):
        lines = list(self._lines)
        if self._dropped:
            lines.append(f"* {self._dropped} more lines not recorded")
        return "\n".join(lines)
