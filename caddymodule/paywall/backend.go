package paywall

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

// backends holds the resources shared by every handler of one vendor store
// across config reloads: the Redis client, the CRL, the key pins, the
// segment cache and the background workers. The last handler to go stops
// them.
var backends = caddy.NewUsagePool()

// backendConfig identifies a backend; handlers with equal configs share one.
type backendConfig struct {
	Vendor, Redis, Agent, APIToken, CRL string
	Keys                                string // pinned keys' fingerprint; "" = learnt at start (https or loopback only)
	CRLInterval, BatchInterval          time.Duration
	Ephemeral                           bool // Redis may lose acknowledged writes
	Replicas                            int  // as Handler.Replicas
	ReplicaTimeout                      time.Duration
}

const (
	crlFromAgent = "agent"
	crlFromRedis = "redis"
)

type backend struct {
	cfg      backendConfig
	rdb      redis.UniversalClient
	pipe     *scriptPipe
	ks       keyspace
	agent    *agentapi.Client
	keys     *keyStore
	crl      *crlSet
	segments boundedSet // verified segments
	bound    boundedSet // segments registered with the agent (online mode)
	known    boundedSet // segments already bound here (admitSegment)
	log      *zap.Logger
	metrics  metricsUsers // the report workers' collectors

	// durable is set once the store passed checkStore; until then
	// payments get 503 (the store was unreachable at start).
	durable   atomic.Bool
	checkMu   sync.Mutex
	lastCheck time.Time

	// layoutReady is closed once the store's keys are in the sharded
	// layout (migrate.go); payments wait for it. legacyAuthUntil is when
	// the last authorization record of the old layout expires (Unix s).
	layoutReady     chan struct{}
	legacyAuthUntil atomic.Int64

	// reclaimIdle is how long a claim may stay unacknowledged by a dead
	// gateway before another takes it over.
	reclaimIdle atomic.Int64 // nanoseconds

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newBackend(cfg backendConfig, pinned payword.KeySet, log *zap.Logger, m *metrics) (*backend, error) {
	rdb, err := redisurl.New(cfg.Redis)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{
		cfg: cfg, rdb: rdb, ks: newKeyspace(cfg.Vendor), log: log.Named("backend"),
		agent:    newAgentClient(cfg.Agent, cfg.APIToken),
		crl:      newCRLSet(),
		segments: boundedSet{bounded[digest, struct{}]{max: maxSegmentCache}},
		bound:    boundedSet{bounded[digest, struct{}]{max: maxSegmentCache}},
		known:    boundedSet{bounded[digest, struct{}]{max: maxSegmentCache}},
		cancel:   cancel,

		layoutReady: make(chan struct{}),
	}
	if err := b.checkStore(); errors.Is(err, redisurl.ErrNotDurable) {
		cancel()
		rdb.Close()
		return nil, err
	}
	b.reclaimIdle.Store(int64(defaultReclaimIdle))
	b.metrics.add(m)
	b.keys = newKeyStore(keyDeps{
		agent: b.agent, plainOK: authenticatedAgent(cfg.Agent), rdb: rdb, pins: b.ks.keys(), log: b.log,
	}, pinned)
	b.start(ctx)
	return b, nil
}

// checkStore refuses a vendor Redis that may lose a payment it acknowledged
// (see redisurl.CheckDurable) unless the config says ephemeral. A payment's
// grant goes out once its script has replied, so a write lost afterwards is
// a claim the vendor never reports (its money) and a token state that lets
// the same tokens be spent again. appendfsync always costs one fsync per
// event-loop turn of Redis, shared by every payment of that turn (see the
// README for the measured cost); everysec would lose up to about 2 s of
// payments in a crash.
//
// A store that cannot be reached is not refused (Caddy would not start, and
// sites without payments with it); payments wait for a check that passes.
func (b *backend) checkStore() error {
	if b.cfg.Ephemeral {
		b.durable.Store(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := redisurl.CheckDurable(ctx, b.rdb)
	switch {
	case err == nil:
		b.durable.Store(true)
		return nil
	case b.cfg.Ephemeral:
		b.log.Warn("REDIS MAY LOSE ACCEPTED PAYMENTS: running on an ephemeral store", zap.Error(err))
		return nil
	case errors.Is(err, redisurl.ErrNotDurable):
		return fmt.Errorf("paywall: refusing the vendor's redis: %w (set `ephemeral` for a throwaway store)", err)
	}
	b.log.Warn("cannot check the vendor's redis yet; payments wait for it", zap.Error(err))
	return err
}

// storeReady is nil once the store passed checkStore (checked again at
// most every second) and is in the sharded layout (waited for).
func (b *backend) storeReady(ctx context.Context) error {
	if !b.durable.Load() {
		b.checkMu.Lock()
		if !b.durable.Load() && time.Since(b.lastCheck) >= time.Second {
			b.lastCheck = time.Now()
			ctx, cancel := context.WithTimeout(ctx, storeTimeout)
			err := redisurl.CheckDurable(ctx, b.rdb)
			cancel()
			if err != nil {
				b.log.Error("vendor's redis not usable for payments", zap.Error(err))
			} else {
				b.durable.Store(true)
			}
		}
		b.checkMu.Unlock()
		if !b.durable.Load() {
			return fmt.Errorf("%w: store durability not verified", errUnavailable)
		}
	}
	return b.waitLayout(ctx)
}

// start launches the CRL sync, the move to the sharded layout and the
// two report modes' workers.
func (b *backend) start(ctx context.Context) {
	crlSync := b.pullCRL
	if b.cfg.CRL == crlFromRedis {
		crlSync = b.subscribeCRL
	}
	run := func(f func(context.Context)) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			f(ctx)
		}()
	}
	b.pipe = newScriptPipe(ctx, b.rdb, redisurl.NewReplication(b.rdb, b.cfg.Replicas, b.cfg.ReplicaTimeout), run)
	run(crlSync)
	run(b.migrate)
	run(func(ctx context.Context) { b.report(ctx, ModeAlmostOnline, 0) })
	run(func(ctx context.Context) { b.report(ctx, ModeBatch, b.cfg.BatchInterval) })
	run(b.watchGauges)
}

// Destruct stops the workers, then closes Redis: every worker's Redis
// call ends with its context (none blocks on the server), and a move to
// the sharded layout cut short still releases its lock. No request is in
// flight on the backend by now, since it outlives every handler that used
// it.
func (b *backend) Destruct() error {
	b.cancel()
	b.wg.Wait()
	return b.rdb.Close()
}

// bounded is a concurrent map of at most max entries, for caches whose
// entries can always be recomputed. It keeps two generations of max/2:
// when the newer is full the older is emptied and becomes the newer, its
// table kept, so that once both are full the cache's memory stays as it
// is (emptying the whole of it would leave it all to the collector at
// once). A hit in the older generation is copied to the newer, so an
// entry in use is not dropped.
type bounded[K comparable, V any] struct {
	mu       sync.RWMutex
	max      int
	cur, old map[K]V
}

func (c *bounded[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	v, ok := c.cur[k]
	if ok {
		c.mu.RUnlock()
		return v, true
	}
	v, ok = c.old[k]
	c.mu.RUnlock()
	if ok {
		c.put(k, v)
	}
	return v, ok
}

func (c *bounded[K, V]) put(k K, v V) {
	c.mu.Lock()
	if c.cur == nil {
		c.cur, c.old = make(map[K]V), make(map[K]V)
	}
	if _, ok := c.cur[k]; !ok && len(c.cur) >= max(c.max/2, 1) {
		clear(c.old)
		c.cur, c.old = c.old, c.cur
	}
	c.cur[k] = v
	c.mu.Unlock()
}

// len is the number of entries held, counting one in both generations
// twice.
func (c *bounded[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}

// boundedSet is a bounded set of strings, each held as its SHA-256: 32
// bytes an entry, however long the key.
type boundedSet struct {
	bounded[digest, struct{}]
}

// digest is a cache's key: the SHA-256 of what it stands for.
type digest = [sha256.Size]byte

// digestOf is s's digest, hashing s in place: []byte(s) would copy it to
// the heap on every payment.
func digestOf(s string) digest {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// maxSegmentCache bounds each of the segment caches (verified segments,
// bindings registered, bindings known): 65,536 digests, about 5 MiB with
// the maps' slack.
const maxSegmentCache = 1 << 16

func (s *boundedSet) has(key string) bool {
	_, ok := s.get(digestOf(key))
	return ok
}

func (s *boundedSet) add(key string) { s.put(digestOf(key), struct{}{}) }

// checkSegment verifies p's binding and Merkle path once per process, keyed
// by everything those checks cover.
func (b *backend) checkSegment(p *payword.Payment) error {
	var buf [256]byte // room for the fields and the largest binding, on the stack
	k := append(buf[:0], p.Cert.Serial[:]...)
	k = append(k, p.Cert.Root[:]...)
	k = append(k, p.Anchor[:]...)
	k = binary.BigEndian.AppendUint32(k, p.Segment)
	key := sha256.Sum256(append(k, bindingRaw(p)...))
	if _, ok := b.segments.get(key); ok {
		return nil
	}
	if err := payword.CheckSegment(p); err != nil {
		return err
	}
	b.segments.put(key, struct{}{})
	return nil
}

// registerBinding registers p's segment binding with the agent (online
// mode) unless this vendor already did; the agent refuses a segment bound
// to another vendor.
func (b *backend) registerBinding(ctx context.Context, p *payword.Payment) error {
	key := b.ks.bound(p.Cert.Serial, p.Segment)
	if b.bound.has(key) {
		return nil
	}
	n, err := b.rdb.Exists(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("%w: %v", errUnavailable, err)
	}
	if n == 0 {
		if err := bind(ctx, b.agent, p.Binding.Raw()); err != nil {
			return err
		}
		if err := b.rdb.Set(ctx, key, "1", time.Until(time.Unix(p.Cert.ExpiresAt+3600, 0))).Err(); err != nil {
			return fmt.Errorf("%w: %v", errUnavailable, err)
		}
	}
	b.bound.add(key)
	return nil
}

func zapErr(err error) zap.Field { return zap.Error(err) }

// Interface guards
var _ caddy.Destructor = (*backend)(nil)
