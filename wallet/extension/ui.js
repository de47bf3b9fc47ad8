// What the extension's pages share: talking to the worker, money, and the
// small DOM helpers. The pages hold no wallet data of their own.

/**
 * call asks the service worker to do op; it throws the worker's error.
 * @param {string} op @param {object} [args]
 */
export async function call(op, args = {}) {
  const r = await chrome.runtime.sendMessage({op, ...args});
  if (!r) throw new Error('the wallet did not answer');
  if (!r.ok) {
    const e = new Error(r.error);
    /** @type {any} */ (e).code = r.code;
    throw e;
  }
  return r.result;
}

/**
 * money shows tokens as money: tokens × unitValue minor units of currency.
 * @param {number} tokens @param {number} unitValue @param {string} currency
 */
export function money(tokens, unitValue, currency) {
  let f;
  try {
    f = new Intl.NumberFormat(undefined, {style: 'currency', currency});
  } catch {
    return `${tokens * unitValue} ${currency} minor units`;
  }
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  return f.format((tokens * unitValue) / 10 ** digits);
}

/** @param {string} id @returns {any} */
export const $ = (id) => document.getElementById(id);

/** @param {string} id @param {string} text */
export function say(id, text) {
  const el = $(id);
  el.textContent = text;
  el.hidden = !text;
}

/**
 * busy disables a form's controls while its request runs.
 * @param {HTMLFormElement} form @param {() => Promise<void>} fn
 */
export async function busy(form, fn) {
  const controls = [...form.elements];
  controls.forEach((c) => /** @type {any} */ (c).disabled = true);
  try {
    await fn();
  } finally {
    controls.forEach((c) => /** @type {any} */ (c).disabled = false);
  }
}

/**
 * onSubmit runs fn when form is sent, its controls disabled meanwhile; an
 * error shows in the page's error line.
 * @param {HTMLFormElement} form @param {() => Promise<void>} fn
 */
export function onSubmit(form, fn) {
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    say('error', '');
    busy(form, async () => {
      try {
        await fn();
      } catch (err) {
        say('error', /** @type {Error} */ (err).message);
      }
    });
  });
}

/** @param {number} unix */
export function when(unix) {
  const d = new Date(unix * 1000);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'}) : d.toLocaleDateString();
}
