package paywall

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// reportGroup is the consumer group of the report streams; every gateway of
// a vendor joins it, so each claim is shipped by one of them.
const (
	reportGroup = "reporters"
	reportBatch = 500 // claims per report, well under payword.MaxReportClaims and MaxReportSize

	// A failed report is retried after minBackoff, doubling up to
	// maxBackoff: delivery resumes within maxBackoff of the agent's return,
	// however long it was away, at the cost of two requests a second per
	// stream and gateway while it is.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 500 * time.Millisecond

	// reportLinger is how often almost_online reads its streams: a burst
	// becomes one report, and a single claim still reaches the agent far
	// inside its second.
	reportLinger = 50 * time.Millisecond

	// shippers bounds the reports of one mode in flight at once: a slow
	// agent round trip no longer holds back the claims that came meanwhile
	// (one report at a time put every claim of a busy second behind the
	// whole queue). The reader stops reading when all are busy.
	shippers = 4

	// defaultReclaimIdle is how long a claim may stay unacknowledged by a
	// dead gateway before another takes it over. A live gateway refreshes
	// the claims it is shipping every reclaimIdle/4 (heartbeat) for up to
	// holdLimit, so a slow agent round trip does not make another gateway
	// ship them too; past holdLimit (an agent unreachable from this
	// gateway only) any gateway may.
	defaultReclaimIdle = time.Second
	holdLimit          = 5 * time.Second

	// reportTimeout bounds one attempt: a report lost on a half-open
	// connection is sent again on a new one instead of waiting for the
	// client's 10 s. An attempt that was merely slow costs little on its
	// retry: the agent finishes a report whose sender left, and answers a
	// batch it has from its record.
	reportTimeout    = 2 * time.Second
	maxReportTimeout = 8 * time.Second // after attempts that timed out

	// backlogEvery bounds how often the backlog gauge is refreshed.
	backlogEvery = time.Second
)

// consumerName identifies this process in the group.
var consumerName = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())
}()

// report ships the claims of mode's report streams (one per shard) to the
// agent, at least once: an entry is acknowledged and deleted only once the
// agent answered 200 with a result for its very claim, and entries left
// pending (by a dead gateway, or without a result) are reclaimed once idle
// for reclaimIdle. interval 0 ships as claims arrive (almost_online): the
// streams are read every reportLinger, so a burst becomes one report and a
// single claim still reaches the agent far inside its second; otherwise
// every interval (batch).
//
// The streams are polled, all of them in one pipeline, rather than read
// with BLOCK: a blocking read holds a connection per stream (2 × shards of
// a pool of 10 per CPU), and on a Cluster cannot span the slots. One read
// takes up to about reportBatch claims across the streams, and they go to
// the agent in one report.
func (b *backend) report(ctx context.Context, mode string, interval time.Duration) {
	streams := b.ks.streams(mode)
	for ctx.Err() == nil {
		err := b.createGroups(ctx, streams)
		if err == nil {
			break
		}
		b.log.Warn("creating the report groups", zapErr(err))
		sleep(ctx, maxBackoff)
	}
	poll := reportLinger
	if interval > 0 {
		poll = interval
	}
	slots := make(chan struct{}, shippers)
	var wg sync.WaitGroup
	defer wg.Wait()
	var lastReclaim time.Time
	for ctx.Err() == nil {
		// A free slot before reading: claims not read yet belong to no
		// gateway, so a busy one leaves them to the others.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var parts []part
		more, ok := false, true
		idle := time.Duration(b.reclaimIdle.Load())
		if time.Since(lastReclaim) >= idle/4 {
			lastReclaim = time.Now()
			parts, more, ok = b.readClaims(ctx, streams, idle)
		}
		if len(parts) == 0 && ok {
			parts, more, _ = b.readClaims(ctx, streams, 0)
		}
		if len(parts) > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				b.deliver(ctx, mode, parts)
			}()
		} else {
			<-slots
		}
		if !more {
			sleep(ctx, poll)
		}
	}
}

// part is what one read took from one stream.
type part struct {
	stream string
	msgs   []redis.XMessage
}

// createGroups creates the report group of each stream (and the stream),
// unless it exists.
func (b *backend) createGroups(ctx context.Context, streams []string) error {
	cmds, _ := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range streams {
			p.XGroupCreateMkStream(ctx, s, reportGroup, "0")
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
			return err
		}
	}
	return nil
}

