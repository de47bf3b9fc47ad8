package paywall

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// crlSet is this process's copy of the revocation list. It is not fresh
// until it has synced: a new gateway refuses payments (503 crl_stale)
// until its first sync, or until it has restored a copy from the vendor's
// Redis whose recorded sync time is recent enough.
type crlSet struct {
	mu      sync.RWMutex
	entries map[payword.Serial]payword.CRLEntry
	cur     payword.CRLCursor // agent mode: the next question; redis mode: the highest seq held
	pruned  time.Time

	synced    atomic.Int64  // Unix nanoseconds the list was last known complete; 0: never
	known     chan struct{} // closed once the list was first known complete (synced or restored)
	knownOnce sync.Once
}

func newCRLSet() *crlSet {
	return &crlSet{entries: make(map[payword.Serial]payword.CRLEntry), known: make(chan struct{})}
}

// crlFirstWait bounds how long a payment waits at start for the gateway's
// first sync (or restored copy), rather than failing at once with
// crl_stale: a first attempt may find the agent not listening yet, and the
// sync workers try again every crl_interval.
const crlFirstWait = 2 * time.Second

// markSynced records that the list was complete at t (never moving back).
func (c *crlSet) markSynced(t time.Time) {
	defer c.knownOnce.Do(func() { close(c.known) })
	for {
		old := c.synced.Load()
		if old >= t.UnixNano() || c.synced.CompareAndSwap(old, t.UnixNano()) {
			return
		}
	}
}

// waitFirst waits until the list was first known (at most crlFirstWait),
// so that a payment at start is checked against a list.
func (c *crlSet) waitFirst() {
	select {
	case <-c.known:
	default:
		t := time.NewTimer(crlFirstWait)
		select {
		case <-c.known:
		case <-t.C:
		}
		t.Stop()
	}
}

// age is how long ago the list was last known to be complete; before the
// first sync it is "forever".
func (c *crlSet) age(now time.Time) time.Duration {
	c.waitFirst()
	s := c.synced.Load()
	if s == 0 {
		return math.MaxInt64
	}
	return now.Sub(time.Unix(0, s))
}

func (c *crlSet) revoked(s payword.Serial) bool {
	c.waitFirst()
	c.mu.RLock()
	_, ok := c.entries[s]
	c.mu.RUnlock()
	return ok
}

// since is the sequence number the next question starts after.
func (c *crlSet) since() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cur.Since
}

func (c *crlSet) cursor() payword.CRLCursor {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cur
}

// crlPruneEvery is how often memory is swept of expired entries.
const crlPruneEvery = time.Minute

// add adds entries (dropping expired ones) and, in redis mode, moves the
// cursor to the highest seq held.
func (c *crlSet) add(es ...payword.CRLEntry) {
	c.advance(nil, es)
}

// advance adds entries and moves the cursor to next (if not nil).
func (c *crlSet) advance(next *payword.CRLCursor, es []payword.CRLEntry) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range es {
		if !e.Expired(now) {
			c.entries[e.Serial] = e
		}
		c.cur.Since = max(c.cur.Since, e.Seq)
	}
	if next != nil {
		c.cur = *next
	}
	if now.Sub(c.pruned) >= crlPruneEvery {
		c.pruned = now
		for s, e := range c.entries {
			if e.Expired(now) {
				delete(c.entries, s)
			}
		}
	}
}

// all returns the entries held, in no order.
func (c *crlSet) all() []payword.CRLEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]payword.CRLEntry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	return out
}

// crlPage is how many entries of the agent's list (agentapi.CRLKey) one
// read of the agent's Redis takes.
const crlPage = 1000

// The vendor's copy of the agent's list (agent mode): the entries by seq
// (ks.crl()), the same by certificate expiry for pruning, and the head: the
// cursor of the copy and when it was last known complete. The head is
// written in the same script as the entries it covers, so a Redis that
// lost data (a restart without persistence, a snapshot restored) holds
// either no head or a head consistent with its entries and their age.
func crlExpKey(ks keyspace) string  { return ks.vendor + "crlexp" }
func crlHeadKey(ks keyspace) string { return ks.vendor + "crlhead" }

