package agent

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Recovery defaults. A gateway ships batch-mode claims at most every
// MaxBatchInterval (caddymodule/paywall refuses longer), so the default
// window leaves as much again for retries of a failed delivery.
const (
	DefaultReportWindow = 10 * time.Minute
	DefaultRecoverEvery = time.Hour
	// MaxBatchInterval is the longest batch_interval a gateway accepts; an
	// agent's ReportWindow must be longer (it should be twice as long).
	MaxBatchInterval = 5 * time.Minute
)

// applyRecoveredFor credits the user's recovery credit that is due and
// returns what is still pending and when it is next due (Unix seconds, 0 if
// nothing is pending).
func (a *Agent) applyRecoveredFor(ctx context.Context, uid string) (pending, next int64, err error) {
	res, err := a.run(ctx, applyRecovered, uid, a.now().Unix()).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if res[0] > 0 {
		a.log.Info("recovery credited", zap.String("user", uid), zap.Int64("value", res[0]))
	}
	return res[1], res[2], nil
}

// CreditRecovered credits every recovery credit whose report window has
// ended; reads and purchases of the account also do it first, so the loop
// only bounds how late an idle account sees it. It returns the users
// credited and the value.
func (a *Agent) CreditRecovered(ctx context.Context) (int, int64, error) {
	var users int
	var total int64
	for {
		uids, err := a.rdb.ZRangeByScore(ctx, a.prefix+"rpend", &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(a.now().Unix(), 10), Count: 500,
		}).Result()
		if err != nil || len(uids) == 0 {
			return users, total, err
		}
		for _, uid := range uids {
			res, err := a.run(ctx, applyRecovered, uid, a.now().Unix()).Int64Slice()
			if err != nil {
				return users, total, err
			}
			if res[0] > 0 {
				users++
				total += res[0]
			}
		}
	}
}

// RecoverInterval is how often a loop should run CreditRecovered: a tenth
// of the window, between 1s and 1m.
func (a *Agent) RecoverInterval() time.Duration {
	return min(max(time.Duration(a.cfg.ReportWindow)/10, time.Second), time.Minute)
}
