"""A hostile server never breaks the engine (property-based).

Each case scripts one connection of a loopback server: the replies of a
server that accepts, except at one turn of the dialogue, where it misbehaves
(closes, cuts a line off, sends garbage or a reply that never ends, drips,
hangs, refuses). Whatever it does, the engine must come back with a result
or an ``SmtpEngineError`` that names the step of that turn, within the
deadline, with bounded memory, and may report success only when the server
really accepted the message with a complete reply.

The number of cases per property comes from the Hypothesis profile (see
conftest.py): ``HYPOTHESIS_PROFILE=thorough`` runs more of them.
"""

import contextlib
import re
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_engine import SmtpEngineError, SmtpSettings, Step, open_connection
from smtp_engine import send_test_message as send
from smtp_engine.tests.servers import ScriptedServer

TIMEOUT = 0.5
# How far past its deadline the engine may come back.
LATENESS = 1.0
# Fixed limits on what one exchange may cost, whatever the server sends.
MAX_TRANSCRIPT = 600_000
MAX_PEAK_MEMORY = 8_000_000

GOOD = {
    "greeting": b"220 hostile.test ESMTP\r\n",
    "ehlo": b"250-hostile.test\r\n250 8BITMIME\r\n",
    "ehlo_starttls": b"250-hostile.test\r\n250 STARTTLS\r\n",
    "ehlo_auth": b"250-hostile.test\r\n250 AUTH PLAIN LOGIN\r\n",
    "starttls": b"220 go ahead\r\n",
    "auth": b"235 2.7.0 accepted\r\n",
    "mail": b"250 ok\r\n",
    "rcpt": b"250 ok\r\n",
    "data": b"354 go ahead\r\n",
    "body": b"250 ok: queued as Q1\r\n",
    "quit": b"221 bye\r\n",
}
# Turns of the dialogue per security: (name, what the server reads, step).
_TAIL = [
    ("mail", "line", Step.SENDER),
    ("rcpt", "line", Step.RECIPIENT),
    ("data", "line", Step.DATA),
    ("body", "body", Step.DATA),
    ("quit", "line", Step.QUIT),
]
DIALOGUES = {
    "none": [
        ("greeting", None, Step.GREETING),
        ("ehlo", "line", Step.EHLO),
        *_TAIL,
    ],
    "ssl": [
        ("handshake", None, Step.TLS),
        ("greeting", None, Step.GREETING),
        ("ehlo_auth", "line", Step.EHLO),
        ("auth", "line", Step.AUTH),
        *_TAIL,
    ],
    "starttls": [
        ("greeting", None, Step.GREETING),
        ("ehlo_starttls", "line", Step.EHLO),
        ("starttls", "line", Step.TLS),
        ("handshake", None, Step.TLS),
        ("ehlo_auth", "line", Step.EHLO),
        ("auth", "line", Step.AUTH),
        *_TAIL,
    ],
}
# The turns after which open_connection hands the session over.
SET_UP_TURNS = {"none": 2, "ssl": 4, "starttls": 6}
# Reply codes that refuse at each turn (smtplib takes 503 to AUTH as success);
# 334 is a challenge, a refusal anywhere but at AUTH.
REFUSALS = [334, 421, 450, 451, 452, 454, 500, 501, 502, 504, 530, 535, 550, 554]
STEP_ORDER = list(Step)
# A complete, well-formed positive reply to the message data (what follows
# it answers the next command).
ACCEPTED = re.compile(rb"(250-[^\r\n]*\r?\n)*250( [^\r\n]*)?\r?\n")


def _good_actions(name):
    if name == "handshake":
        return [("tls",)]
    if name == "quit":
        return [("send", GOOD["quit"]), ("close",)]
    return [("send", GOOD[name])]


_no_newline = st.binary(max_size=80).map(lambda data: data.replace(b"\n", b""))
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=60,
)


def _cut(name, then):
    """A reply cut off before its final CRLF, then a close or a hang."""
    good = GOOD.get(name, b"220 ok\r\n")
    return st.one_of(st.just(good[:-2]), st.just(good[:-1]), _no_newline).map(
        lambda cut: [("send", cut), (then,)]
    )


def _endless_slowly(name):
    code = GOOD.get(name, b"250")[:3]
    return st.just([("endless", code + b"-more\r\n", 0.05)])


def _endless_lines(name):
    code = GOOD.get(name, b"250")[:3]
    return st.one_of(
        # Continuation lines without end, or more than any reply may have.
        st.just([("endless", code + b"-more\r\n" * 50, 0.002)]),
        st.integers(501, 3000).map(
            lambda n: [("send", code + b"-x\r\n" * n + code + b" end\r\n")]
        ),
        # Lines as long as a line may be, more bytes than a reply may have.
        st.integers(9, 40).map(
            lambda n: [
                ("send", (code + b"-" + b"x" * 8180 + b"\r\n") * n + code + b"\r\n")
            ]
        ),
        # One line longer than any reply line may be.
        st.integers(8193, 70_000).map(
            lambda n: [("send", code + b" " + b"x" * n + b"\r\n")]
        ),
    )


