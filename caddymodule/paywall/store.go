package paywall

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/payword"
)

// acceptScript checks and advances one (serial, segment) state, records the
// authorization and queues the claim, atomically.
//
// KEYS: 1 state hash {i, t}, 2 authorization record, 3 report stream.
// ARGV: 1 expected index, 2 expected token, 3 new index, 4 new token,
// 5 authorization record, 6 its TTL in seconds, 7 claim JSON,
// 8 Unix time at which the state may be forgotten (certificate expiry).
//
// It returns {1, record} for a payment already accepted (idempotent retry),
// {2, index, token} when the state is not the expected one (the caller
// checks the chain against it in Go and retries), and {0} on acceptance.
// Index 0 means the segment is fresh: the caller has checked the expected
// token against the proven anchor, so only the index is compared.
var acceptScript = redis.NewScript(`
local rec = redis.call('GET', KEYS[2])
if rec then return {1, rec} end
local st = redis.call('HMGET', KEYS[1], 'i', 't')
local ci = tonumber(st[1]) or 0
if ci ~= tonumber(ARGV[1]) or (ci > 0 and st[2] ~= ARGV[2]) then
  return {2, tostring(ci), st[2] or ''}
end
redis.call('HSET', KEYS[1], 'i', ARGV[3], 't', ARGV[4])
redis.call('EXPIREAT', KEYS[1], ARGV[8])
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
redis.call('XADD', KEYS[3], '*', 'c', ARGV[7])
return {0}
`)

// voidScript voids an accepted payment whose answer was not charged: its
// authorization record is marked void (a repeat of the payment is then
// refused with voided, never served) and the void of its claim follows the
// claim on the report stream.
//
// KEYS: 1 authorization record, 2 report stream. ARGV: 1 the record as
// accepted, 2 the void's claim JSON. Returns 1 when voided, now or before;
// 0 when the record is gone or another.
var voidScript = redis.NewScript(`
local rec = redis.call('GET', KEYS[1])
if rec == 'void ' .. ARGV[1] then return 1 end
if rec ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'void ' .. rec, 'KEEPTTL')
redis.call('XADD', KEYS[2], '*', 'c', ARGV[2])
return 1
`)

// voidPrefix starts the authorization record of a voided payment.
const voidPrefix = "void "

// maxAttempts bounds the read-and-retry loop under contention.
const maxAttempts = 4

// shards is how many hash tags, and so Redis Cluster slots, one vendor's
// payments spread over. Everything a payment's scripts touch (the segment's
// state, its bound and offline markers, the authorization record and the
// report stream the claim goes to) is keyed by the certificate's shard
// under the tag {<vendor>/<n>}, so each script stays in one slot while a
// vendor's certificates use up to 16 masters. More shards would spread a
// vendor over more masters at the cost of more streams for every gateway
// to poll (2 × shards per read, see report.go); 16 is more masters than a
// vendor needs (docs/redis-keys.md). It is fixed: another count would move
// a segment's state to a key where its spent tokens look fresh, which is
// why the store records its layout (migrate.go).
const shards = 16

// keyspace names a vendor's gateway keys: the vendor-wide ones (pinned
// agent keys, the copy of the revocation list, the layout) under
// hw:g:{<vendor>}:, and a certificate's under hw:g:{<vendor>/<n>}:, n its
// shard. Vendor ids cannot hold '/', so no vendor's tag is another's.
type keyspace struct {
	vendor string         // hw:g:{<vendor>}:
	shard  [shards]string // hw:g:{<vendor>/<n>}:
}

func newKeyspace(vendor string) keyspace {
	k := keyspace{vendor: "hw:g:{" + vendor + "}:"}
	for n := range k.shard {
		k.shard[n] = "hw:g:{" + vendor + "/" + strconv.Itoa(n) + "}:"
	}
	return k
}

