package redisurl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrNotDurable means a Redis server may lose writes it has acknowledged.
var ErrNotDurable = errors.New("redis may lose acknowledged writes")

// CheckDurable fails unless every master behind rdb (each Cluster master,
// the Sentinel-managed master, or the one server) keeps every write it has
// acknowledged through a crash of the process or the machine: the
// append-only file on with `appendfsync always`.
//
// Why `always` and not the usual `everysec`: Redis writes the AOF buffer
// and, under `always`, fsyncs it in beforeSleep before it sends any reply
// of that event-loop turn (server.c: "Write the AOF buffer on disk, must be
// done before handleClientsWithPendingWrites, in case of
// appendfsync=always"; aof.c flushAppendOnlyFile fsyncs in the main thread
// and never postpones under `always`). Under `everysec` the fsync runs in a
// background thread once a second, and while one is running Redis
// postpones even the write(2) of the buffer by up to 2 s yet still replies:
// a kill -9 in that window loses writes already answered (seen: report
// batches answered 200 and lost). A few servers (7.2+) offer WAITAOF
// instead; Hashwall does not use it, so it needs `always` on all.
//
// The policy is read with CONFIG GET. When CONFIG is disabled (managed
// services), INFO persistence still tells whether the AOF is on but not
// its fsync policy, so the check fails: a store that cannot be verified is
// not taken as durable.
func CheckDurable(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if err := checkOne(ctx, c); err != nil {
				return fmt.Errorf("cluster master %s: %w", c.Options().Addr, err)
			}
			return nil
		})
	}
	return checkOne(ctx, rdb)
}

func checkOne(ctx context.Context, c redis.Cmdable) error {
	v, cfgErr := c.ConfigGet(ctx, "append*").Result()
	if cfgErr == nil && v["appendonly"] != "" {
		if v["appendonly"] != "yes" {
			return fmt.Errorf("%w: the append-only file is off (appendonly=%s); set appendonly yes, appendfsync always",
				ErrNotDurable, v["appendonly"])
		}
		if v["appendfsync"] != "always" {
			return fmt.Errorf("%w: appendfsync=%s replies before the write is on disk; set appendfsync always",
				ErrNotDurable, v["appendfsync"])
		}
		return nil
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		if cfgErr != nil {
			err = cfgErr
		}
		return fmt.Errorf("cannot tell whether redis persists writes: %w", err)
	}
	if !strings.Contains(info, "aof_enabled:1") {
		return fmt.Errorf("%w: the append-only file is off; set appendonly yes, appendfsync always", ErrNotDurable)
	}
	return fmt.Errorf("%w: CONFIG is disabled, so appendfsync always cannot be verified", ErrNotDurable)
}
