// Big-endian fixed-width fields and u8-length strings of the binary
// encodings (certificate §4, binding §5).

const utf8 = new TextEncoder();

/** Reads fields off bytes; the first short read sticks in `bad`. */
export class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.b = bytes;
    this.off = 0;
    this.bad = false;
  }

  /** @param {number} n @returns {Uint8Array} the next n bytes (a copy) */
  take(n) {
    if (this.bad || this.off + n > this.b.length) {
      this.bad = true;
      return new Uint8Array(n);
    }
    const out = this.b.slice(this.off, this.off + n);
    this.off += n;
    return out;
  }

  /** @returns {number} */
  u32() {
    const b = this.take(4);
    return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  }

  /** @returns {bigint} */
  u64() {
    const b = this.take(8);
    return new DataView(b.buffer).getBigUint64(0);
  }

  /** @returns {bigint} */
  i64() {
    const b = this.take(8);
    return new DataView(b.buffer).getBigInt64(0);
  }

  /** @returns {string} a u8-length string, one char per byte (ids are ASCII) */
  str() {
    const n = this.take(1)[0];
    return String.fromCharCode(...this.take(n));
  }

  /** @returns {boolean} whether every byte was read and none was missing */
  done() {
    return !this.bad && this.off === this.b.length;
  }
}

/** Collects fields into bytes. */
export class Writer {
  constructor() {
    /** @type {number[]} */
    this.out = [];
  }

  /** @param {Uint8Array|number[]} bytes */
  bytes(bytes) {
    for (const x of bytes) this.out.push(x);
    return this;
  }

  /** @param {number} n */
  u32(n) {
    return this.bytes([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  }

  /** @param {bigint|number} n stored as i64 / u64 two's complement */
  u64(n) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(n)));
    return this.bytes(b);
  }

  /** @param {string} s at most 255 bytes of UTF-8 */
  str(s) {
    const b = utf8.encode(s);
    if (b.length > 255) throw new Error('string field over 255 bytes');
    return this.bytes([b.length]).bytes(b);
  }

  /** @returns {Uint8Array} */
  finish() {
    return Uint8Array.from(this.out);
  }
}

/**
 * @param {bigint} n
 * @param {string} what names the field in the error
 * @returns {number} n as a number, refused beyond ±(2^53 − 1)
 */
export function safeNumber(n, what) {
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new Error(`${what} ${n} is beyond what this wallet can count (2^53 − 1)`);
  }
  return Number(n);
}
