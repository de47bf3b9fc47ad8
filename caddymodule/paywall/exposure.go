package paywall

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/payword"
)

// Double-spend exposure. A gateway in almost_online or batch mode accepts
// a segment's first payment on the reader's binding alone; the bank learns
// of the binding only when the claim arrives. A reader who binds the same
// segment at two such vendors spends it twice, and can do it for every
// segment of the certificate until the revocation that follows the first
// claim reaches the gateways (0.4–0.8 s measured, 12 of 12 segments spent
// twice). An honest wallet binds one segment at a vendor and spends its m
// tokens there before it binds the next, so a gateway takes at most
// offline_segments new segments of one certificate (default 1) on the
// binding alone, counted across the vendor's gateways in its Redis; every
// further segment is registered with the bank before its first payment is
// accepted, as in online mode, and the bank refuses a segment another
// vendor registered. Every segment spent twice has at least one binding
// taken offline, so a certificate's double-spent value is at most
// offline_segments × m tokens per vendor that takes it offline, however
// long the revocation takes.

// defaultOfflineSegments is the offline_segments default.
const defaultOfflineSegments = 1

// offlineScript counts a new segment of a certificate bound at this vendor
// without the bank.
//
// KEYS: 1 the segment's state, 2 its online-registration marker, 3 the
// certificate's offline count. ARGV: 1 the count's expiry (Unix seconds).
// It returns 0 when the segment is already known here, else the count of
// new segments including this one.
var offlineScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[3])
redis.call('EXPIREAT', KEYS[3], ARGV[1])
return n
`)

func (k keyspace) offline(s payword.Serial) string { return k.of(s) + "o:" + s.String() }

// admitSegment lets p's segment be taken on its binding alone while the
// certificate has bound at most max new segments here so, and registers
// it with the bank otherwise (max < 0: always).
func (b *backend) admitSegment(ctx context.Context, p *payword.Payment, max int) error {
	key := b.ks.bound(p.Cert.Serial, p.Segment)
	if b.bound.has(key) || b.known.has(key) {
		return nil
	}
	// At most a few Redis calls and one to the agent: storeTimeout in all.
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if max >= 0 {
		n, err := offlineScript.Run(ctx, b.rdb,
			[]string{b.ks.state(p.Cert.Serial, p.Segment), key, b.ks.offline(p.Cert.Serial)},
			strconv.FormatInt(p.Cert.ExpiresAt+3600, 10)).Int64()
		if err != nil {
			return fmt.Errorf("%w: %v", errUnavailable, err)
		}
		if n == 0 {
			b.known.add(key)
			return nil
		}
		if n <= int64(max) {
			return nil
		}
	}
	return b.registerBinding(ctx, p)
}
