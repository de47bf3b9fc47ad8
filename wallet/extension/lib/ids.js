// Identifiers of docs/protocol.md §1, checked as bytes: nothing is
// case-folded or normalised.

const ID = /^[A-Za-z0-9._:@-]{1,64}$/;
const PRODUCT = /^[\x21-\x7e]{1,512}$/;
const CURRENCY = /^[A-Z0-9]{1,8}$/;

/** @param {unknown} s @returns {boolean} whether s is a vendor, user, key or batch id */
export function isId(s) {
  return typeof s === 'string' && ID.test(s);
}

/** @param {unknown} s @returns {boolean} whether s is a product id: 1–512 visible ASCII */
export function isProductId(s) {
  return typeof s === 'string' && PRODUCT.test(s);
}

/** @param {unknown} s @returns {boolean} whether s is a currency code */
export function isCurrency(s) {
  return typeof s === 'string' && CURRENCY.test(s);
}
