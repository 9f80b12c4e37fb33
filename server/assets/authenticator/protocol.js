// The Assent device protocol (docs/protocol.md, sections 1-5) for the web
// authenticator: a classic script, loaded by the page (<script src>) and by
// the service worker (importScripts), that defines globalThis.AssentProtocol.
//
// The device key is a non-extractable WebCrypto P-256 key kept in IndexedDB;
// every decision also carries a WebAuthn assertion of the passkey enrolled
// beside it over the canonical decision (section 5).
//
// Challenge-key rollover (section 2, `server_keys`) is followed: a challenge
// signed by a key that the pinned key endorsed (directly or through a chain)
// is accepted, the newest such key is pinned, and the key it replaces stays
// accepted for 600 s.
(function (root) {
  "use strict";

  const DB_NAME = "assent-authenticator";
  const DB_VERSION = 1;
  const HISTORY_LIMIT = 200;
  const PREVIOUS_KEY_GRACE_SECS = 600;
  const DECISION_LIFETIME_SECS = 30;
  const subtle = root.crypto.subtle;
  const ECDSA = { name: "ECDSA", hash: "SHA-256" };
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // ---- bytes and base64url -------------------------------------------------

  function toBytes(value) {
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (typeof value === "string") return encoder.encode(value);
    throw new TypeError("expected bytes or a string");
  }

  /** Unpadded base64url of bytes (a string is taken as its UTF-8 bytes). */
  function b64url(bytes) {
    const data = toBytes(bytes);
    let binary = "";
    for (let i = 0; i < data.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /** Bytes of an unpadded base64url string; padding or other characters throw. */
  function fromB64url(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
      throw new AssentError("invalid_base64url", "not unpadded base64url");
    }
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const binary = atob(base64);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }

  function utf8(bytes) {
    return decoder.decode(bytes);
  }

  function randomId(bytes = 16) {
    return b64url(root.crypto.getRandomValues(new Uint8Array(bytes)));
  }

  function nowSecs() {
    return Math.floor(Date.now() / 1000);
  }

  /** SHA-256 of bytes or of a string's UTF-8 bytes. */
  async function sha256(value) {
    return new Uint8Array(await subtle.digest("SHA-256", toBytes(value)));
  }

  // ---- errors --------------------------------------------------------------

  /** A refusal: `error` is the server's code (or a local one), `error_description` its text. */
  class AssentError extends Error {
    constructor(error, description, status = 0, body = null) {
      super(description || error);
      this.name = "AssentError";
      this.error = error;
      this.error_description = description || error;
      this.status = status;
      this.body = body;
    }
  }

  function refusal(answer) {
    const body = answer.body && typeof answer.body === "object" ? answer.body : {};
    return new AssentError(
      typeof body.error === "string" ? body.error : `http_${answer.status}`,
      typeof body.error_description === "string" ? body.error_description : `the server answered ${answer.status}`,
      answer.status,
      answer.body,
    );
  }

  // ---- server address ------------------------------------------------------

  /** `server` of this installation: the app's address cut before `/authenticator/`. */
  function serverUrl() {
    const here = root.location;
    const path = here.pathname;
    let at = path.lastIndexOf("/authenticator/");
    if (at < 0 && path.endsWith("/authenticator")) at = path.length - "/authenticator".length;
    return here.origin + (at < 0 ? "" : path.slice(0, at));
  }

  // ---- JOSE ----------------------------------------------------------------

  // The member order of docs/protocol.md "Encoding" (one list serves every
  // message, since each message's members appear in it in their order).
  const CLAIM_ORDER = [
    "htm", "htu", "iat", "jti", "exp", "request_id", "nonce", "decision", "deny_reason",
    "challenge_hash", "match_code", "user_verification", "ticket", "pin", "name", "platform",
    "push", "new_key_proof", "passkey",
  ];

  function ordered(claims) {
    const out = {};
    for (const key of CLAIM_ORDER) if (claims[key] !== undefined) out[key] = claims[key];
    for (const key of Object.keys(claims)) if (!(key in out) && claims[key] !== undefined) out[key] = claims[key];
    return out;
  }

  /** A public P-256 JWK with only kty, crv, x, y, in that order. */
  function publicJwk(jwk) {
    if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
      throw new AssentError("invalid_key", "not a P-256 public key");
    }
    return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  }

  /** RFC 7638 thumbprint of a P-256 JWK. */
  async function thumbprint(jwk) {
    const key = publicJwk(jwk);
    return b64url(await sha256(JSON.stringify({ crv: key.crv, kty: key.kty, x: key.x, y: key.y })));
  }

  function importPublicKey(jwk) {
    return subtle.importKey("jwk", publicJwk(jwk), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  }

  /** ES256 compact JWS; `header` is {kid} or {jwk}. */
  async function signJws(typ, payload, header, privateKey) {
    const protectedHeader = { alg: "ES256", typ };
    if (header && header.kid != null) protectedHeader.kid = header.kid;
    if (header && header.jwk) protectedHeader.jwk = publicJwk(header.jwk);
    const input =
      b64url(JSON.stringify(protectedHeader)) + "." + b64url(JSON.stringify(ordered(payload || {})));
    const signature = await subtle.sign(ECDSA, privateKey, encoder.encode(input));
    return input + "." + b64url(signature);
  }

  function parseJws(jws) {
    if (typeof jws !== "string") throw new AssentError("malformed_jws", "not a JWS");
    const parts = jws.split(".");
    if (parts.length !== 3) throw new AssentError("malformed_jws", "not three parts");
    let header;
    try {
      header = JSON.parse(utf8(fromB64url(parts[0])));
    } catch {
      throw new AssentError("malformed_jws", "unreadable header");
    }
    if (!header || typeof header !== "object" || header.alg !== "ES256") {
      throw new AssentError("malformed_jws", "not ES256");
    }
    return { parts, header };
  }

  async function verifyParsed(parsed, jwk) {
    const signature = fromB64url(parsed.parts[2]);
    if (signature.length !== 64) return false;
    const key = await importPublicKey(jwk);
    return subtle.verify(ECDSA, key, signature, encoder.encode(parsed.parts[0] + "." + parsed.parts[1]));
  }

  function payloadOf(parsed) {
    try {
      const claims = JSON.parse(utf8(fromB64url(parsed.parts[1])));
      if (claims && typeof claims === "object" && !Array.isArray(claims)) return claims;
    } catch {
      // below
    }
    throw new AssentError("malformed_jws", "unreadable payload");
  }

  // ---- challenges ------------------------------------------------------------

  const isInt = Number.isSafeInteger;
  const isString = (v) => typeof v === "string";

  function checkChallengeShape(c) {
    const problems = [];
    if (c.v !== 1) problems.push("v");
    for (const key of ["iss", "request_id", "nonce", "client_id", "client_name", "binding_message"]) {
      if (!isString(c[key])) problems.push(key);
    }
    if (!c.request_id) problems.push("request_id");
    if (c.scope !== undefined && !(Array.isArray(c.scope) && c.scope.every(isString))) problems.push("scope");
    if (c.audience !== undefined && !isString(c.audience)) problems.push("audience");
    if (c.requester !== undefined && (typeof c.requester !== "object" || c.requester === null)) problems.push("requester");
    if (!isInt(c.iat) || !isInt(c.exp)) problems.push("iat/exp");
    if (c.match_code_digits !== undefined && !(isInt(c.match_code_digits) && c.match_code_digits >= 2 && c.match_code_digits <= 4)) {
      problems.push("match_code_digits");
    }
    if (c.purpose !== undefined && c.purpose !== "mfa") problems.push("purpose");
    if (problems.length) throw new AssentError("invalid_challenge", `challenge of the wrong shape (${problems.join(", ")})`);
  }

  /**
   * Verifies a server-signed challenge for `account` and returns its claims
   * plus `hash` (base64url SHA-256 of the JWS as received), `jws` and `kid`.
   * `candidates` (optional) maps thumbprints of keys endorsed by the pinned
   * key to their JWKs (see fetchPending).
   */
  async function verifyChallenge(jws, account, candidates) {
    const parsed = parseJws(jws);
    const { header } = parsed;
    if (header.typ !== "assent-challenge+jwt") throw new AssentError("invalid_challenge", "wrong typ");
    let jwk = null;
    if (header.kid === account.pin) jwk = account.server_key;
    else if (
      account.previous_key &&
      header.kid === account.previous_key.pin &&
      nowSecs() < account.previous_key.until
    ) {
      jwk = account.previous_key.server_key;
    } else if (candidates && candidates.has(header.kid)) {
      jwk = candidates.get(header.kid).jwk;
    }
    if (!jwk) throw new AssentError("invalid_challenge", "signed by a key this phone does not trust");
    if (!(await verifyParsed(parsed, jwk))) throw new AssentError("invalid_challenge", "bad signature");
    const claims = payloadOf(parsed);
    checkChallengeShape(claims);
    if (claims.iss !== account.server) throw new AssentError("invalid_challenge", "issued by another server");
    if (claims.exp <= nowSecs()) throw new AssentError("invalid_challenge", "expired");
    return Object.assign({}, claims, { hash: b64url(await sha256(jws)), jws, kid: header.kid });
  }

  /** Follows the endorsement chain from the pinned key: thumbprint -> {jwk, order}. */
  async function endorsedKeys(account, serverKeys) {
    const found = new Map();
    if (!Array.isArray(serverKeys) || serverKeys.length === 0) return found;
    const used = new Set();
    let current = { kid: account.pin, jwk: account.server_key };
    for (let order = 1; ; order++) {
      let next = null;
      for (let i = 0; i < serverKeys.length && !next; i++) {
        if (used.has(i)) continue;
        try {
          const parsed = parseJws(serverKeys[i]);
          if (parsed.header.typ !== "assent-server-key+jwt" || parsed.header.kid !== current.kid) continue;
          if (!(await verifyParsed(parsed, current.jwk))) continue;
          const key = publicJwk(payloadOf(parsed).key);
          await importPublicKey(key);
          used.add(i);
          next = { kid: await thumbprint(key), jwk: key };
        } catch {
          // an endorsement that does not link is ignored
        }
      }
      if (!next) return found;
      if (next.kid !== account.pin && !found.has(next.kid)) found.set(next.kid, { jwk: next.jwk, order });
      current = next;
    }
  }

  // ---- storage (IndexedDB) ---------------------------------------------------

  let dbPromise = null;

  function db() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const request = root.indexedDB.open(DB_NAME, DB_VERSION);
        request.onupgradeneeded = () => {
          const database = request.result;
          if (!database.objectStoreNames.contains("account")) database.createObjectStore("account");
          if (!database.objectStoreNames.contains("history")) {
            database.createObjectStore("history", { keyPath: "seq", autoIncrement: true });
          }
        };
        request.onsuccess = () => {
          const database = request.result;
          database.onversionchange = () => {
            database.close();
            dbPromise = null;
          };
          resolve(database);
        };
        request.onerror = () => {
          dbPromise = null;
          reject(request.error);
        };
      });
    }
    return dbPromise;
  }

  async function inStore(name, mode, work) {
    const database = await db();
    return new Promise((resolve, reject) => {
      const transaction = database.transaction(name, mode);
      const holder = {};
      work(transaction.objectStore(name), holder);
      transaction.oncomplete = () => resolve(holder.request ? holder.request.result : holder.value);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error || new Error("storage transaction aborted"));
    });
  }

  async function loadAccount() {
    const account = await inStore("account", "readonly", (store, out) => {
      out.request = store.get("current");
    });
    return account || null;
  }

  async function saveAccount(account) {
    await inStore("account", "readwrite", (store) => {
      store.put(account, "current");
    });
  }

  async function forgetAccount() {
    await inStore("account", "readwrite", (store) => {
      store.delete("current");
    });
  }

  /** Saves `account` only if it is still the one stored (an enrollment may have replaced it). */
  async function updateStoredAccount(account) {
    const stored = await loadAccount();
    if (stored && stored.device_id === account.device_id) await saveAccount(account);
  }

  async function addHistory(entry) {
    const record = {
      time: isInt(entry.time) ? entry.time : nowSecs(),
      client_name: entry.client_name || "",
      binding_message: entry.binding_message || "",
      outcome: entry.outcome,
      request_id: entry.request_id || "",
    };
    for (const key of Object.keys(entry)) if (!(key in record)) record[key] = entry[key];
    await inStore("history", "readwrite", (store) => {
      store.add(record);
      const count = store.count();
      count.onsuccess = () => {
        let extra = count.result - HISTORY_LIMIT;
        if (extra <= 0) return;
        const cursor = store.openCursor();
        cursor.onsuccess = () => {
          const at = cursor.result;
          if (!at || extra <= 0) return;
          at.delete();
          extra--;
          at.continue();
        };
      };
    });
  }

  /** The last 200 entries, newest first. */
  async function listHistory() {
    const all = await inStore("history", "readonly", (store, out) => {
      out.request = store.getAll();
    });
    return (all || []).reverse();
  }

  // ---- HTTP ------------------------------------------------------------------

  async function call(url, init) {
    let response;
    try {
      response = await fetch(url, Object.assign({ cache: "no-store", credentials: "omit" }, init));
    } catch (e) {
      throw new AssentError("network", `cannot reach the server (${(e && e.message) || e})`, 0);
    }
    let body = null;
    try {
      const text = await response.text();
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    return { status: response.status, body };
  }

  function postJose(url, jws) {
    return call(url, { method: "POST", headers: { "Content-Type": "application/jose" }, body: jws });
  }

  function binding(account, htm, path) {
    return { htm, htu: account.server + path, iat: nowSecs(), jti: randomId(16) };
  }

  /** A GET proof (typ assent-proof+jwt) for `path`. */
  function proof(account, htm, path) {
    return signJws("assent-proof+jwt", binding(account, htm, path), { kid: account.device_id }, account.privateKey);
  }

  async function signedPost(account, typ, path, extra) {
    const claims = Object.assign(binding(account, "POST", path), extra || {});
    const jws = await signJws(typ, claims, { kid: account.device_id }, account.privateKey);
    try {
      return await postJose(account.server + path, jws);
    } catch (e) {
      return { status: 0, body: { error: e.error || "network", error_description: e.error_description || String(e) } };
    }
  }

  // ---- WebAuthn ----------------------------------------------------------------

  function dropNulls(value) {
    if (Array.isArray(value)) return value.map(dropNulls);
    if (value && typeof value === "object") {
      const out = {};
      for (const [key, inner] of Object.entries(value)) if (inner !== null) out[key] = dropNulls(inner);
      return out;
    }
    return value;
  }

  function creationOptions(json) {
    const options = dropNulls(json);
    const PKC = root.PublicKeyCredential;
    if (PKC && typeof PKC.parseCreationOptionsFromJSON === "function") {
      try {
        return PKC.parseCreationOptionsFromJSON(options);
      } catch {
        // the manual way below
      }
    }
    const out = Object.assign({}, options);
    out.challenge = fromB64url(options.challenge);
    out.user = Object.assign({}, options.user, { id: fromB64url(options.user.id) });
    if (Array.isArray(options.excludeCredentials)) {
      out.excludeCredentials = options.excludeCredentials.map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));
    }
    return out;
  }

  function plainExtensions(credential) {
    try {
      const results = credential.getClientExtensionResults ? credential.getClientExtensionResults() : {};
      return JSON.parse(JSON.stringify(results || {}));
    } catch {
      return {};
    }
  }

  /** A PublicKeyCredential in the JSON form of toJSON(). */
  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try {
        return JSON.parse(JSON.stringify(credential.toJSON()));
      } catch {
        // the manual way below
      }
    }
    const r = credential.response;
    const out = { id: credential.id, rawId: b64url(credential.rawId), type: credential.type, response: {} };
    if (r.attestationObject) {
      out.response.attestationObject = b64url(r.attestationObject);
      out.response.clientDataJSON = b64url(r.clientDataJSON);
      if (typeof r.getTransports === "function") out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = b64url(r.authenticatorData);
      out.response.clientDataJSON = b64url(r.clientDataJSON);
      out.response.signature = b64url(r.signature);
      out.response.userHandle = r.userHandle ? b64url(r.userHandle) : null;
    }
    if (credential.authenticatorAttachment) out.authenticatorAttachment = credential.authenticatorAttachment;
    out.clientExtensionResults = plainExtensions(credential);
    return out;
  }

  /** The seven lines of section 5, joined by "\n", no trailing line feed. */
  function canonicalDecision({ request_id, decision, deny_reason, challenge_hash, nonce, match_code }) {
    const text = (v) => (v === undefined || v === null ? "" : String(v));
    return [
      "assent-decision-v1",
      text(request_id),
      text(decision),
      text(deny_reason),
      text(challenge_hash),
      text(nonce),
      text(match_code),
    ].join("\n");
  }

  function rpIdOf(server) {
    return new URL(server).hostname;
  }

  /** The passkey's assertion over the canonical form of `claims`. */
  async function passkeyAssertion(account, claims) {
    const allow = { type: "public-key", id: fromB64url(account.credential_id) };
    if (Array.isArray(account.transports) && account.transports.length) allow.transports = account.transports;
    const credential = await navigator.credentials.get({
      publicKey: {
        challenge: await sha256(canonicalDecision(claims)),
        rpId: rpIdOf(account.server),
        allowCredentials: [allow],
        userVerification: "required",
        timeout: 120000,
      },
    });
    if (!credential) throw new AssentError("passkey_cancelled", "no passkey answer");
    return credentialJSON(credential);
  }

  // ---- enrollment ----------------------------------------------------------------

  /** Drops control and invisible formatting characters; at most 64 characters. */
  function cleanName(name) {
    const text = String(name || "")
      .replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g, "")
      .replace(/[\u{e0000}-\u{e007f}]/gu, "")
      .trim();
    return Array.from(text).slice(0, 64).join("").trim();
  }

  /** The passkey's creation options for `ticket` (WebAuthn JSON form, section 5 step 1). */
  async function passkeyRegistration(ticket, server) {
    const base = (server || serverUrl()).replace(/\/+$/, "");
    const registration = await call(base + "/device/v1/passkey-registration", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ticket }),
    });
    if (registration.status !== 200) throw refusal(registration);
    if (!registration.body || !registration.body.publicKey || !registration.body.publicKey.challenge) {
      throw new AssentError("protocol", "the server sent no passkey options");
    }
    return registration.body.publicKey;
  }

  /**
   * Enrolls this installation with the link's `ticket`, `pin` and `account`
   * (label); `server` defaults to this app's own server. Creates the passkey,
   * the device key, signs the enrollment and saves the account. `prepared`
   * ({publicKey}, from passkeyRegistration) skips fetching the options, so
   * that the passkey prompt opens right inside the user's tap.
   */
  async function enroll(link, deviceName, prepared) {
    const server = (link.server || serverUrl()).replace(/\/+$/, "");
    const { ticket, pin } = link;
    if (!ticket || !pin) throw new AssentError("invalid_link", "the enrollment link has no ticket or pin");
    const name = cleanName(deviceName) || "Web browser";

    const publicKey = (prepared && prepared.publicKey) || (await passkeyRegistration(ticket, server));
    const created = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
    if (!created) throw new AssentError("passkey_cancelled", "no passkey was made");
    const passkey = credentialJSON(created);

    const keys = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const jwk = publicJwk(await subtle.exportKey("jwk", keys.publicKey));
    const claims = Object.assign(binding({ server }, "POST", "/device/v1/enroll"), {
      ticket,
      pin,
      name,
      platform: "web",
      passkey,
    });
    const jws = await signJws("assent-enroll+jwt", claims, { jwk }, keys.privateKey);
    const answer = await postJose(server + "/device/v1/enroll", jws);
    if (answer.status !== 201 && answer.status !== 200) throw refusal(answer);
    const body = answer.body || {};
    if (typeof body.device_id !== "string" || !body.server_key) {
      throw new AssentError("protocol", "the enrollment answer is missing device_id or server_key");
    }
    let serverKey;
    try {
      serverKey = publicJwk(body.server_key);
      await importPublicKey(serverKey);
    } catch {
      throw new AssentError("protocol", "the server's challenge key is not a P-256 key");
    }
    if ((await thumbprint(serverKey)) !== pin) {
      throw new AssentError(
        "pin_mismatch",
        "the server's challenge key is not the one named in the enrollment link",
      );
    }
    const account = {
      version: 1,
      server,
      device_id: body.device_id,
      user: body.user || "",
      account: link.account || body.user || "",
      pin,
      server_key: serverKey,
      previous_key: null,
      vapid_public_key: body.vapid_public_key || null,
      policy: body.policy || null,
      credential_id: passkey.rawId,
      transports: (passkey.response && passkey.response.transports) || [],
      name,
      platform: "web",
      public_jwk: jwk,
      privateKey: keys.privateKey,
      publicKey: keys.publicKey,
      push: false,
      enrolled_at: nowSecs(),
    };
    await saveAccount(account);
    return account;
  }

  // ---- pending requests ------------------------------------------------------------

  /**
   * The verified pending challenges, newest first, and how many were dropped
   * because they did not verify. Pins a rolled-over challenge key when a
   * challenge signed by it checks out (and saves the account).
   */
  async function fetchPending(account) {
    const path = "/device/v1/requests";
    const answer = await call(account.server + path, {
      headers: { Authorization: "AssentProof " + (await proof(account, "GET", path)) },
    });
    if (answer.status !== 200) throw refusal(answer);
    const body = answer.body || {};
    const list = Array.isArray(body.requests) ? body.requests : [];
    const candidates = await endorsedKeys(account, body.server_keys);
    const requests = [];
    let dropped = 0;
    let newest = null;
    for (const jws of list) {
      try {
        const claims = await verifyChallenge(jws, account, candidates);
        requests.push(claims);
        const candidate = candidates.get(claims.kid);
        if (candidate && (!newest || candidate.order > newest.order)) newest = { kid: claims.kid, ...candidate };
      } catch {
        dropped++;
      }
    }
    if (newest) {
      account.previous_key = {
        pin: account.pin,
        server_key: account.server_key,
        until: nowSecs() + PREVIOUS_KEY_GRACE_SECS,
      };
      account.pin = newest.kid;
      account.server_key = newest.jwk;
      await updateStoredAccount(account).catch(() => {});
    }
    requests.sort((a, b) => b.iat - a.iat);
    return {
      requests,
      total: isInt(body.total) ? body.total : requests.length + dropped,
      muted_until: isInt(body.muted_until) ? body.muted_until : null,
      dropped,
    };
  }

  // ---- decisions -----------------------------------------------------------------

  /** The decision's claims, without `passkey`. */
  function decisionClaims(account, request, verdict, options) {
    const { denyReason, matchCode } = options || {};
    const path = `/device/v1/requests/${encodeURIComponent(request.request_id)}/decision`;
    const claims = binding(account, "POST", path);
    claims.exp = claims.iat + DECISION_LIFETIME_SECS;
    claims.request_id = request.request_id;
    claims.nonce = request.nonce;
    claims.decision = verdict;
    if (verdict === "deny" && denyReason) claims.deny_reason = denyReason;
    claims.challenge_hash = request.hash;
    if (verdict === "approve" && matchCode !== undefined && matchCode !== null && matchCode !== "") {
      claims.match_code = String(matchCode);
    }
    return claims;
  }

  function signDecision(account, claims) {
    return signJws("assent-decision+jwt", claims, { kid: account.device_id }, account.privateKey);
  }

  /** POSTs a decision; never throws: {status, body} (status 0 when the server cannot be reached). */
  async function sendDecision(account, requestId, jws) {
    const url = `${account.server}/device/v1/requests/${encodeURIComponent(requestId)}/decision`;
    for (let attempt = 0; ; attempt++) {
      try {
        return await postJose(url, jws);
      } catch (e) {
        // A decision may be resent as is (section 3): once more after a second.
        if (attempt >= 1) {
          return { status: 0, body: { error: "network", error_description: e.error_description || String(e) } };
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  /** claims -> passkey assertion -> device signature -> POST. */
  async function decide(account, request, verdict, options) {
    const claims = decisionClaims(account, request, verdict, options);
    if (account.credential_id) {
      claims.passkey = await passkeyAssertion(account, claims);
      // The prompt may have taken a while; the canonical decision does not
      // cover the binding, so it is issued afresh.
      claims.iat = nowSecs();
      claims.jti = randomId(16);
      claims.exp = claims.iat + DECISION_LIFETIME_SECS;
    }
    return sendDecision(account, request.request_id, await signDecision(account, claims));
  }

  // ---- push channel ------------------------------------------------------------------

  function subscriptionClaim(subscription) {
    if (!subscription) return null;
    const json = typeof subscription.toJSON === "function" ? subscription.toJSON() : subscription;
    return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
  }

  /** Sets (or with null removes) the Web Push subscription: {status, body}. */
  async function setPushChannel(account, subscription) {
    const answer = await signedPost(account, "assent-push-channel+jwt", "/device/v1/push-channel", {
      push: subscriptionClaim(subscription),
    });
    if (answer.status === 200) {
      account.push = Boolean(answer.body && answer.body.push);
      await updateStoredAccount(account).catch(() => {});
    }
    return answer;
  }

  async function serviceWorkerRegistration() {
    if (root.registration && root.registration.pushManager !== undefined && typeof root.skipWaiting === "function") {
      return root.registration; // inside the service worker
    }
    if (!root.navigator || !root.navigator.serviceWorker) return null;
    const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 10000));
    return Promise.race([root.navigator.serviceWorker.ready, timeout]);
  }

  function sameBytes(a, b) {
    if (!a || !b) return false;
    const x = toBytes(a);
    const y = toBytes(b);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }

  /** Subscribes to Web Push with the server's VAPID key and registers it. */
  async function subscribePush(account) {
    const registration = await serviceWorkerRegistration();
    if (!registration || !registration.pushManager) {
      throw new AssentError("push_unsupported", "this browser offers no Web Push here");
    }
    if (!account.vapid_public_key) {
      const key = await call(account.server + "/device/v1/push-key", {});
      if (key.status !== 200 || !key.body || !key.body.vapid_public_key) throw refusal(key);
      account.vapid_public_key = key.body.vapid_public_key;
    }
    const applicationServerKey = fromB64url(account.vapid_public_key);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameBytes(subscription.options && subscription.options.applicationServerKey, applicationServerKey)) {
      await subscription.unsubscribe().catch(() => {});
      subscription = null;
    }
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
    }
    const answer = await setPushChannel(account, subscription.toJSON());
    if (answer.status !== 200) throw refusal(answer);
    return answer;
  }

  // ---- event stream ------------------------------------------------------------------

  /**
   * Server-sent events of /device/v1/events through fetch (EventSource cannot
   * send the proof). Calls onEvent({event, id, data}); reconnects with a fresh
   * proof and Last-Event-ID (1 s doubling to 30 s); stops on `revoked` (a 401
   * device_revoked or unknown_device is reported as an event `revoked` too).
   * options: {lastEventId, onState(state)} with state "connecting", "live",
   * "offline" or "closed".
   */
  function openEvents(account, onEvent, options) {
    const opts = options || {};
    const path = "/device/v1/events";
    const handle = {
      lastEventId: /^\d+$/.test(String(opts.lastEventId || "")) ? String(opts.lastEventId) : null,
      close() {
        closed = true;
        if (controller) controller.abort();
        clearTimeout(timer);
        wake();
      },
    };
    let closed = false;
    let controller = null;
    let timer = null;
    let wake = () => {};
    const state = (s) => {
      try {
        if (opts.onState) opts.onState(s);
      } catch {
        // the listener's problem
      }
    };
    const emit = (event) => {
      try {
        onEvent(event);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    };

    async function readStream(response) {
      const reader = response.body.getReader();
      const text = new TextDecoder();
      let buffer = "";
      let eventName = "";
      let data = [];
      let id = null;
      let delivered = false;
      const dispatch = () => {
        if (id !== null && /^\d+$/.test(id)) handle.lastEventId = id;
        if (data.length) {
          let parsed = data.join("\n");
          try {
            parsed = JSON.parse(parsed);
          } catch {
            // left as text
          }
          const event = { event: eventName || "message", id, data: parsed };
          delivered = true;
          emit(event);
          if (event.event === "revoked") closed = true;
        }
        eventName = "";
        data = [];
        id = null;
      };
      const line = (l) => {
        if (l === "") return dispatch();
        if (l[0] === ":") return undefined;
        const colon = l.indexOf(":");
        const field = colon < 0 ? l : l.slice(0, colon);
        let value = colon < 0 ? "" : l.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
        if (field === "event") eventName = value;
        else if (field === "data") data.push(value);
        else if (field === "id" && !value.includes("\0")) id = value;
        return undefined;
      };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += text.decode(value, { stream: true });
        const lines = buffer.split(/\r\n|\r(?!$)|\n/);
        buffer = lines.pop();
        for (const l of lines) {
          line(l);
          if (closed) {
            reader.cancel().catch(() => {});
            return delivered;
          }
        }
      }
      return delivered;
    }

    async function run() {
      let backoff = 1000;
      while (!closed) {
        let healthy = false;
        const started = Date.now();
        try {
          state("connecting");
          controller = new AbortController();
          const headers = {
            Authorization: "AssentProof " + (await proof(account, "GET", path)),
            Accept: "text/event-stream",
          };
          if (handle.lastEventId) headers["Last-Event-ID"] = handle.lastEventId;
          const response = await fetch(account.server + path, {
            headers,
            cache: "no-store",
            credentials: "omit",
            signal: controller.signal,
          });
          if (response.status === 401) {
            let body = null;
            try {
              body = await response.json();
            } catch {
              body = null;
            }
            if (body && (body.error === "device_revoked" || body.error === "unknown_device")) {
              emit({ event: "revoked", id: null, data: body });
              closed = true;
              break;
            }
            throw new AssentError((body && body.error) || "http_401", "refused", 401);
          }
          if (!response.ok || !response.body) throw new AssentError(`http_${response.status}`, "no stream", response.status);
          state("live");
          const delivered = await readStream(response);
          healthy = delivered || Date.now() - started > 30000;
        } catch {
          // offline, refused or aborted: below
        }
        if (closed) break;
        state("offline");
        if (healthy) backoff = 1000;
        await new Promise((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, backoff);
        });
        backoff = Math.min(backoff * 2, 30000);
      }
      state("closed");
    }

    run();
    return handle;
  }

  // ---- device management -----------------------------------------------------------------

  /**
   * Unenrolls this device: {status, body}. On success (or when the server
   * already revoked it) the stored account is forgotten, if it is this one,
   * and the push subscription dropped.
   */
  async function unenroll(account) {
    const answer = await signedPost(account, "assent-unenroll+jwt", "/device/v1/unenroll");
    const gone = answer.body && (answer.body.error === "device_revoked" || answer.body.error === "unknown_device");
    if (answer.status === 200 || gone) {
      const stored = await loadAccount().catch(() => null);
      if (stored && stored.device_id === account.device_id) {
        await forgetAccount();
        try {
          const registration = await serviceWorkerRegistration();
          const subscription = registration && registration.pushManager && (await registration.pushManager.getSubscription());
          if (subscription) await subscription.unsubscribe();
        } catch {
          // nothing to drop
        }
      }
    }
    return answer;
  }

  /** Lifts a pause on new requests: {status, body}. */
  function unmute(account) {
    return signedPost(account, "assent-unmute+jwt", "/device/v1/unmute");
  }

  root.AssentProtocol = Object.freeze({
    AssentError,
    b64url,
    fromB64url,
    sha256,
    thumbprint,
    serverUrl,
    canonicalDecision,
    signJws,
    verifyChallenge,
    loadAccount,
    saveAccount,
    forgetAccount,
    proof,
    passkeyRegistration,
    enroll,
    fetchPending,
    decisionClaims,
    passkeyAssertion,
    signDecision,
    sendDecision,
    decide,
    setPushChannel,
    subscribePush,
    openEvents,
    unenroll,
    unmute,
    addHistory,
    listHistory,
    credentialJSON,
    cleanName,
  });
})(typeof globalThis !== "undefined" ? globalThis : self);
