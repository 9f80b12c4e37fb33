// Drives Assent with Auth0's @auth0/auth0-auth-js (pinned in package.json),
// unmodified: its AuthClient's passwordless login and its MFA client
// (AuthClient.mfa), one subcommand per SDK call.
//
//   node auth0-auth-js.mjs SUBCOMMAND [OPTIONS]
//       --domain localhost:PORT --client-id ID [--client-secret S]
//
// Prints exactly one JSON object on stdout:
//   {"ok":true,"result":<what the SDK call returned>}
//   {"ok":false,"status":<HTTP status or null>,"error":...,"error_description":...,
//    "message":...,"mfa_token":<for mfa_required>}
// The second only for the SDK's own error types (its Mfa*Error and
// Passwordless*Error classes: what an application using the SDK would
// see). Anything else, an ID token that fails openid-client's validation
// included, is a crash with the stack on stderr, for the test to show.
//
// The SDK hard-codes https://{domain}, discovers the server through
// /.well-known/openid-configuration and validates ID tokens against its
// JWKS; the test's CA reaches Node through NODE_EXTRA_CA_CERTS (set by
// tests/src/sdk.rs). Validation stays on: it is part of what is tested.
import {
  AuthClient,
  MfaChallengeError,
  MfaDeleteAuthenticatorError,
  MfaEnrollmentError,
  MfaListAuthenticatorsError,
  MfaVerifyError,
  PasswordlessStartError,
  PasswordlessVerifyError,
  isMfaRequiredError,
} from '@auth0/auth0-auth-js';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: Object.fromEntries(
    [
      'domain', 'client-id', 'client-secret',
      'email', 'code', 'audience', 'scope',
      'mfa-token', 'authenticator-type', 'oob-channel', 'phone',
      'challenge-type', 'authenticator-id',
      'factor', 'otp', 'oob-code', 'binding-code', 'recovery-code',
    ].map((name) => [name, { type: 'string' }]),
  ),
});

function required(name) {
  const value = values[name];
  if (value === undefined) throw new Error(`--${name} is required for ${positionals[0]}`);
  return value;
}

// Drops options that were not given: the SDK would send `undefined` as text.
const given = (params) => Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));

const auth = new AuthClient(given({
  domain: required('domain'),
  clientId: required('client-id'),
  clientSecret: values['client-secret'],
}));

// The SDK's TokenResponse is a class: its fields, as plain JSON.
const plain = (value) => JSON.parse(JSON.stringify(value ?? null));

const calls = {
  'send-email-code': async () => plain(await auth.passwordless.sendEmail({ email: required('email'), send: 'code' })),
  'login-email': async () => plain(await auth.getTokenByPasswordlessEmail(given({
    email: required('email'),
    code: required('code'),
    audience: values.audience,
    scope: values.scope,
  }))),
  'mfa-list': async () => plain(await auth.mfa.listAuthenticators({ mfaToken: required('mfa-token') })),
  'mfa-enroll': async () => {
    const type = required('authenticator-type');
    const options = { mfaToken: required('mfa-token'), authenticatorTypes: [type] };
    if (type === 'oob') {
      options.oobChannels = [required('oob-channel')];
      if (values.phone !== undefined) options.phoneNumber = values.phone;
    }
    return plain(await auth.mfa.enrollAuthenticator(options));
  },
  'mfa-challenge': async () => plain(await auth.mfa.challengeAuthenticator(given({
    mfaToken: required('mfa-token'),
    challengeType: required('challenge-type'),
    authenticatorId: values['authenticator-id'],
  }))),
  'mfa-verify': async () => {
    const factorType = required('factor');
    const options = { mfaToken: required('mfa-token'), factorType };
    if (factorType === 'otp') options.otp = required('otp');
    if (factorType === 'oob') {
      options.oobCode = required('oob-code');
      if (values['binding-code'] !== undefined) options.bindingCode = values['binding-code'];
    }
    if (factorType === 'recovery-code') options.recoveryCode = required('recovery-code');
    return plain(await auth.mfa.verify(options));
  },
  'mfa-delete': async () => plain(await auth.mfa.deleteAuthenticator({
    mfaToken: required('mfa-token'),
    authenticatorId: required('authenticator-id'),
  })),
};

async function main() {
  const call = calls[positionals[0]];
  if (!call) throw new Error(`unknown subcommand ${positionals[0]}; one of ${Object.keys(calls).join(', ')}`);
  let outcome;
  try {
    outcome = { ok: true, result: await call() };
  } catch (err) {
    const sdkErrors = [
      MfaChallengeError, MfaDeleteAuthenticatorError, MfaEnrollmentError, MfaListAuthenticatorsError,
      MfaVerifyError, PasswordlessStartError, PasswordlessVerifyError,
    ];
    if (!sdkErrors.some((type) => err instanceof type)) throw err;
    outcome = {
      ok: false,
      status: err.statusCode ?? null,
      error: err.cause?.error ?? null,
      error_description: err.cause?.error_description ?? null,
      message: err.message,
    };
    if (isMfaRequiredError(err)) outcome.mfa_token = err.cause.mfa_token;
  }
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

main().catch((err) => {
  console.error(err?.stack ?? err);
  // fetch hides the reason (refused connection, untrusted certificate) in causes.
  for (let cause = err?.cause; cause; cause = cause.cause) console.error('cause:', cause?.stack ?? cause);
  process.exit(1);
});
