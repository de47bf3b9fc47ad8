package paywall

import (
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

	// reportLinger is how long almost_online waits after a first claim for
	// others to share its report: a burst becomes one report, and a single
	// claim still reaches the agent far inside its second.
	reportLinger = 50 * time.Millisecond

	// shippers bounds the reports of one stream in flight at once: a slow
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

// report ships the claims of one stream to the agent, at least once: an
// entry is acknowledged and deleted only once the agent answered 200 with
// a result for its very claim, and entries left pending (by a dead
// gateway, or without a result) are reclaimed once idle for reclaimIdle.
// interval 0 ships as claims arrive (almost_online); otherwise every
// interval (batch).
func (b *backend) report(ctx context.Context, stream string, interval time.Duration) {
	mode := ModeAlmostOnline
	if interval > 0 {
		mode = ModeBatch
	}
	for ctx.Err() == nil {
		if err := b.rdb.XGroupCreateMkStream(ctx, stream, reportGroup, "0").Err(); err != nil &&
			!strings.Contains(err.Error(), "BUSYGROUP") {
			b.log.Warn("creating the report group", zapErr(err))
			sleep(ctx, maxBackoff)
			continue
		}
		break
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
		var msgs []redis.XMessage
		var err error
		idle := time.Duration(b.reclaimIdle.Load())
		if time.Since(lastReclaim) >= idle/4 {
			lastReclaim = time.Now()
			msgs, _, err = b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: stream, Group: reportGroup, Consumer: consumerName,
				MinIdle: idle, Start: "0-0", Count: reportBatch,
			}).Result()
		}
		if err == nil && len(msgs) == 0 {
			block := idle / 4 // no longer, so that the reclaim above runs on time
			if interval > 0 {
				block = -1 // no BLOCK: the batch worker sleeps instead
			}
			var res []redis.XStream
			res, err = b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: reportGroup, Consumer: consumerName, Streams: []string{stream, ">"},
				Count: reportBatch, Block: block,
			}).Result()
			if errors.Is(err, redis.Nil) {
				err = nil
			}
			if len(res) > 0 {
				msgs = res[0].Messages
			}
			if err == nil && interval == 0 && len(msgs) > 0 && len(msgs) < reportBatch {
				msgs = b.linger(ctx, stream, msgs)
			}
		}
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return
			}
			if strings.Contains(err.Error(), "NOGROUP") {
				// The stream was deleted (e.g. Redis lost its data): recreate.
				_ = b.rdb.XGroupCreateMkStream(ctx, stream, reportGroup, "0").Err()
			}
			b.log.Warn("reading claims", zap.String("stream", stream), zapErr(err))
			sleep(ctx, maxBackoff)
			continue
		}
		if len(msgs) > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				b.deliver(ctx, stream, mode, msgs)
			}()
		} else {
			<-slots
		}
		if interval > 0 && len(msgs) < reportBatch {
			sleep(ctx, interval)
		}
	}
}

// linger waits reportLinger, then adds the claims that came meanwhile to
// msgs, up to a full report. If that read fails, msgs go alone: they are
// this consumer's already.
func (b *backend) linger(ctx context.Context, stream string, msgs []redis.XMessage) []redis.XMessage {
	sleep(ctx, reportLinger)
	res, _ := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: reportGroup, Consumer: consumerName, Streams: []string{stream, ">"},
		Count: int64(reportBatch - len(msgs)), Block: -1,
	}).Result()
	if len(res) > 0 {
		msgs = append(msgs, res[0].Messages...)
	}
	return msgs
}

// deliver ships msgs until the agent has taken them, keeping them this
// gateway's meanwhile (for up to holdLimit), then gives up: what is left is
// reclaimed once idle, by this gateway or another.
func (b *backend) deliver(ctx context.Context, stream, mode string, msgs []redis.XMessage) {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	hold, stop := context.WithTimeout(ctx, holdLimit)
	defer stop()
	go b.heartbeat(hold, stream, ids)
	batch := batchID(stream, msgs)
	timeout := reportTimeout
	for backoff := minBackoff; hold.Err() == nil; backoff = min(2*backoff, maxBackoff) {
		attempt, cancel := context.WithTimeout(ctx, timeout)
		err := b.ship(attempt, stream, mode, batch, msgs)
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
				zap.String("batch", batch), zap.Int("claims", len(msgs)))
			batch = freshBatchID(batch)
			continue
		}
		b.log.Warn("reporting claims", zap.Int("claims", len(msgs)), zapErr(err))
		sleep(hold, backoff)
	}
}

