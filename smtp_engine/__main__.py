"""Command line: send the test message of an account and print the diagnosis.

Passwords come from the environment or a prompt, never from the command line,
where other users could read them. Exit status: 0 sent, 1 failed, 2 usage.
"""

import argparse
import getpass
import os
import sys

from .check import send_test_message
from .settings import ENCRYPTIONS, SmtpSettings

PASSWORD_VARIABLE = "EMAIL_ACCOUNT_PASSWORD"
LOGIN_PASSWORD_VARIABLE = "EMAIL_ACCOUNT_LOGIN_PASSWORD"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m smtp_engine",
        description=(
            "Send a test message from an e-mail account to itself and explain "
            "any failure. Passwords are read from the environment variables "
            f"{PASSWORD_VARIABLE} and {LOGIN_PASSWORD_VARIABLE}, or asked for."
        ),
    )
    parser.add_argument("--host", required=True, help="SMTP server name or address")
    parser.add_argument("--port", type=int, default=25, help="SMTP port (25)")
    parser.add_argument(
        "--security", choices=ENCRYPTIONS, default="none", help="encryption (none)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds allowed for the whole exchange (30)",
    )
    parser.add_argument(
        "--from",
        dest="sender_email",
        required=True,
        metavar="ADDRESS",
        help="sender e-mail address; the test message is sent to it",
    )
    parser.add_argument("--name", default="", help="sender display name")
    parser.add_argument("--account", default="", help="account name for the message")
    parser.add_argument(
        "--auth", action="store_true", help="the server requires authentication"
    )
    parser.add_argument("--user", default="", help="mailbox user name")
    parser.add_argument(
        "--login", default="", help="separate login, used instead of --user"
    )
    parser.add_argument(
        "--pin",
        default="",
        metavar="SHA256",
        help="accept only the server certificate with this SHA-256 fingerprint",
    )
    parser.add_argument("--cafile", default=None, help="extra CA certificates (PEM)")
    return parser


def _secret(variable, prompt, wanted):
    value = os.environ.get(variable)
    if value is not None or not wanted or not sys.stdin.isatty():
        return value or ""
    return getpass.getpass(prompt)


def report(result, stream):
    lines = [
        "OK" if result.ok else "FAILED",
        f"Step: {result.step_label()} ({result.step.value})",
    ]
    if result.code is not None:
        lines.append(f"Reply: {result.code} {result.reply}".rstrip())
    if result.error:
        lines.append(f"Error: {result.error}")
    if result.hint:
        lines.append(f"Hint: {result.hint_text()}")
    certificate = result.certificate
    if certificate:
        lines += ["Server certificate:", f"  SHA-256: {certificate.fingerprint}"]
        lines += [
            f"  {label}: {value}"
            for label, value in (
                ("Subject", certificate.subject),
                ("Issuer", certificate.issuer),
                ("Valid from", certificate.not_before),
                ("Valid until", certificate.not_after),
                ("Names", ", ".join(certificate.alt_names)),
            )
            if value
        ]
    if result.queue_id:
        lines.append(f"Queue id: {result.queue_id}")
    if result.message_id:
        lines.append(f"Message-ID: {result.message_id}")
    lines += [f"Elapsed: {result.elapsed:.2f} s", "", "Transcript:", result.transcript]
    stream.write("\n".join(lines) + "\n")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    separate = bool(args.login)
    try:
        settings = SmtpSettings(
            host=args.host,
            port=args.port,
            encryption=args.security,
            timeout=args.timeout,
            auth_required=args.auth,
            username=args.user,
            password=_secret(
                PASSWORD_VARIABLE, "Password: ", args.auth and not separate
            ),
            login=args.login,
            login_password=_secret(
                LOGIN_PASSWORD_VARIABLE, "Login password: ", args.auth and separate
            ),
            sender_name=args.name,
            sender_email=args.sender_email,
            pinned_certificate=args.pin,
            cafile=args.cafile,
        )
        result = send_test_message(settings, args.account or args.sender_email)
    except ValueError as exc:  # a CA file that cannot be read, a bad pin
        parser.error(str(exc))
    report(result, sys.stdout)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