// readClaims reads the streams in one pipeline: the entries never
// delivered (idle 0), or those pending for longer than idle, which it
// claims for this gateway. Each stream gives up to reportBatch/len(streams)
// entries; more reports whether one may hold more. A stream that cannot be
// read is logged and left for the next read, after a pause (ok false);
// one that lost its group (the store lost its data) gets it back.
func (b *backend) readClaims(ctx context.Context, streams []string, idle time.Duration) (parts []part, more, ok bool) {
	per := int64(max(1, reportBatch/len(streams)))
	cmds, _ := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range streams {
			if idle > 0 {
				p.XAutoClaim(ctx, &redis.XAutoClaimArgs{
					Stream: s, Group: reportGroup, Consumer: consumerName, MinIdle: idle, Start: "0-0", Count: per,
				})
			} else {
				p.XReadGroup(ctx, &redis.XReadGroupArgs{
					Group: reportGroup, Consumer: consumerName, Streams: []string{s, ">"}, Count: per, Block: -1,
				})
			}
		}
		return nil
	})
	var failed []string
	var firstErr error
	for i, c := range cmds {
		var msgs []redis.XMessage
		var err error
		switch c := c.(type) {
		case *redis.XAutoClaimCmd:
			msgs, _, err = c.Result()
		case *redis.XStreamSliceCmd:
			var res []redis.XStream
			if res, err = c.Result(); len(res) > 0 {
				msgs = res[0].Messages
			}
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			if strings.Contains(err.Error(), "NOGROUP") {
				failed = append(failed, streams[i])
			}
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if len(msgs) > 0 {
			parts = append(parts, part{stream: streams[i], msgs: msgs})
		}
		more = more || int64(len(msgs)) == per
	}
	if firstErr != nil && ctx.Err() == nil {
		if len(failed) > 0 {
			_ = b.createGroups(ctx, failed)
		}
		b.log.Warn("reading claims", zapErr(firstErr))
		sleep(ctx, maxBackoff)
	}
	return parts, more, firstErr == nil
}

// deliver ships parts until the agent has taken them, keeping them this
// gateway's meanwhile (for up to holdLimit), then gives up: what is left is
// reclaimed once idle, by this gateway or another.
func (b *backend) deliver(ctx context.Context, mode string, parts []part) {
	hold, stop := context.WithTimeout(ctx, holdLimit)
	defer stop()
	go b.heartbeat(hold, parts)
	batch := batchID(parts)
	n := 0
	for _, p := range parts {
		n += len(p.msgs)
	}
	timeout := reportTimeout
	for backoff := minBackoff; hold.Err() == nil; backoff = min(2*backoff, maxBackoff) {
		attempt, cancel := context.WithTimeout(ctx, timeout)
		err := b.ship(attempt, mode, batch, parts)
		timedOut := attempt.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return
		}
		if timedOut {
			// An agent that slow may be busy: give it longer, not more.
			timeout = min(2*timeout, maxReportTimeout)
		}
		if ae, ok := errors.AsType[*agentapi.Error](err); ok && ae.Status == http.StatusConflict && ae.Code == agentapi.CodeBatchMismatch {
			// The agent holds other claims under this id (a gateway of
			// another version, or the store of another deployment): the
			// same claims under a fresh id are ingested claim by claim,
			// idempotently, so a retry never pays twice.
			b.log.Error("the agent knows this batch id with other claims: shipping under a fresh one",
				zap.String("batch", batch), zap.Int("claims", n))
			batch = freshBatchID(batch)
			continue
		}
		if ctx.Err() != nil {
			return // stopping: the claims stay pending for the next gateway
		}
		b.log.Warn("reporting claims", zap.Int("claims", n), zapErr(err))
		sleep(hold, backoff)
	}
}

// heartbeat resets the idle time of the entries of parts, this gateway's
// until ctx ends, every quarter of reclaimIdle.
func (b *backend) heartbeat(ctx context.Context, parts []part) {
	ids := make([][]string, len(parts))
	for i, p := range parts {
		for _, m := range p.msgs {
			ids[i] = append(ids[i], m.ID)
		}
	}
	for ctx.Err() == nil {
		sleep(ctx, time.Duration(b.reclaimIdle.Load())/4)
		if ctx.Err() != nil {
			return
		}
		_, _ = b.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, p := range parts {
				pipe.XClaimJustID(ctx, &redis.XClaimArgs{
					Stream: p.stream, Group: reportGroup, Consumer: consumerName, MinIdle: 0, Messages: ids[i],
				})
			}
			return nil
		})
	}
}

