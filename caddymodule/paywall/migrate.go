package paywall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// Moving a vendor's store to the sharded layout (see keyspace).
//
// Gateways before it kept every key of a vendor under hw:g:{<vendor>}:.
// A gateway upgraded in place finds its payment state there; ignoring it
// would make every segment look fresh, so spent tokens would be accepted
// again, and the claims queued in the old streams would never reach the
// agent. So before it takes a payment (they wait, and get 503 past
// storeTimeout) a gateway moves the old keys:
//
//   - a segment's state (s:) to its shard, the higher index winning over a
//     state already there, with its expiry. The old key stays as a
//     tombstone no payment follows (index 2^32-1, no token): a gateway of
//     the old version still running answers 503 for the segment rather
//     than take its tokens as fresh;
//   - the bound and offline markers (b:, o:) to their shard, with their
//     expiry;
//   - the claims of the old streams, in order, to the stream of their
//     certificate's shard; an old stream is deleted once empty. A crash
//     between copying a claim and deleting it ships it twice, which the
//     agent answers duplicate;
//   - authorization records (a:) stay: their key hides the certificate, so
//     their shard is unknown. They live as long as a grant; until the last
//     one has expired, a payment refused as a replay is looked up there
//     (legacyRecord), so that a payment accepted before the upgrade and
//     sent again after it gets its grant back, as before.
//
// One gateway at a time moves them, under a lock in the store; the others
// wait for the mark it leaves. The move is idempotent: a gateway that dies
// halfway lets its lock expire and the next one starts over. On a Cluster
// every master is scanned. The old version's gateways must all be stopped
// before the first new one starts: one still running would take new
// segments in the old layout, where the new ones do not look (a gateway
// that finds an old stream again at start moves the keys again, which
// saves the claims, not the double spend).

const (
	// layoutName marks a store whose keys are in this layout.
	layoutName = "shards:16"

	migrateLockTTL = 10 * time.Second // renewed after every page
	migratePage    = 500              // keys per SCAN, claims per read
	migrateRetry   = 200 * time.Millisecond
	movedIndex     = "4294967295" // the tombstone's index: no payment follows it
	movedToken     = "moved"
)

var errMigrating = errors.New("another gateway is moving the store to the sharded layout")

func (k keyspace) layout() string    { return k.vendor + "layout" }
func (k keyspace) migrating() string { return k.vendor + "migrating" }

// legacyStream is mode's report stream in the old layout.
func (k keyspace) legacyStream(mode string) string { return k.vendor + streamName(mode) }

// putScript writes one moved key in the new layout unless the key there
// is already as far. KEYS: 1 the key. ARGV: 1 "s" for a state hash, else a
// counter (markers are "1"); 2 its index or count; 3 its token; 4 its TTL
// in ms (0: none).
var putScript = redis.NewScript(`
local cur
if ARGV[1] == 's' then cur = redis.call('HGET', KEYS[1], 'i') else cur = redis.call('GET', KEYS[1]) end
if tonumber(ARGV[2]) <= (tonumber(cur) or 0) then return 0 end
if ARGV[1] == 's' then
  redis.call('HSET', KEYS[1], 'i', ARGV[2], 't', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
`)

// retireScript retires an old key once moved, unless it changed since it
// was read: a state becomes the tombstone, a marker goes. KEYS: 1 the old
// key. ARGV as putScript's first three. Returns 0 if it changed.
var retireScript = redis.NewScript(`
if ARGV[1] == 's' then
  local st = redis.call('HMGET', KEYS[1], 'i', 't')
  if st[1] ~= ARGV[2] or st[2] ~= ARGV[3] then return 0 end
  redis.call('HSET', KEYS[1], 'i', '` + movedIndex + `', 't', '` + movedToken + `')
  return 1
end
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// dropEmptyScript deletes a stream with no entries left (an old gateway may
// just have added one). KEYS: 1 the stream.
var dropEmptyScript = redis.NewScript(`
if redis.call('XLEN', KEYS[1]) == 0 then return redis.call('DEL', KEYS[1]) end
return 0
`)

// renewScript extends the lock while its token holds it. KEYS: 1 the lock.
// ARGV: 1 token, 2 TTL in ms; with a TTL of 0 it deletes the lock.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`)