def _drip(name, intervals):
    good = GOOD.get(name, b"220 ok\r\n")
    return st.sampled_from(intervals).map(lambda interval: [("drip", good, interval)])


@st.composite
def _refusal(draw):
    code = draw(st.sampled_from(REFUSALS))
    text = draw(_text).encode("utf-8", "surrogateescape")
    separator = b" " if text else b""
    return [("send", b"%d%s%s\r\n" % (code, separator, text))]


# Arbitrary lines, and lines that start like a good reply and go wrong.
_garbage_line = st.one_of(
    st.binary(max_size=200),
    st.tuples(
        st.sampled_from([b"220", b"235", b"250", b"354"]), st.binary(max_size=20)
    ).map(b"".join),
)
_garbage_lines = st.lists(_garbage_line, min_size=1, max_size=5).map(
    lambda lines: [("send", b"".join(line + b"\r\n" for line in lines))]
)


@st.composite
def scripts(
    draw, securities=("none", "ssl", "starttls"), set_up_only=False, slow=False
):
    """Draw ``(security, script, turn, kind, body_reply)``: one hostile turn.

    Every other turn is the good one; ``body_reply`` is what the server
    answers to the message data.

    ``kind`` says what the hostile turn does: "cut", "endless", "close" and
    "hang" can never be a valid reply, "refusal" is a valid refusing one,
    "drip" the good reply slowly, "garbage" arbitrary lines. ``slow`` draws
    the behaviours that only the deadline ends, the others end by the
    server's doing.
    """
    security = draw(st.sampled_from(securities))
    dialogue = DIALOGUES[security]
    last = SET_UP_TURNS[security] if set_up_only else len(dialogue)
    turn = draw(st.integers(0, last - 1))
    name = dialogue[turn][0]
    if slow:
        behaviours = {
            "cut": _cut(name, "hang"),
            "endless": _endless_slowly(name),
            "drip": _drip(name, [0.01, 0.05, 0.2]),
            "hang": st.just([("hang",)]),
        }
    else:
        behaviours = {
            "cut": _cut(name, "close"),
            "endless": _endless_lines(name),
            "drip": _drip(name, [0.0005]),
            "garbage": _garbage_lines,
            "close": st.just([("close",)]),
        }
        if name != "handshake":
            behaviours["refusal"] = _refusal()
        if name == "auth":
            # A challenge that is no base64, or whose answer gets no reply.
            behaviours["challenge"] = _text.map(
                lambda text: [("send", b"334 " + text.encode() + b"\r\n")]
            )
    kind = draw(st.sampled_from(sorted(behaviours)))
    hostile = draw(behaviours[kind])
    if name == "handshake" and kind in ("cut", "garbage"):
        hostile = hostile[:1] + [("close",)]
    script = []
    body_reply = b""
    for index, (other, read, _step) in enumerate(dialogue[:last]):
        actions = hostile if index == turn else _good_actions(other)
        script.append((read, actions))
        if index == turn and name.startswith("ehlo") and kind == "refusal":
            # A refused EHLO is followed by HELO: refuse that too.
            script.append(("line", hostile))
        if other == "body":
            body_reply = b"".join(a[1] for a in actions if a[0] in ("send", "drip"))
    return security, script, turn, kind, body_reply


def _settings(server, security, certs):
    return SmtpSettings(
        host=server.host,
        port=server.port,
        encryption=security,
        timeout=TIMEOUT,
        auth_required=security != "none",
        username="mailbox",
        password="hostile-test-secret",
        sender_email="sender@example.com",
        cafile=str(certs.ca_cert),
    )


def _expected_step(security, turn):
    return DIALOGUES[security][turn][2]


def _check_outcome(result, elapsed, case):
    """The properties every outcome of send_test_message must have."""
    security, _script, turn, kind, body_reply = case
    step = _expected_step(security, turn)
    about = f"{elapsed=:.2f} {result.step} {result.hint} {step}\n{result.transcript}"
    assert elapsed <= TIMEOUT + LATENESS, about
    assert len(result.transcript) <= MAX_TRANSCRIPT
    assert "hostile-test-secret" not in result.transcript
    if step == Step.QUIT:
        # The message was accepted before: what QUIT meets cannot undo it.
        assert result.ok, about
        return
    if result.ok:
        # Success only on a complete, well-formed acceptance of the data.
        assert kind in ("drip", "garbage"), about
        assert ACCEPTED.match(body_reply), about
        return
    _check_failed_step(result, step, kind, about)