// heartbeat resets the idle time of ids, this gateway's until ctx ends,
// every quarter of reclaimIdle.
func (b *backend) heartbeat(ctx context.Context, stream string, ids []string) {
	for ctx.Err() == nil {
		sleep(ctx, time.Duration(b.reclaimIdle.Load())/4)
		if ctx.Err() != nil {
			return
		}
		_ = b.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: stream, Group: reportGroup, Consumer: consumerName, MinIdle: 0, Messages: ids,
		}).Err()
	}
}

// batchID names a report by everything it ships: the stream, and each
// entry's id and claim. A redelivery of the same entries is the same
// batch, and no two different sets of claims a vendor ships share an id,
// whichever stream, millisecond or gateway they come from (the entry ids
// of two streams collide; the authorization numbers in the claims do not).
// The "r-" prefix keeps these ids apart from the earlier "b-" ones.
func batchID(stream string, msgs []redis.XMessage) string {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(stream)
	for _, m := range msgs {
		raw, _ := m.Values["c"].(string)
		field(m.ID)
		field(raw)
	}
	return "r-" + hex.EncodeToString(h.Sum(nil))[:40]
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
func (b *backend) ship(ctx context.Context, stream, mode, batch string, msgs []redis.XMessage) error {
	rep := &payword.Report{Vendor: b.cfg.Vendor, Batch: batch, Claims: make([]payword.Claim, 0, len(msgs))}
	byAuth := make(map[string][]int, len(msgs)) // authorization number → indices in msgs
	var unreadable []string
	for i, m := range msgs {
		raw, _ := m.Values["c"].(string)
		var c payword.Claim
		if err := json.Unmarshal([]byte(raw), &c); err != nil || !payword.ValidID(c.Auth) {
			// Cannot happen for entries the accept script wrote; keep the
			// entry in the stream for an operator, but do not block the rest.
			b.log.Error("unreadable claim left in the stream", zap.String("id", m.ID))
			unreadable = append(unreadable, m.ID)
			continue
		}
		rep.Claims = append(rep.Claims, c)
		byAuth[c.Auth] = append(byAuth[c.Auth], i)
	}
	var done []string
	if len(rep.Claims) > 0 {
		out, err := b.agent.Report(ctx, rep)
		if err != nil {
			return err
		}
		if out.Batch != batch {
			return fmt.Errorf("the agent answered for batch %q, not %q", out.Batch, batch)
		}
		now, m := time.Now(), b.metrics.get()
		checked := make([]bool, len(msgs))
		for _, r := range out.Results {
			if !r.Verdict.Known() {
				continue
			}
			for _, i := range byAuth[r.Auth] {
				if !checked[i] {
					checked[i] = true
					done = append(done, msgs[i].ID)
					m.reports.WithLabelValues(string(r.Verdict)).Inc()
					if at, ok := entryTime(msgs[i].ID); ok {
						m.delivery.WithLabelValues(b.cfg.Vendor, mode).Observe(max(0, now.Sub(at).Seconds()))
					}
				}
			}
			if r.Verdict == agentapi.VerdictVendorFraud || r.Verdict == agentapi.VerdictInvalid || r.Verdict == agentapi.VerdictUnknownCertificate {
				b.log.Error("agent refused a claim", zap.String("auth", r.Auth), zap.String("verdict", string(r.Verdict)))
			}
		}
		if missing := len(rep.Claims) - len(done); missing > 0 {
			// A result missing or not for our claim: those entries stay
			// pending and go again, in another report.
			m.reports.WithLabelValues("unanswered").Add(float64(missing))
			b.log.Error("the agent's answer lacks results for some claims: they stay queued",
				zap.String("batch", batch), zap.Int("claims", len(rep.Claims)), zap.Int("unanswered", missing))
		}
	}
	// Acknowledged and deleted together; unreadable entries are only
	// acknowledged, and so kept out of the way.
	if len(done)+len(unreadable) == 0 {
		return nil
	}
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if acked := append(append([]string(nil), done...), unreadable...); len(acked) > 0 {
			p.XAck(ctx, stream, reportGroup, acked...)
		}
		if len(done) > 0 {
			p.XDel(ctx, stream, done...)
		}
		return nil
	})
	return err
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
	now, err1 := b.rdb.XLen(ctx, b.ks.stream(ModeAlmostOnline)).Result()
	batch, err2 := b.rdb.XLen(ctx, b.ks.stream(ModeBatch)).Result()
	if err1 == nil && err2 == nil {
		b.metrics.get().backlog.WithLabelValues(b.cfg.Vendor).Set(float64(now + batch))
	}
}
