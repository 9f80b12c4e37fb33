"""Schemathesis hooks for Assent's OpenAPI run (tests/tests/e2e/schemathesis.rs,
docs/openapi.md): device messages are `application/jose` bodies, a compact
JWS as text, which Schemathesis sends as it sends text/plain. It cannot sign
them, so these bodies are garbage to the server; they test its refusals."""

import schemathesis

schemathesis.serializer.alias("application/jose", "text/plain")