def _check_failed_step(result, step, kind, about):
    """The failure names the step where the server misbehaved.

    Two exceptions: garbage may hold a good reply, so the failure may come
    later; a drip may finish, and leave too little time for a later step.
    """
    if kind == "garbage":
        assert STEP_ORDER.index(result.step) >= STEP_ORDER.index(step), about
    elif kind == "drip" and result.step != step:
        assert STEP_ORDER.index(result.step) > STEP_ORDER.index(step), about
        assert result.hint == "timeout", about
    else:
        assert result.step == step, about


# Cases that only the deadline ends run this many at a time, each against a
# server of its own, so that thousands of cases take seconds, not hours.
PARALLEL = 16


def _run_send(server, case, certs):
    server.scripts[:] = [case[1]]
    started = time.monotonic()
    result = send(_settings(server, case[0], certs), "Main")
    return result, time.monotonic() - started


def _run_open(server, case, certs):
    server.scripts[:] = [case[1]]
    started = time.monotonic()
    try:
        session = open_connection(_settings(server, case[0], certs))
    except SmtpEngineError as exc:
        return exc.result, time.monotonic() - started
    session.close()
    return None, time.monotonic() - started


def _check_set_up(result, elapsed, case):
    """The properties every outcome of open_connection must have."""
    security, _script, turn, kind, _body_reply = case
    assert elapsed <= TIMEOUT + LATENESS
    if result is None:
        # Only a server that ends up accepting gives a session.
        assert kind in ("drip", "garbage")
        return
    assert not result.ok
    assert len(result.transcript) <= MAX_TRANSCRIPT
    step = _expected_step(security, turn)
    _check_failed_step(result, step, kind, f"{elapsed=:.2f}\n{result.transcript}")


@contextlib.contextmanager
def _servers(certs, count=1):
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(ScriptedServer(certs=certs)) for _ in range(count)]


def _in_parallel(servers, cases, run, certs):
    with ThreadPoolExecutor(len(cases), thread_name_prefix="hostile") as pool:
        futures = [
            pool.submit(run, server, case, certs)
            for server, case in zip(servers, cases, strict=True)
        ]
        return [future.result() for future in futures]


@pytest.mark.parametrize(
    ("run", "check", "set_up_only"),
    [(_run_send, _check_outcome, False), (_run_open, _check_set_up, True)],
    ids=["send_test_message", "open_connection"],
)
def test_a_server_that_misbehaves_at_once(certs, run, check, set_up_only):
    with _servers(certs) as (server,):

        @settings(max_examples=settings().max_examples * 8)
        @given(case=scripts(set_up_only=set_up_only))
        def check_case(case):
            check(*run(server, case, certs), case)

        check_case()


@pytest.mark.parametrize(
    ("run", "check", "set_up_only"),
    [(_run_send, _check_outcome, False), (_run_open, _check_set_up, True)],
    ids=["send_test_message", "open_connection"],
)
def test_a_server_that_stalls_until_the_deadline(certs, run, check, set_up_only):
    with _servers(certs, PARALLEL) as servers:

        @settings(max_examples=max(settings().max_examples // 4, 1))
        @given(
            cases=st.lists(
                scripts(set_up_only=set_up_only, slow=True),
                min_size=PARALLEL,
                max_size=PARALLEL,
            )
        )
        def check_cases(cases):
            for outcome, case in zip(
                _in_parallel(servers, cases, run, certs), cases, strict=True
            ):
                check(*outcome, case)

        check_cases()


@pytest.mark.parametrize("security", ["none", "starttls"])
def test_memory_stays_bounded(certs, security):
    with _servers(certs) as (server,):

        @settings(max_examples=settings().max_examples)
        @given(
            case=scripts(securities=(security,)).filter(
                lambda case: case[3] in ("endless", "garbage")
            )
        )
        def check(case):
            server.scripts[:] = [case[1]]
            tracemalloc.start()
            try:
                result = send(_settings(server, security, certs), "Main")
                _current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert peak <= MAX_PEAK_MEMORY, (peak, result.transcript[-500:])
            assert len(result.transcript) <= MAX_TRANSCRIPT

        check()


@pytest.mark.parametrize("turn", ["data", "body", "mail", "greeting"])
def test_reply_without_its_line_end_is_never_taken(certs, turn):
    """ "250 OK" then a close is no reply: never a success, always that step."""
    with _servers(certs) as (server,):
        dialogue = DIALOGUES["none"]
        index = [name for name, _read, _step in dialogue].index(turn)
        script = [
            (read, [("send", GOOD[name][:-2]), ("close",)])
            if i == index
            else (read, _good_actions(name))
            for i, (name, read, _step) in enumerate(dialogue)
        ]
        server.scripts[:] = [script]
        result = send(_settings(server, "none", certs), "Main")

    assert not result.ok, result.transcript
    assert result.step == dialogue[index][2]
    assert result.hint == "disconnected"