// crlSave: KEYS copy, by-expiry, head; ARGV prev since, since, last, time,
// synced (Unix ns, 0 = not complete), prune cutoff, write head (1/0), then
// (seq, exp, member) triples → entries pruned, or -1 if the store no
// longer holds what the caller saved before (its head is missing or behind
// prev since).
var crlSave = redis.NewScript(`
local h = redis.call('HMGET', KEYS[3], 'since', 'last', 'time', 'synced')
local prev = tonumber(ARGV[1])
if prev > 0 and (not h[1] or tonumber(h[1]) < prev) then return -1 end
for i = 8, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i+2])
  if tonumber(ARGV[i+1]) > 0 then redis.call('ZADD', KEYS[2], ARGV[i+1], ARGV[i+2]) end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[6], 'LIMIT', 0, 1000)
for _, m in ipairs(old) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
if ARGV[7] == '1' then
  local function hi(a, b) if a and tonumber(a) > tonumber(b) then return a end return b end
  redis.call('HSET', KEYS[3], 'since', hi(h[1], ARGV[2]), 'last', hi(h[2], ARGV[3]),
    'time', hi(h[3], ARGV[4]), 'synced', hi(h[4], ARGV[5]))
end
return #old
`)

var errCRLStoreLost = errors.New("the vendor's Redis lost its copy of the revocation list")

// saveCRL writes entries and the head (cursor next, synced, or 0) to the
// vendor's copy; prev is the cursor the caller last saved.
func (b *backend) saveCRL(ctx context.Context, prev, next payword.CRLCursor, synced int64, head bool, es []payword.CRLEntry) error {
	writeHead := "0"
	if head {
		writeHead = "1"
	}
	args := []any{prev.Since, next.Since, next.Last, next.Time, synced,
		time.Now().Add(-payword.CRLKeep).Unix(), writeHead}
	for _, e := range es {
		m, _ := json.Marshal(e)
		args = append(args, e.Seq, e.Exp, m)
	}
	n, err := crlSave.Run(ctx, b.rdb, []string{b.ks.crl(), crlExpKey(b.ks), crlHeadKey(b.ks)}, args...).Int()
	if err == nil && n < 0 {
		err = errCRLStoreLost
	}
	return err
}

// rewriteCRL writes this process's whole list back to a vendor's Redis
// that lost it, then the head.
func (b *backend) rewriteCRL(ctx context.Context) error {
	cur, all := b.crl.cursor(), b.crl.all()
	for len(all) > 0 {
		n := min(len(all), crlPage)
		if err := b.saveCRL(ctx, payword.CRLCursor{}, cur, 0, false, all[:n]); err != nil {
			return err
		}
		all = all[n:]
	}
	return b.saveCRL(ctx, payword.CRLCursor{}, cur, b.crl.synced.Load(), true, nil)
}

// restoreCRL loads the vendor's copy and its head. Without a head (a new
// vendor, or a Redis that lost it) the gateway starts empty and unsynced.
func (b *backend) restoreCRL(ctx context.Context) error {
	h, err := b.rdb.HGetAll(ctx, crlHeadKey(b.ks)).Result()
	if err != nil || len(h) == 0 {
		return err
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	cur := payword.CRLCursor{Since: uint64(num("since")), Last: uint64(num("last")), Time: num("time")}
	after := "-inf"
	for {
		members, err := b.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: b.ks.crl(), ByScore: true, Start: after, Stop: strconv.FormatUint(cur.Since, 10), Count: crlPage,
		}).Result()
		if err != nil {
			return err
		}
		es := make([]payword.CRLEntry, 0, len(members))
		for _, m := range members {
			var e payword.CRLEntry
			if json.Unmarshal([]byte(m), &e) != nil {
				b.log.Error("ignoring a malformed CRL entry", zap.String("key", b.ks.crl()))
				continue
			}
			es = append(es, e)
			after = "(" + strconv.FormatUint(e.Seq, 10)
		}
		b.crl.advance(nil, es)
		if len(members) < crlPage {
			break
		}
	}
	b.crl.advance(&cur, nil)
	if s := num("synced"); s > 0 {
		b.crl.markSynced(time.Unix(0, s))
	}
	return nil
}

// loadCRL adds the entries of the agent's sorted set key after what the set
// holds (redis mode).
func (b *backend) loadCRL(ctx context.Context, key string) error {
	for {
		members, err := b.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: key, ByScore: true, Start: "(" + strconv.FormatUint(b.crl.since(), 10), Stop: "+inf",
			Count: crlPage,
		}).Result()
		if err != nil {
			return err
		}
		for _, m := range members {
			var e payword.CRLEntry
			if err := json.Unmarshal([]byte(m), &e); err != nil {
				b.log.Error("ignoring a malformed CRL entry", zap.String("key", key))
				continue
			}
			b.crl.add(e)
		}
		if len(members) < crlPage {
			return nil
		}
	}
}

