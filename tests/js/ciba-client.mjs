// Drives Assent with real OpenID client libraries: oauth4webapi for the CIBA
// flow and UserInfo, jose for ID token signature verification.
//
//   node ciba-client.mjs keygen   -> prints {"private": JWK, "public": JWK}
//   node ciba-client.mjs flow     -> runs the flow for each client in
//                                    ASSENT_CLIENTS, printing JSON lines:
//     {"event":"pending","method":...,"auth_req_id":...}  then waits for a
//     line on stdin (the test approves the request meanwhile)
//     {"event":"done","method":...,"sub":...,"email":...,"alg":...}
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { createInterface } from 'node:readline';

const insecure = { [oauth.allowInsecureRequests]: true };

async function keygen() {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const pub = await jose.exportJWK(publicKey);
  const kid = await jose.calculateJwkThumbprint(pub);
  const priv = await jose.exportJWK(privateKey);
  console.log(JSON.stringify({ private: { ...priv, kid, alg: 'ES256' }, public: { ...pub, kid, alg: 'ES256', use: 'sig' } }));
}

const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

async function flow() {
  const issuer = new URL(process.env.ASSENT_ISSUER);
  const clients = JSON.parse(process.env.ASSENT_CLIENTS);
  const loginHint = process.env.ASSENT_LOGIN_HINT;
  const reader = createInterface({ input: process.stdin });
  const lines = reader[Symbol.asyncIterator]();

  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));

  for (const c of clients) {
    const client = { client_id: c.client_id, id_token_signed_response_alg: c.alg };
    let auth;
    if (c.method === 'client_secret_basic') auth = oauth.ClientSecretBasic(c.client_secret);
    else if (c.method === 'client_secret_post') auth = oauth.ClientSecretPost(c.client_secret);
    else auth = oauth.PrivateKeyJwt({ key: await jose.importJWK(c.private_jwk, 'ES256'), kid: c.private_jwk.kid });

    const started = await oauth.processBackchannelAuthenticationResponse(
      as, client,
      await oauth.backchannelAuthenticationRequest(as, client, auth, {
        scope: 'openid profile email',
        login_hint: loginHint,
        binding_message: `Check ${c.method.slice(0, 20)}`,
      }, insecure),
    );
    let interval = started.interval ?? 5;

    const poll = async () => oauth.processBackchannelAuthenticationGrantResponse(
      as, client,
      await oauth.backchannelAuthenticationGrantRequest(as, client, auth, started.auth_req_id, insecure),
    );
    try {
      await poll();
      throw new Error('the first poll returned tokens before approval');
    } catch (err) {
      if (!(err instanceof oauth.ResponseBodyError) || err.error !== 'authorization_pending') throw err;
    }
    console.log(JSON.stringify({ event: 'pending', method: c.method, auth_req_id: started.auth_req_id }));
    await lines.next();

    let tokens;
    for (;;) {
      await sleep(interval);
      try {
        tokens = await poll();
        break;
      } catch (err) {
        if (!(err instanceof oauth.ResponseBodyError)) throw err;
        if (err.error === 'slow_down') interval += 5;
        else if (err.error !== 'authorization_pending') throw err;
      }
    }

    const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
      issuer: as.issuer,
      audience: client.client_id,
    });
    if (payload['urn:openid:params:jwt:claim:auth_req_id'] !== started.auth_req_id) {
      throw new Error('ID token does not name the auth_req_id');
    }
    const info = await oauth.processUserInfoResponse(
      as, client, payload.sub,
      await oauth.userInfoRequest(as, client, tokens.access_token, insecure),
    );
    console.log(JSON.stringify({ event: 'done', method: c.method, sub: payload.sub, email: info.email, alg: protectedHeader.alg }));
  }
  // Stop reading stdin, or the open pipe keeps this process alive.
  reader.close();
}

const mode = process.argv[2];
(mode === 'keygen' ? keygen() : flow()).catch((err) => {
  console.error(err?.stack ?? err);
  if (err?.cause) console.error('cause:', JSON.stringify(err.cause));
  process.exit(1);
});
