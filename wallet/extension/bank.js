// The wallet's bank: the agent's HTTP API (docs/agent-api.md), as far as a
// reader's wallet uses it.

/** An error the bank answered, with its machine code. */
export class BankError extends Error {
  /** @param {string} message @param {string} code @param {number} status */
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Largest answer the wallet reads from the bank (a bundle is under 1 KiB). */
const maxAnswer = 1 << 20;

/**
 * normalizeBank turns what a reader typed into the bank's base URL, or
 * throws: http(s) only, no query, fragment or credentials, no trailing /.
 * @param {string} typed
 */
export function normalizeBank(typed) {
  let u;
  try {
    u = new URL(typed.trim());
  } catch {
    throw new Error('the bank address is not a web address (for example https://bank.example.com)');
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password || u.search || u.hash) {
    throw new Error('the bank address must be a plain http(s) address');
  }
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

/**
 * isTrustedChannel: whether keys fetched from base may be believed on first
 * use (docs/agent-api.md "How a gateway trusts keys"): TLS, or loopback.
 * @param {string} base
 */
export function isTrustedChannel(base) {
  const u = new URL(base);
  if (u.protocol === 'https:') return true;
  return u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
}

export class Bank {
  /** @param {string} base @param {string} [token] a session token */
  constructor(base, token) {
    this.base = base;
    this.token = token;
  }

  /**
   * @param {string} method @param {string} path @param {object} [body]
   * @param {string} [auth] an Authorization value
   * @returns {Promise<any>}
   */
  async call(method, path, body, auth) {
    /** @type {Record<string,string>} */
    const headers = {Accept: 'application/json'};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = auth;
    else if (this.token) headers.Authorization = 'Bearer ' + this.token;
    let resp;
    try {
      resp = await fetch(this.base + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit', cache: 'no-store', redirect: 'error',
      });
    } catch (e) {
      throw new BankError(`cannot reach your bank at ${this.base}`, 'unreachable', 0);
    }
    const text = await resp.text();
    if (text.length > maxAnswer) throw new BankError('the bank answered too much', 'too_large', resp.status);
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      throw new BankError(`the bank answered ${resp.status} with something that is not JSON`, 'malformed', resp.status);
    }
    if (!resp.ok) {
      throw new BankError(data?.error || `the bank answered ${resp.status}`, data?.code || 'http_' + resp.status, resp.status);
    }
    return data;
  }

  /** @param {string} username @param {string} password */
  register(username, password) {
    return this.call('POST', '/v1/users', {username, password});
  }

  /** @param {string} username @param {string} password → {user, token, expires_at} */
  login(username, password) {
    return this.call('POST', '/v1/sessions', {username, password});
  }

  keys() {
    return this.call('GET', '/v1/keys');
  }

  me() {
    return this.call('GET', '/v1/me');
  }

  /** @param {number} tokens @param {string} publicKey b64 @param {string} requestId */
  buy(tokens, publicKey, requestId) {
    return this.call('POST', '/v1/certificates', {tokens, public_key: publicKey, scope: '*', request_id: requestId});
  }

  /** @param {string} publicKey b64 */
  recover(publicKey) {
    return this.call('POST', '/v1/certificates/recover', {public_key: publicKey});
  }

  /**
   * The vendor's signed origins document.
   * @param {string} vendor
   * @returns {Promise<any>} null: no such vendor
   */
  async origins(vendor) {
    try {
      return await new Bank(this.base).call('GET', `/v1/vendors/${encodeURIComponent(vendor)}/origins`);
    } catch (e) {
      if (e instanceof BankError && e.status === 404) return null;
      throw e;
    }
  }
}
