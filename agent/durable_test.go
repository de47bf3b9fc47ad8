package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// TestRefusesEverysec: under appendfsync everysec Redis may answer a write
// it has not yet written (it postpones the write while a background fsync
// runs), so a report answered 200 could vanish in a crash. The agent
// refuses such a store unless Ephemeral, and starts on `always`.
func TestRefusesEverysec(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"everysec", "no", "always"} {
		srv := redistest.Start(t, redistest.WithArgs("--appendfsync", policy))
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		cfg := testConfig(rdb, &clock{t: time.Now()})
		cfg.Ephemeral = false
		_, err := New(context.Background(), cfg)
		if policy == "always" {
			if err != nil {
				t.Fatalf("always refused: %v", err)
			}
		} else if !errors.Is(err, redisurl.ErrNotDurable) {
			t.Fatalf("appendfsync %s: %v, want a refusal", policy, err)
		}
		cfg.Ephemeral = true
		if _, err := New(context.Background(), cfg); err != nil {
			t.Fatalf("appendfsync %s with Ephemeral: %v", policy, err)
		}
		rdb.Close()
	}
}