// batchID names a report by everything it ships: each stream, and each of
// its entries' id and claim. A redelivery of the same entries is the same
// batch, and no two different sets of claims a vendor ships share an id,
// whichever streams, millisecond or gateway they come from (the entry ids
// of two streams collide; the authorization numbers in the claims do not).
// The "s-" prefix keeps these ids apart from the earlier "r-" (one stream
// per mode) and "b-" ones.
func batchID(parts []part) string {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, p := range parts {
		field(p.stream)
		field(strconv.Itoa(len(p.msgs)))
		for _, m := range p.msgs {
			raw, _ := m.Values["c"].(string)
			field(m.ID)
			field(raw)
		}
	}
	return "s-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// freshBatchID derives a new, random batch id from id.
func freshBatchID(id string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return id[:min(len(id), 42)] + "-" + hex.EncodeToString(r[:])
}

// ship sends one batch and, on the agent's 200, acknowledges and deletes
// the entries whose claims got a result it checked: one naming the claim's
// authorization number, with a known verdict (a claim that got one is
// settled at the agent: paid, refused or unknown). Every other entry stays
// pending and is shipped again.
func (b *backend) ship(ctx context.Context, mode, batch string, parts []part) error {
	type at struct{ part, msg int }
	rep := &payword.Report{Vendor: b.cfg.Vendor, Batch: batch}
	byAuth := map[string][]at{} // authorization number → entries
	done := make([][]string, len(parts))
	unreadable := make([][]string, len(parts))
	for i, p := range parts {
		for j, m := range p.msgs {
			raw, _ := m.Values["c"].(string)
			var c payword.Claim
			if err := json.Unmarshal([]byte(raw), &c); err != nil || !payword.ValidID(c.Auth) {
				// Cannot happen for entries the accept script wrote; keep
				// the entry in the stream for an operator, but do not
				// block the rest.
				b.log.Error("unreadable claim left in the stream", zap.String("stream", p.stream), zap.String("id", m.ID))
				unreadable[i] = append(unreadable[i], m.ID)
				continue
			}
			rep.Claims = append(rep.Claims, c)
			byAuth[c.Auth] = append(byAuth[c.Auth], at{i, j})
		}
	}
	if len(rep.Claims) > 0 {
		out, err := b.agent.Report(ctx, rep)
		if err != nil {
			return err
		}
		if out.Batch != batch {
			return fmt.Errorf("the agent answered for batch %q, not %q", out.Batch, batch)
		}
		now, m := time.Now(), b.metrics.get()
		checked := map[at]bool{}
		for _, r := range out.Results {
			if !r.Verdict.Known() {
				continue
			}
			for _, e := range byAuth[r.Auth] {
				if !checked[e] {
					checked[e] = true
					id := parts[e.part].msgs[e.msg].ID
					done[e.part] = append(done[e.part], id)
					m.reports.WithLabelValues(string(r.Verdict)).Inc()
					if at, ok := entryTime(id); ok {
						m.delivery.WithLabelValues(b.cfg.Vendor, mode).Observe(max(0, now.Sub(at).Seconds()))
					}
				}
			}
			if r.Verdict == agentapi.VerdictVendorFraud || r.Verdict == agentapi.VerdictInvalid || r.Verdict == agentapi.VerdictUnknownCertificate {
				b.log.Error("agent refused a claim", zap.String("auth", r.Auth), zap.String("verdict", string(r.Verdict)))
			}
		}
		if missing := len(rep.Claims) - len(checked); missing > 0 {
			// A result missing or not for our claim: those entries stay
			// pending and go again, in another report.
			m.reports.WithLabelValues("unanswered").Add(float64(missing))
			b.log.Error("the agent's answer lacks results for some claims: they stay queued",
				zap.String("batch", batch), zap.Int("claims", len(rep.Claims)), zap.Int("unanswered", missing))
		}
	}
	// Acknowledged and deleted together, stream by stream (a transaction
	// cannot span a Cluster's slots); unreadable entries are only
	// acknowledged, and so kept out of the way.
	var errs []error
	for i, p := range parts {
		if len(done[i])+len(unreadable[i]) == 0 {
			continue
		}
		_, err := b.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.XAck(ctx, p.stream, reportGroup, append(append([]string(nil), done[i]...), unreadable[i]...)...)
			if len(done[i]) > 0 {
				pipe.XDel(ctx, p.stream, done[i]...)
			}
			return nil
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// entryTime reads the acceptance time out of a stream entry id
// ("<Unix ms>-<seq>", the vendor Redis's clock).
func entryTime(id string) (time.Time, bool) {
	ms, _, ok := strings.Cut(id, "-")
	v, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(v), true
}

// watchGauges refreshes the backlog, revocation-list age and readiness gauges every
// backlogEvery, apart from the workers: when every delivery fails (an
// agent that refuses the token, or is gone) the report workers are all
// busy retrying, and the growing backlog is what an operator must see.
func (b *backend) watchGauges(ctx context.Context) {
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			age := math.Inf(1)
			if s := b.crl.synced.Load(); s != 0 {
				age = now.Sub(time.Unix(0, s)).Seconds()
			}
			b.metrics.get().crlAge.WithLabelValues(b.cfg.Vendor).Set(age)
			b.updateReady(ctx, age) // before the backlog, which waits out a Redis that is gone
			b.updateBacklog(ctx)
		}
	}
}

func (b *backend) updateBacklog(ctx context.Context) {
	cmds, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, mode := range reportModes {
			for _, s := range b.ks.streams(mode) {
				p.XLen(ctx, s)
			}
		}
		return nil
	})
	if err != nil {
		return
	}
	var n int64
	for _, c := range cmds {
		n += c.(*redis.IntCmd).Val()
	}
	b.metrics.get().backlog.WithLabelValues(b.cfg.Vendor).Set(float64(n))
}
