package agent

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/redisurl"
)

// checkDurable fails unless every Redis master the agent writes to fsyncs
// each write before replying (appendonly yes, appendfsync always): the
// agent answers a report, a purchase or a credit only after its script's
// reply, so that reply must mean "on disk". See redisurl.CheckDurable for
// why everysec is not enough.
func checkDurable(ctx context.Context, rdb redis.UniversalClient) error {
	return redisurl.CheckDurable(ctx, rdb)
}
