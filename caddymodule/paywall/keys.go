package paywall

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// keyStore holds the trusted agent keys. It trusts the keys configured
// (`keys`), and learns others only from the agent's key announcements
// (GET /v1/keys) signed by a key it already trusts: a rotation announces
// the new key under the old one's signature. Without configured keys, the
// first keys are learnt at start, and only over an authenticated channel
// (see authenticatedAgent); they and every learnt key are pinned in the
// vendor's Redis (HSETNX: a key id, once pinned, never changes), so that
// the vendor's other and later gateways trust them too. A key id that a
// payment names is never a reason to trust anything.
type keyStore struct {
	keyDeps
	configured payword.KeySet

	cur         atomic.Pointer[keyState]
	mu          sync.Mutex // serialises loads
	lastFetch   time.Time
	warned      time.Time
	learned     chan struct{} // closed once keys are first known
	learnedOnce sync.Once
}

// keyDeps is what a keyStore works with.
type keyDeps struct {
	agent   *agentapi.Client
	plainOK bool                  // the channel to the agent is authenticated (authenticatedAgent)
	rdb     redis.UniversalClient // the vendor's Redis, where keys are pinned
	pins    string                // the hash of pinned keys: key id → public key
	log     *zap.Logger
}

// newKeyStore trusts the configured keys at once; without any, the first
// load learns them.
func newKeyStore(d keyDeps, configured payword.KeySet) *keyStore {
	k := &keyStore{keyDeps: d, configured: configured, learned: make(chan struct{})}
	if len(configured) > 0 {
		k.set(configured)
	}
	return k
}

type keyState struct {
	keys        payword.KeySet
	v           *payword.Verifier
	fingerprint string
}

// refetchEvery bounds how often an unknown key id makes us ask the agent;
// rotateEvery is how often the sync workers look for a rotation.
const (
	refetchEvery = 10 * time.Second
	rotateEvery  = 5 * time.Minute
)

func (k *keyStore) set(ks payword.KeySet) {
	k.cur.Store(&keyState{keys: ks, v: payword.NewVerifier(ks), fingerprint: keysFingerprint(ks)})
	k.learnedOnce.Do(func() { close(k.learned) })
}

// verifier returns the current verifier. While no keys are known (a
// gateway just started, whose first fetch may have found the agent not
// listening yet), it waits for them up to storeTimeout: the sync workers
// try again every crl_interval, and a payment waits for that rather than
// being refused.
func (k *keyStore) verifier(ctx context.Context) (*payword.Verifier, error) {
	if s := k.cur.Load(); s != nil {
		return s.v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	select {
	case <-k.learned:
	case <-ctx.Done():
	}
	if s := k.cur.Load(); s != nil {
		return s.v, nil
	}
	return nil, fmt.Errorf("%w: no trusted agent keys yet", errUnavailable)
}

// current returns the trusted keys, or nil.
func (k *keyStore) current() *keyState { return k.cur.Load() }

// load runs in the sync workers: at start until keys are known, then every
// rotateEvery to learn a rotation.
func (k *keyStore) load(ctx context.Context) {
	k.mu.Lock()
	due := k.cur.Load() == nil || time.Since(k.lastFetch) >= rotateEvery
	k.mu.Unlock()
	if due {
		k.refreshEvery(ctx, 0)
	}
}

// refresh learns the keys the agent announces under a trusted key's
// signature and reloads the set; it reports whether the trusted set is now
// another than the one seen was built from (a sync worker may have learnt
// the new key meanwhile). It asks the agent at most every refetchEvery.
func (k *keyStore) refresh(ctx context.Context, seen *payword.Verifier) bool {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	k.refreshEvery(ctx, refetchEvery)
	s := k.cur.Load()
	return s != nil && s.v != seen
}

func (k *keyStore) refreshEvery(ctx context.Context, every time.Duration) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	before := k.cur.Load()
	trusted, err := k.trusted(ctx)
	if err != nil {
		k.log.Warn("reading the pinned agent keys", zapErr(err))
		return false
	}
	if time.Since(k.lastFetch) >= every {
		k.lastFetch = time.Now()
		if len(trusted) == 0 && !k.plainOK {
			if time.Since(k.warned) >= time.Minute {
				k.warned = time.Now()
				k.log.Error("no agent keys configured, and the agent is reached over plain HTTP: configure its keys (`keys`) or use https")
			}
		} else if docs, err := k.agent.Keys(ctx); err != nil {
			k.log.Warn("fetching agent keys", zapErr(err))
		} else if learnt, err := payword.OpenKeys(docs.Signed, trusted); err != nil {
			k.log.Warn("agent key announcement refused", zapErr(err))
		} else {
			for kid, pub := range learnt {
				if _, ok := trusted[kid]; ok {
					continue
				}
				if err := k.rdb.HSetNX(ctx, k.pins, kid, []byte(pub)).Err(); err != nil {
					k.log.Warn("pinning agent key", zap.String("kid", kid), zapErr(err))
					continue
				}
				k.log.Info("agent key learnt", zap.String("kid", kid))
			}
			if trusted, err = k.trusted(ctx); err != nil {
				return false
			}
		}
	}
	if len(trusted) == 0 || (before != nil && keysFingerprint(trusted) == before.fingerprint) {
		return false
	}
	k.set(trusted)
	return true
}

// trusted is the configured keys and those pinned in the vendor's Redis
// (a pinned key id never replaces a configured one).
func (k *keyStore) trusted(ctx context.Context) (payword.KeySet, error) {
	stored, err := k.rdb.HGetAll(ctx, k.pins).Result()
	if err != nil {
		return nil, err
	}
	ks := payword.KeySet{}
	for kid, pub := range stored {
		if err := ks.Add(kid, []byte(pub)); err != nil {
			k.log.Error("ignoring a bad pinned agent key", zap.String("kid", kid), zapErr(err))
		}
	}
	for kid, pub := range k.configured {
		ks[kid] = pub
	}
	return ks, nil
}

// authenticatedAgent reports whether the channel to the agent at base is
// authenticated, so that keys may be learnt from it without a trusted
// signature: https (the agent's certificate is verified), or plain HTTP to
// a loopback address (no network in between).
func authenticatedAgent(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return u.Scheme == "http" && ip != nil && ip.IsLoopback()
}

// parseKeys reads the configured keys (`keys`): key id → base64url public key.
func parseKeys(m map[string]string) (payword.KeySet, error) {
	ks := payword.KeySet{}
	for kid, v := range m {
		pub, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("key %s: not base64url", kid)
		}
		if err := ks.Add(kid, ed25519.PublicKey(pub)); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// keysFingerprint is a stable text form of a key set, for the pool key.
func keysFingerprint(ks payword.KeySet) string {
	kids := make([]string, 0, len(ks))
	for kid := range ks {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	var b strings.Builder
	for _, kid := range kids {
		b.WriteString(kid + "=" + base64.RawURLEncoding.EncodeToString(ks[kid]) + ";")
	}
	return b.String()
}
