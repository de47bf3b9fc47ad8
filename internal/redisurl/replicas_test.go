package redisurl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// TestReplicationDefaults: one replica behind Sentinel, none otherwise;
// -1 is none; the checks bound both settings.
func TestReplicationDefaults(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]int{
		"redis://127.0.0.1:6379/0": 0,
		"redis-sentinel://127.0.0.1:26379/0?master_name=m&addr=127.0.0.2:26379": 1,
		"redis-cluster://127.0.0.1:7000?addr=127.0.0.1:7001":                    0,
	} {
		c, err := New(url)
		if err != nil {
			t.Fatal(err)
		}
		if got := NewReplication(c, 0, 0); got != (Replication{Replicas: want, Timeout: DefaultReplicaTimeout}) {
			t.Errorf("%s: %+v", url, got)
		}
		if got := NewReplication(c, -1, time.Second); got != (Replication{Timeout: time.Second}) {
			t.Errorf("%s with -1: %+v", url, got)
		}
		c.Close()
	}
	for _, ok := range [][2]int64{{-1, 0}, {0, 0}, {1, int64(time.Millisecond)}, {MaxReplicas, int64(MaxReplicaTimeout)}} {
		if err := CheckReplication(int(ok[0]), time.Duration(ok[1])); err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}
	for _, bad := range [][2]int64{{-2, 0}, {MaxReplicas + 1, 0}, {1, -1}, {1, int64(time.Microsecond)}, {1, int64(2 * time.Second)}} {
		if CheckReplication(int(bad[0]), time.Duration(bad[1])) == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if hashTag("hw:g:{daily}:s:1") != "daily" || hashTag("a{}b") != "a{}b" || hashTag("plain") != "plain" {
		t.Error("hashTag")
	}
}

// TestReplicationWaits: behind Sentinel a script is acknowledged once the
// replica holds its write; with the replica's stream paused (CLIENT PAUSE
// WRITE) the script runs on the primary but Run fails with
// ErrNotReplicated, and so does a script that only reads what was written
// (an idempotent repeat), until the replica catches up. Without replicas
// the same script succeeds at once.
func TestReplicationWaits(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t, 1)
	rdb, err := New(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	rep := NewReplication(rdb, 0, 200*time.Millisecond)
	set := redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1]) return 1`)
	get := redis.NewScript(`return redis.call('GET', KEYS[1])`)
	if err := rep.Run(ctx, rdb, set, []string{"k"}, "1").Err(); err != nil {
		t.Fatalf("replicated write: %v", err)
	}
	replica := s.Servers()[1]
	if r, _ := redistest.Command(replica.Addr(), "GET", "k"); len(r) != 1 || r[0] != "1" {
		t.Fatalf("acknowledged, but the replica holds %q", r)
	}

	if _, err := redistest.Command(replica.Addr(), "CLIENT", "PAUSE", "5000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	cmd := rep.Run(ctx, rdb, set, []string{"k"}, "2")
	if !errors.Is(cmd.Err(), ErrNotReplicated) {
		t.Fatalf("write with the replica paused: %v", cmd.Err())
	}
	if v, _ := rdb.Get(ctx, "k").Result(); v != "2" {
		t.Fatalf("the primary holds %q", v)
	}
	if err := rep.Run(ctx, rdb, get, []string{"k"}).Err(); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("a read of the unreplicated write was acknowledged: %v", err)
	}
	if err := (Replication{}).Run(ctx, rdb, set, []string{"k"}, "3").Err(); err != nil {
		t.Fatalf("without replicas: %v", err)
	}
	if _, err := redistest.Command(replica.Addr(), "CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}
	if v, err := rep.Run(ctx, rdb, get, []string{"k"}).Text(); err != nil || v != "3" {
		t.Fatalf("after the replica caught up: %q %v", v, err)
	}

	// A promoted replica has no scripts loaded: Run falls back to EVAL.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rep.Run(ctx, rdb, set, []string{"k"}, "4").Err(); err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v", err)
	}
}
