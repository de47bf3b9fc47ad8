package paywall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// reportGroup is the consumer group of the report streams; every gateway of
// a vendor joins it, so each claim is shipped by one of them.
const (
	reportGroup = "reporters"
	reportBatch = 500 // claims per report, well under payword.MaxReportClaims and MaxReportSize
	maxBackoff  = time.Minute
	// reportLinger is how long almost_online waits after a first claim for
	// others to share its report: far inside the second it promises, it
	// keeps the agent round trip out of the way of the paid page being
	// served and makes one report of a burst.
	reportLinger = 150 * time.Millisecond
)

// consumerName identifies this process in the group.
var consumerName = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())
}()

// report ships the claims of one stream to the agent, at least once: an
// entry is acknowledged and deleted only after the agent's 200, and entries
// left pending by a crashed gateway are reclaimed after reclaimIdle.
// interval 0 ships as claims arrive (almost_online); otherwise every
// interval (batch).
func (b *backend) report(ctx context.Context, stream string, interval time.Duration) {
	backoff := time.Second
	lastReclaim := time.Time{}
	for ctx.Err() == nil {
		if err := b.rdb.XGroupCreateMkStream(ctx, stream, reportGroup, "0").Err(); err != nil &&
			!strings.Contains(err.Error(), "BUSYGROUP") {
			b.log.Warn("creating the report group", zapErr(err))
			sleep(ctx, backoff)
			continue
		}
		break
	}
	for ctx.Err() == nil {
		var msgs []redis.XMessage
		var err error
		idle := time.Duration(b.reclaimIdle.Load())
		if time.Since(lastReclaim) >= idle/2 {
			lastReclaim = time.Now()
			msgs, _, err = b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: stream, Group: reportGroup, Consumer: consumerName,
				MinIdle: idle, Start: "0-0", Count: reportBatch,
			}).Result()
		}
		if err == nil && len(msgs) == 0 {
			block := time.Second
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
			if ctx.Err() != nil {
				return
			}
			if strings.Contains(err.Error(), "NOGROUP") {
				// The stream was deleted (e.g. Redis lost its data): recreate.
				_ = b.rdb.XGroupCreateMkStream(ctx, stream, reportGroup, "0").Err()
			}
			b.log.Warn("reading claims", zap.String("stream", stream), zapErr(err))
			sleep(ctx, backoff)
			continue
		}
		if len(msgs) > 0 {
			// The same entries are retried as the same batch until the agent
			// takes them, so a lost answer is a duplicate at the agent.
			for backoff = time.Second; ctx.Err() == nil; backoff = min(2*backoff, maxBackoff) {
				if err := b.ship(ctx, stream, msgs); err == nil {
					break
				} else {
					b.log.Warn("reporting claims", zap.Int("claims", len(msgs)), zapErr(err))
				}
				sleep(ctx, backoff)
			}
			backoff = time.Second
		}
		b.updateBacklog(ctx)
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

// batchID derives the report's id from its entry ids: a redelivery of the
// same entries is the same batch.
func batchID(msgs []redis.XMessage) string {
	h := sha256.New()
	for _, m := range msgs {
		h.Write([]byte(m.ID))
		h.Write([]byte{0})
	}
	return "b-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// ship sends one batch and, on the agent's 200, acknowledges and deletes
// its entries.
func (b *backend) ship(ctx context.Context, stream string, msgs []redis.XMessage) error {
	rep := &payword.Report{Vendor: b.cfg.Vendor, Batch: batchID(msgs), Claims: make([]payword.Claim, 0, len(msgs))}
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.ID)
		raw, _ := m.Values["c"].(string)
		var c payword.Claim
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			// Cannot happen for entries the accept script wrote; keep the
			// entry in the stream for an operator, but do not block the rest.
			b.log.Error("unreadable claim left in the stream", zap.String("id", m.ID))
			continue
		}
		rep.Claims = append(rep.Claims, c)
	}
	if len(rep.Claims) > 0 {
		results, err := b.agent.report(ctx, rep)
		if err != nil {
			return err
		}
		for _, r := range results {
			reportsTotal.WithLabelValues(verdictLabel(r.Verdict)).Inc()
			if r.Verdict == "vendor_fraud" || r.Verdict == "invalid" || r.Verdict == "unknown_certificate" {
				b.log.Error("agent refused a claim", zap.String("auth", r.Auth), zap.String("verdict", r.Verdict))
			}
		}
	}
	if err := b.rdb.XAck(ctx, stream, reportGroup, ids...).Err(); err != nil {
		return err
	}
	delIDs := ids[:0]
	for _, m := range msgs {
		if _, ok := m.Values["c"].(string); ok {
			delIDs = append(delIDs, m.ID)
		}
	}
	if len(delIDs) > 0 {
		return b.rdb.XDel(ctx, stream, delIDs...).Err()
	}
	return nil
}

// verdictLabel keeps the metric's label set bounded.
func verdictLabel(v string) string {
	switch v {
	case "paid", "duplicate", "vendor_fraud", "invalid", "double_spend", "unknown_certificate":
		return v
	}
	return "other"
}

func (b *backend) updateBacklog(ctx context.Context) {
	now, err1 := b.rdb.XLen(ctx, b.ks.stream(ModeAlmostOnline)).Result()
	batch, err2 := b.rdb.XLen(ctx, b.ks.stream(ModeBatch)).Result()
	if err1 == nil && err2 == nil {
		reportBacklog.WithLabelValues(b.cfg.Vendor).Set(float64(now + batch))
	}
}