// subscribeCRL follows the agent's CRL in a shared Redis: it resyncs the
// whole list on start and after every (re)subscription, then applies each
// published entry. The list counts as synced while the subscription is up.
func (b *backend) subscribeCRL(ctx context.Context) {
	ps := b.rdb.Subscribe(ctx, agentapi.CRLChannel)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // ends a blocked receive at once
	defer stop()
	catchUp := time.NewTicker(30 * time.Second)
	defer catchUp.Stop()
	subscribed := false
	for ctx.Err() == nil {
		b.keys.load(ctx)
		msg, err := ps.ReceiveTimeout(ctx, time.Second)
		switch m := msg.(type) {
		case *redis.Subscription:
			subscribed = false
			if err := b.loadCRL(ctx, agentapi.CRLKey); err != nil {
				b.log.Warn("CRL resync", zapErr(err))
			} else {
				subscribed = true
				b.crl.markSynced(time.Now())
			}
		case *redis.Message:
			var e payword.CRLEntry
			if json.Unmarshal([]byte(m.Payload), &e) == nil {
				b.crl.add(e)
			}
			if subscribed {
				b.crl.markSynced(time.Now())
			}
		}
		if err != nil && isTimeout(err) {
			if subscribed {
				b.crl.markSynced(time.Now()) // subscribed, nothing published
			}
		}
		if err != nil && ctx.Err() == nil {
			if !isTimeout(err) {
				subscribed = false
				b.log.Warn("CRL subscription", zapErr(err))
				sleep(ctx, time.Second)
			}
		}
		select {
		case <-catchUp.C:
			if err := b.loadCRL(ctx, agentapi.CRLKey); err != nil {
				b.log.Warn("CRL resync", zapErr(err))
			}
		default:
		}
	}
}

// pullCRL pulls the agent's CRL into memory and the vendor's Redis, so a
// restarted gateway starts from the vendor's copy, knowing its age, even
// if the agent is down.
func (b *backend) pullCRL(ctx context.Context) {
	restored := false
	for ctx.Err() == nil {
		if !restored {
			if err := b.restoreCRL(ctx); err != nil {
				b.log.Warn("reading the vendor's copy of the CRL", zapErr(err))
			} else {
				restored = true
			}
		}
		b.keys.load(ctx)
		if keys := b.keys.current(); keys != nil && restored {
			if err := b.pullCRLOnce(ctx, keys.keys); err != nil && ctx.Err() == nil {
				b.log.Warn("pulling the CRL", zapErr(err))
			}
		}
		sleep(ctx, b.cfg.CRLInterval)
	}
}

// crlPageMaxAge refuses pages signed longer ago than this outright. The
// sync time a page vouches for is its signing time, so an older page could
// not make payments pass anyway (crl_max_age counts from it).
const crlPageMaxAge = defaultCRLMaxAge

// pullCRLOnce asks for pages until one reaches the agent's head. Only a
// page that answers the question asked, signed recently and not before one
// already seen, with a head not behind one already seen, is taken; the
// list counts as synced at the signing time of the page that completes it.
func (b *backend) pullCRLOnce(ctx context.Context, keys payword.KeySet) error {
	for range 1000 { // at most a million entries per round
		cur := b.crl.cursor()
		raw, err := b.agent.CRL(ctx, cur.Since)
		if err != nil {
			return err
		}
		page, err := payword.OpenCRL(raw, keys)
		if err != nil {
			return err
		}
		now := time.Now()
		next, err := cur.Accept(page, now, crlPageMaxAge)
		if err != nil {
			return err
		}
		var synced int64
		if page.Complete() {
			synced = page.FreshAt(now).UnixNano()
		}
		err = b.saveCRL(ctx, cur, next, synced, true, page.Entries)
		if errors.Is(err, errCRLStoreLost) {
			b.log.Warn("the vendor's Redis lost its copy of the CRL: writing it back")
			if err = b.rewriteCRL(ctx); err == nil {
				err = b.saveCRL(ctx, cur, next, synced, true, page.Entries)
			}
		}
		if err != nil {
			// Not kept for a restart: not taken at all, asked again.
			return err
		}
		b.crl.advance(&next, page.Entries)
		if page.Complete() {
			b.crl.markSynced(time.Unix(0, synced))
			return nil
		}
	}
	return nil
}

func isTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