// shardOf is the shard of a certificate: FNV-1a of its serial, so that
// serials a bank did not draw at random (a counter) spread all the same,
// scaled to the shards by its high bits (its low bits mix poorly: serials
// that differ by a constant in every byte fell in one shard).
func shardOf(s payword.Serial) int {
	h := uint32(2166136261)
	for _, c := range s {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(uint64(h) * shards >> 32)
}

// of is the prefix of serial s's keys.
func (k keyspace) of(s payword.Serial) string { return k.shard[shardOf(s)] }

func (k keyspace) state(s payword.Serial, g uint32) string {
	return k.of(s) + "s:" + s.String() + ":" + strconv.FormatUint(uint64(g), 10)
}

func (k keyspace) bound(s payword.Serial, g uint32) string {
	return k.of(s) + "b:" + s.String() + ":" + strconv.FormatUint(uint64(g), 10)
}

// authorization keys a payment by everything it spends and buys, token
// included: only the very same payment finds the record.
func (k keyspace) authorization(p *payword.Payment) string {
	return k.of(p.Cert.Serial) + "a:" + authDigest(p)
}

func authDigest(p *payword.Payment) string {
	h := sha256.New()
	h.Write(p.Cert.Serial[:])
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:], p.Segment)
	binary.BigEndian.PutUint32(b[4:], p.Index)
	binary.BigEndian.PutUint32(b[8:], p.Amount)
	h.Write(b[:])
	h.Write(p.Token[:])
	h.Write([]byte(p.Product))
	return hex.EncodeToString(h.Sum(nil))
}

// reportModes are the modes whose claims go through report streams.
var reportModes = [...]string{ModeAlmostOnline, ModeBatch}

// streamName is the last part of a mode's report stream keys.
func streamName(mode string) string {
	if mode == ModeBatch {
		return "r:batch"
	}
	return "r:now"
}

// stream is the report stream of mode in shard n.
func (k keyspace) stream(mode string, n int) string { return k.shard[n] + streamName(mode) }

// streamOf is the report stream of mode that serial s's claims go to.
func (k keyspace) streamOf(mode string, s payword.Serial) string { return k.stream(mode, shardOf(s)) }

// streams are mode's report streams, one per shard.
func (k keyspace) streams(mode string) []string {
	out := make([]string, shards)
	for n := range out {
		out[n] = k.stream(mode, n)
	}
	return out
}

func (k keyspace) keys() string { return k.vendor + "keys" }
func (k keyspace) crl() string  { return k.vendor + "crl" }

// acceptance is what the script is asked to record.
type acceptance struct {
	Record      string // authorization record: "<auth> <iat> <exp>"
	RecordTTL   int64  // seconds
	Claim       []byte // payword.Claim JSON
	Stream      string
	StateExpiry int64 // Unix seconds
}

// accept records payment p. It returns the authorization record, which is
// a's own or, for a retried payment, the one first recorded.
func accept(ctx context.Context, pipe *scriptPipe, ks keyspace, p *payword.Payment, a acceptance) (string, error) {
	keys := []string{ks.state(p.Cert.Serial, p.Segment), ks.authorization(p), a.Stream}
	exp := payword.Expected(p)
	if exp.Index == 0 && exp.Token != p.Anchor {
		return "", fmt.Errorf("%w: token %d of segment %d", payword.ErrBadToken, p.Index, p.Segment)
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		res, err := pipe.run(ctx, keys,
			exp.Index, exp.Token[:], p.Index, p.Token[:], a.Record, a.RecordTTL, a.Claim, a.StateExpiry)
		if err != nil || len(res) == 0 {
			return "", fmt.Errorf("%w: %v", errUnavailable, err)
		}
		code, _ := res[0].(int64)
		switch code {
		case 0:
			return a.Record, nil
		case 1:
			rec, _ := res[1].(string)
			return rec, nil
		}
		// The state moved: check the chain against it, then compare-and-set
		// on exactly that state.
		idx, _ := strconv.ParseUint(res[1].(string), 10, 32)
		last := payword.Genesis(p)
		if idx > 0 {
			tok, _ := res[2].(string)
			if len(tok) != payword.TokenSize {
				return "", fmt.Errorf("%w: corrupt state for %s", errUnavailable, keys[0])
			}
			last = payword.State{Index: uint32(idx)}
			copy(last.Token[:], tok)
		}
		if _, err := payword.Advance(p, last); err != nil {
			return "", err
		}
		exp = last
	}
	return "", fmt.Errorf("%w: state of segment %d kept changing", payword.ErrReplay, p.Segment)
}

// parseRecord splits "<auth> <iat> <exp>".
func parseRecord(rec string) (auth string, iat, exp int64, ok bool) {
	f := strings.Fields(rec)
	if len(f) != 3 {
		return "", 0, 0, false
	}
	iat, err1 := strconv.ParseInt(f[1], 10, 64)
	exp, err2 := strconv.ParseInt(f[2], 10, 64)
	return f[0], iat, exp, err1 == nil && err2 == nil && payword.ValidID(f[0])
}
