package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// checkDurable fails unless every Redis master the agent writes to has the
// append-only file on: without it, an acknowledged purchase or credit can
// vanish in a crash. CONFIG may be disabled on managed servers; INFO
// persistence answers the same question.
func checkDurable(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return aofOn(ctx, c)
		})
	}
	return aofOn(ctx, rdb)
}

func aofOn(ctx context.Context, c redis.Cmdable) error {
	if v, err := c.ConfigGet(ctx, "appendonly").Result(); err == nil && v["appendonly"] != "" {
		if v["appendonly"] != "yes" {
			return fmt.Errorf("redis has appendonly=%s", v["appendonly"])
		}
		return nil
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return fmt.Errorf("cannot tell whether redis persists writes: %w", err)
	}
	if !strings.Contains(info, "aof_enabled:1") {
		return fmt.Errorf("redis has the append-only file off")
	}
	return nil
}