// migrate moves the store to the sharded layout, retrying until it is
// done, then lets payments through.
func (b *backend) migrate(ctx context.Context) {
	backoff := migrateRetry
	for ctx.Err() == nil {
		err := b.migrateOnce(ctx)
		if err == nil {
			close(b.layoutReady)
			return
		}
		if errors.Is(err, errMigrating) {
			sleep(ctx, migrateRetry)
			continue
		}
		if ctx.Err() == nil {
			b.log.Error("moving the vendor's store to the sharded layout; payments wait", zapErr(err))
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

// waitLayout waits until the store is in the sharded layout.
func (b *backend) waitLayout(ctx context.Context) error {
	select {
	case <-b.layoutReady:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	select {
	case <-b.layoutReady:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: the store's keys are being moved to the sharded layout", errUnavailable)
	}
}

func (b *backend) migrateOnce(ctx context.Context) error {
	ks := b.ks
	mark, err := b.rdb.HGetAll(ctx, ks.layout()).Result()
	if err != nil {
		return err
	}
	if l := mark["layout"]; l != "" && l != layoutName {
		return fmt.Errorf("the store is in layout %q, this gateway knows %q only", l, layoutName)
	}
	prevUntil, _ := strconv.ParseInt(mark["legacy_auth_until"], 10, 64)
	old, err := b.rdb.Exists(ctx, ks.legacyStream(ModeAlmostOnline), ks.legacyStream(ModeBatch)).Result()
	if err != nil {
		return err
	}
	if mark["layout"] == layoutName && old == 0 {
		b.legacyAuthUntil.Store(prevUntil)
		return nil
	}

	token := newAuth()
	if ok, err := b.rdb.SetNX(ctx, ks.migrating(), token, migrateLockTTL).Result(); err != nil {
		return err
	} else if !ok {
		return errMigrating
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		_ = renewScript.Run(ctx, b.rdb, []string{ks.migrating()}, token, 0).Err()
	}()
	renew := func(ctx context.Context) error {
		n, err := renewScript.Run(ctx, b.rdb, []string{ks.migrating()}, token, migrateLockTTL.Milliseconds()).Int()
		if err == nil && n == 0 {
			err = errors.New("lost the migration lock")
		}
		return err
	}

	start := time.Now()
	var st moveStats
	if err := b.moveKeys(ctx, renew, &st); err != nil {
		return err
	}
	for _, mode := range reportModes {
		if err := b.moveStream(ctx, mode, renew, &st); err != nil {
			return err
		}
	}
	until := max(prevUntil, st.authUntil)
	if err := b.rdb.HSet(ctx, ks.layout(), "layout", layoutName, "legacy_auth_until", until).Err(); err != nil {
		return err
	}
	b.legacyAuthUntil.Store(until)
	if st.keys+st.claims+st.auths > 0 {
		b.log.Info("moved the vendor's store to the sharded layout",
			zap.Int("keys", st.keys), zap.Int("claims", st.claims), zap.Int("authorizations_left", st.auths),
			zap.Duration("took", time.Since(start)))
	}
	return nil
}

type moveStats struct {
	mu                  sync.Mutex
	keys, claims, auths int
	authUntil           int64 // Unix seconds the last old authorization record expires
}

// oldKey is a key of the old layout being moved.
type oldKey struct {
	key, to string // its name, and its name in the new layout
	kind    string // "s", "b", "o" or "a"
	val     []any  // putScript's ARGV 2-3, as read
	ttl     int64  // ms, 0 for none
}

// moveKeys moves the old layout's state and markers, page by page of a
// SCAN of every master.
func (b *backend) moveKeys(ctx context.Context, renew func(context.Context) error, st *moveStats) error {
	prefix := b.ks.vendor
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, prefix+"*", migratePage).Result()
			if err != nil {
				return err
			}
			var page []*oldKey
			for _, k := range keys {
				if ok := b.parseOldKey(k); ok != nil {
					page = append(page, ok)
				}
			}
			if err := b.movePage(ctx, page, st); err != nil {
				return err
			}
			if err := renew(ctx); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := b.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, b.rdb)
}

// parseOldKey names the key a key of the old layout moves to, or returns
// nil for the keys that stay (vendor-wide keys, the old streams).
func (b *backend) parseOldKey(key string) *oldKey {
	rest := strings.TrimPrefix(key, b.ks.vendor)
	kind, id, _ := strings.Cut(rest, ":")
	switch kind {
	case "a":
		return &oldKey{key: key, kind: kind}
	case "s", "b", "o":
		serial, _, _ := strings.Cut(id, ":")
		s, err := payword.ParseSerial(serial)
		if err != nil {
			b.log.Error("ignoring a key of the old layout that names no certificate", zap.String("key", key))
			return nil
		}
		return &oldKey{key: key, to: b.ks.of(s) + rest, kind: kind}
	}
	return nil
}

// movePage moves one page of old keys: it reads them, writes them in the
// new layout, then retires them; a key that changed meanwhile is moved
// again.
func (b *backend) movePage(ctx context.Context, page []*oldKey, st *moveStats) error {
	for attempt := 0; len(page) > 0; attempt++ {
		if attempt == 3 {
			return fmt.Errorf("%d keys of the old layout keep changing: is a gateway of the old version running?", len(page))
		}
		if err := b.readOld(ctx, page); err != nil {
			return err
		}
		var live []*oldKey
		for _, k := range page {
			switch {
			case k.kind == "a":
				st.mu.Lock()
				st.auths++
				if k.ttl > 0 {
					st.authUntil = max(st.authUntil, time.Now().Add(time.Duration(k.ttl)*time.Millisecond).Unix()+1)
				}
				st.mu.Unlock()
			case k.val != nil:
				live = append(live, k)
			}
		}
		cmds, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range live {
				putScript.Eval(ctx, p, []string{k.to}, k.kind, k.val[0], k.val[1], k.ttl)
			}
			return nil
		})
		if err != nil {
			return err
		}
		cmds, err = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range live {
				retireScript.Eval(ctx, p, []string{k.key}, k.kind, k.val[0], k.val[1])
			}
			return nil
		})
		if err != nil {
			return err
		}
		page = page[:0]
		for i, c := range cmds {
			if n, _ := c.(*redis.Cmd).Int(); n == 0 {
				page = append(page, live[i])
			}
		}
		st.mu.Lock()
		st.keys += len(live) - len(page)
		st.mu.Unlock()
	}
	return nil
}

