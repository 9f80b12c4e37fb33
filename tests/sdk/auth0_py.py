"""Drives Assent with Auth0's own Python SDK (auth0-python, pinned in
tests/sdk/requirements.txt), unmodified: one subcommand per SDK call.

    tests/.venv/bin/python tests/sdk/auth0_py.py SUBCOMMAND [OPTIONS]
        --domain localhost:PORT --client-id ID [--client-secret S]

Prints exactly one JSON object on stdout:
    {"ok": true, "result": <what the SDK call returned>}
    {"ok": false, "status": <HTTP status>, "error": ..., "error_description": ...,
     "message": ...}
The second only for the SDK's own error types (Auth0Error, RateLimitError):
what an application using the SDK would see. Anything else (a TLS failure,
a bug here) is a crash with a traceback on stderr, for the test to show.

The SDK builds every URL as https://{domain}/...; the test's CA reaches
`requests` through REQUESTS_CA_BUNDLE (set by tests/src/sdk.rs).
"""

import argparse
import json
import sys

from auth0.authentication import GetToken, Passwordless, RevokeToken

# In 6.8.0 the error types live in auth0.authentication.exceptions (there is
# no auth0.exceptions), and BackChannelLogin is not re-exported by
# auth0.authentication: both are imported from their modules.
from auth0.authentication.back_channel_login import BackChannelLogin
from auth0.authentication.exceptions import Auth0Error, RateLimitError


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--domain", required=True)
    common.add_argument("--client-id", required=True)
    common.add_argument("--client-secret")

    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, **options):
        sub = commands.add_parser(name, parents=[common])
        for option, required in options.items():
            sub.add_argument("--" + option.replace("_", "-"), required=required)
        return sub

    command("bc-authorize", login_hint=True, scope=True, binding_message=True)
    command("ciba-token", auth_req_id=True)
    command("passwordless-email", email=True, send=True, auth_params=False)
    command("passwordless-sms", phone=True)
    command("passwordless-login", realm=True, username=True, otp=True, scope=True, audience=False)
    command("authorization-code", code=True, redirect_uri=True)
    command("refresh", refresh_token=True)
    command("revoke", token=True)
    args = parser.parse_args()

    def client(cls):
        return cls(args.domain, args.client_id, client_secret=args.client_secret, protocol="https")

    calls = {
        "bc-authorize": lambda: client(BackChannelLogin).back_channel_login(
            binding_message=args.binding_message, login_hint=args.login_hint, scope=args.scope
        ),
        "ciba-token": lambda: client(GetToken).backchannel_login(auth_req_id=args.auth_req_id),
        "passwordless-email": lambda: client(Passwordless).email(
            email=args.email,
            send=args.send,
            auth_params=json.loads(args.auth_params) if args.auth_params else None,
        ),
        "passwordless-sms": lambda: client(Passwordless).sms(phone_number=args.phone),
        "passwordless-login": lambda: client(GetToken).passwordless_login(
            username=args.username,
            otp=args.otp,
            realm=args.realm,
            scope=args.scope,
            audience=args.audience,
        ),
        "authorization-code": lambda: client(GetToken).authorization_code(
            code=args.code, redirect_uri=args.redirect_uri
        ),
        "refresh": lambda: client(GetToken).refresh_token(refresh_token=args.refresh_token),
        "revoke": lambda: client(RevokeToken).revoke_refresh_token(token=args.token),
    }
    try:
        outcome = {"ok": True, "result": calls[args.command]()}
    except (Auth0Error, RateLimitError) as e:
        # Auth0Error keeps the body's error_description (or message) as
        # `message`; str() adds the status.
        outcome = {
            "ok": False,
            "status": e.status_code,
            "error": e.error_code,
            "error_description": e.message,
            "message": str(e),
        }
    json.dump(outcome, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
