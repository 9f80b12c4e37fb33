// Drives Assent with Auth0's own Node SDK (npm `auth0`, pinned in
// package.json), unmodified, through its AuthenticationClient: one
// subcommand per SDK call.
//
//   node auth0-client.mjs SUBCOMMAND [OPTIONS]
//       --domain localhost:PORT --client-id ID [--client-secret S]
//
// Prints exactly one JSON object on stdout:
//   {"ok":true,"result":<what the SDK call returned>}
//   {"ok":false,"status":<HTTP status or null>,"error":...,"error_description":...,"message":...}
// The second only for the SDK's own error types (AuthApiError for OAuth
// error bodies, ResponseError for others): what an application using the
// SDK would see. Anything else, including an ID token that fails the SDK's
// validation (IdTokenValidatorError, or jose's errors from the signature
// check), is a crash with the stack on stderr, for the test to show.
//
// The SDK hard-codes https://{domain} and checks ID tokens (RS256) against
// iss https://{domain}/ and https://{domain}/.well-known/jwks.json; the
// test's CA reaches Node through NODE_EXTRA_CA_CERTS (set by
// tests/src/sdk.rs). Validation stays on: it is part of what is tested.
import { AuthenticationClient, AuthApiError, ResponseError } from 'auth0';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: Object.fromEntries(
    [
      'domain', 'client-id', 'client-secret',
      'user-id', 'scope', 'binding-message', 'auth-req-id',
      'email', 'send', 'auth-params', 'phone',
      'realm', 'username', 'otp', 'audience',
      'code', 'redirect-uri', 'refresh-token', 'token',
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

const auth = new AuthenticationClient({
  domain: required('domain'),
  clientId: required('client-id'),
  clientSecret: values['client-secret'],
});

// VoidApiResponse (revoke, passwordless start) carries no data: its status
// is what there is to show.
const data = (response) => ('data' in response ? response.data : { status: response.status, statusText: response.statusText });

const calls = {
  // The SDK takes a user id and builds the iss_sub login_hint itself
  // ({"format":"iss_sub","iss":"https://{domain}/","sub":...}): there is no
  // way to pass a login_hint through it.
  'bc-authorize': () => auth.backchannel.authorize({
    userId: required('user-id'),
    scope: required('scope'),
    binding_message: required('binding-message'),
  }),
  'ciba-token': () => auth.backchannel.backchannelGrant({ auth_req_id: required('auth-req-id') }),
  'passwordless-email': async () => data(await auth.passwordless.sendEmail(given({
    email: required('email'),
    send: required('send'),
    authParams: values['auth-params'] === undefined ? undefined : JSON.parse(values['auth-params']),
  }))),
  'passwordless-sms': async () => data(await auth.passwordless.sendSMS({ phone_number: required('phone') })),
  'passwordless-login': async () => {
    const rest = given({ scope: required('scope'), audience: values.audience });
    const realm = required('realm');
    if (realm === 'email') {
      return data(await auth.passwordless.loginWithEmail({ email: required('username'), code: required('otp'), ...rest }));
    }
    if (realm === 'sms') {
      return data(await auth.passwordless.loginWithSMS({ phone_number: required('username'), code: required('otp'), ...rest }));
    }
    throw new Error(`--realm must be email or sms, got ${realm}`);
  },
  'authorization-code': async () => data(await auth.oauth.authorizationCodeGrant({
    code: required('code'),
    redirect_uri: required('redirect-uri'),
  })),
  refresh: async () => data(await auth.oauth.refreshTokenGrant({ refresh_token: required('refresh-token') })),
  revoke: async () => data(await auth.oauth.revokeRefreshToken({ token: required('token') })),
};

async function main() {
  const call = calls[positionals[0]];
  if (!call) throw new Error(`unknown subcommand ${positionals[0]}; one of ${Object.keys(calls).join(', ')}`);
  let outcome;
  try {
    outcome = { ok: true, result: await call() };
  } catch (err) {
    if (err instanceof AuthApiError) {
      outcome = {
        ok: false,
        status: err.statusCode ?? null,
        error: err.error ?? null,
        error_description: err.error_description ?? null,
        message: err.message,
      };
    } else if (err instanceof ResponseError) {
      // A body that is not an OAuth error (or not JSON): keep it for the test.
      outcome = {
        ok: false,
        status: err.statusCode ?? null,
        error: null,
        error_description: null,
        message: err.message,
        body: err.body,
      };
    } else {
      throw err;
    }
  }
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

main().catch((err) => {
  console.error(err?.stack ?? err);
  // fetch hides the reason (refused connection, untrusted certificate) in causes.
  for (let cause = err?.cause; cause; cause = cause.cause) console.error('cause:', cause?.stack ?? cause);
  process.exit(1);
});