// readOld reads each key's value and TTL; val stays nil for a key gone,
// already a tombstone, or not holding what this layout wrote.
func (b *backend) readOld(ctx context.Context, page []*oldKey) error {
	cmds, _ := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range page {
			switch k.kind {
			case "s":
				p.HMGet(ctx, k.key, "i", "t")
			case "b", "o":
				p.Get(ctx, k.key)
			}
			p.PTTL(ctx, k.key)
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	for _, k := range page {
		k.val, k.ttl = nil, 0
		if k.kind != "a" {
			switch c := cmds[0].(type) {
			case *redis.SliceCmd:
				if v := c.Val(); len(v) == 2 && v[0] != nil && v[1] != nil && v[1] != movedToken {
					k.val = v
				}
			case *redis.StringCmd:
				if v, err := c.Result(); err == nil {
					k.val = []any{v, ""}
				}
			}
			cmds = cmds[1:]
		}
		if d := cmds[0].(*redis.DurationCmd).Val(); d > 0 {
			k.ttl = max(1, d.Milliseconds())
		}
		cmds = cmds[1:]
		if k.val != nil {
			if _, err := strconv.ParseUint(fmt.Sprint(k.val[0]), 10, 32); err != nil {
				b.log.Error("ignoring a key of the old layout with an unreadable value", zap.String("key", k.key))
				k.val = nil
			}
		}
	}
	return nil
}

// moveStream moves the claims of mode's old stream, oldest first, to the
// streams of their certificates' shards, then deletes the old stream.
func (b *backend) moveStream(ctx context.Context, mode string, renew func(context.Context) error, st *moveStats) error {
	old := b.ks.legacyStream(mode)
	for {
		msgs, err := b.rdb.XRangeN(ctx, old, "-", "+", migratePage).Result()
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		ids := make([]string, len(msgs))
		if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range msgs {
				ids[i] = m.ID
				raw, _ := m.Values["c"].(string)
				var c payword.Claim
				_ = json.Unmarshal([]byte(raw), &c) // unreadable: ship keeps it for an operator
				p.XAdd(ctx, &redis.XAddArgs{Stream: b.ks.streamOf(mode, c.Serial), Values: []any{"c", raw}})
			}
			return nil
		}); err != nil {
			return err
		}
		if err := b.rdb.XDel(ctx, old, ids...).Err(); err != nil {
			return err
		}
		st.claims += len(msgs)
		if err := renew(ctx); err != nil {
			return err
		}
	}
	return dropEmptyScript.Run(ctx, b.rdb, []string{old}).Err()
}

// legacyRecord is the authorization record of payment p in the old layout,
// while such records may remain.
func (b *backend) legacyRecord(ctx context.Context, p *payword.Payment) (string, bool) {
	if time.Now().Unix() > b.legacyAuthUntil.Load() {
		return "", false
	}
	rec, err := b.rdb.Get(ctx, b.ks.vendor+"a:"+authDigest(p)).Result()
	return rec, err == nil
}
