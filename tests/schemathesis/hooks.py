"""Schemathesis hooks for Assent's OpenAPI run (tests/tests/e2e/schemathesis.rs,
docs/openapi.md): device messages are `application/jose` bodies, a compact
JWS as text, which Schemathesis sends as it sends text/plain. It cannot sign
them, so these bodies are garbage to the server; they test its refusals.

And positive_data_acceptance does not count for the passwordless routes and
/oauth/revoke, as schemathesis.toml turns it off for /bc-authorize and
/oauth/token: a schema-valid request there is refused with 400 for what no
schema can state. The test client has neither passwordless grant (400
unauthorized_client) and the server no mail or SMS channel; a code or magic
link names stored state (an unknown one is 400 invalid_grant, as RFC 6749
5.2 wants, not 404); every link of /passwordless/link is unknown to the run
(its 400 page); and /oauth/revoke refuses a body `client_id` other than the
HTTP Basic one, or a second client authentication, rules across a header
and the body that OpenAPI cannot state. Every other check runs there."""

import re

import schemathesis

schemathesis.serializer.alias("application/jose", "text/plain")

POSITIVE_DATA_ACCEPTANCE_OFF = re.compile(r"^/(?:oauth/revoke|passwordless/|backend-auth/)")


@schemathesis.hook
def filter_failure(context, failure, case, response):
    return not (
        "positive_data_acceptance" in failure.checks
        and POSITIVE_DATA_ACCEPTANCE_OFF.match(case.operation.path)
    )
