package paywall

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// crlSet is this process's copy of the revocation list.
type crlSet struct {
	mu      sync.RWMutex
	serials map[payword.Serial]struct{}
	last    uint64       // highest sequence number held
	synced  atomic.Int64 // Unix nanoseconds of the last successful sync
}

// newCRLSet starts as if just synced: the max-age window bounds the time a
// new gateway may take to reach the agent.
func newCRLSet() *crlSet {
	c := &crlSet{serials: make(map[payword.Serial]struct{})}
	c.markSynced()
	return c
}

func (c *crlSet) markSynced() { c.synced.Store(time.Now().UnixNano()) }

// age is how long ago the list was last known to be complete.
func (c *crlSet) age(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, c.synced.Load()))
}

func (c *crlSet) revoked(s payword.Serial) bool {
	c.mu.RLock()
	_, ok := c.serials[s]
	c.mu.RUnlock()
	return ok
}

func (c *crlSet) since() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.last
}

func (c *crlSet) add(es ...payword.CRLEntry) {
	c.mu.Lock()
	for _, e := range es {
		c.serials[e.Serial] = struct{}{}
		c.last = max(c.last, e.Seq)
	}
	c.mu.Unlock()
}

// crlChannel and crlKey are the agent's CRL sorted set and channel
// (CONTRACT: Redis shared with the agent).
const (
	crlChannel = "hw:crl"
	crlKey     = "hw:crl"
	crlPage    = 1000
)

// loadCRL adds the entries of sorted set key after what the set holds.
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
// published entry.
func (b *backend) subscribeCRL(ctx context.Context) {
	ps := b.rdb.Subscribe(ctx, crlChannel)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // ends a blocked receive at once
	defer stop()
	catchUp := time.NewTicker(30 * time.Second)
	defer catchUp.Stop()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, time.Second)
		switch m := msg.(type) {
		case *redis.Subscription:
			if err := b.loadCRL(ctx, crlKey); err != nil {
				b.log.Warn("CRL resync", zapErr(err))
			} else {
				b.crl.markSynced()
			}
		case *redis.Message:
			var e payword.CRLEntry
			if json.Unmarshal([]byte(m.Payload), &e) == nil {
				b.crl.add(e)
			}
			b.crl.markSynced()
		}
		if err != nil && isTimeout(err) {
			b.crl.markSynced() // subscribed, nothing published
		}
		if err != nil && ctx.Err() == nil {
			if !isTimeout(err) {
				b.log.Warn("CRL subscription", zapErr(err))
				sleep(ctx, time.Second)
			}
		}
		select {
		case <-catchUp.C:
			if err := b.loadCRL(ctx, crlKey); err != nil {
				b.log.Warn("CRL resync", zapErr(err))
			}
		default:
		}
	}
}

// pullCRL pulls the agent's CRL into memory and the vendor's Redis, so a
// restarted gateway starts from the vendor's copy even if the agent is down.
func (b *backend) pullCRL(ctx context.Context) {
	loaded := false
	for ctx.Err() == nil {
		if !loaded {
			loaded = b.loadCRL(ctx, b.ks.crl()) == nil
		}
		if keys := b.keys.current(ctx); keys != nil {
			if err := b.pullCRLOnce(ctx, keys.keys); err == nil {
				b.crl.markSynced()
			} else if ctx.Err() == nil {
				b.log.Warn("pulling the CRL", zapErr(err))
			}
		}
		sleep(ctx, b.cfg.CRLInterval)
	}
}

func (b *backend) pullCRLOnce(ctx context.Context, keys payword.KeySet) error {
	for range 100 { // at most a million entries per round
		since := b.crl.since()
		page, err := b.agent.crl(ctx, since, keys)
		if err != nil {
			return err
		}
		if page.Since != since {
			return nil // an answer to another question
		}
		if len(page.Entries) > 0 {
			zs := make([]redis.Z, len(page.Entries))
			for i, e := range page.Entries {
				m, _ := json.Marshal(e)
				zs[i] = redis.Z{Score: float64(e.Seq), Member: m}
			}
			if err := b.rdb.ZAdd(ctx, b.ks.crl(), zs...).Err(); err != nil {
				b.log.Warn("saving the CRL", zapErr(err))
			}
			b.crl.add(page.Entries...)
		}
		if len(page.Entries) == 0 || b.crl.since() >= page.Last {
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
