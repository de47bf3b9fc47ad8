package redisurl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated means a write reached the master but fewer replicas
// than required acknowledged it in time: a failover may lose it, or keep
// it. The caller answers "unavailable"; a repeat of the same idempotent
// request is answered once its write is acknowledged.
var ErrNotReplicated = errors.New("redis: write not acknowledged by enough replicas")

// Replication is how many replicas must hold a write before Hashwall
// acknowledges it, and how long to wait for them.
//
// Replication is asynchronous: a master answers a write before its
// replicas have it, so a failover to a replica that had not received it
// loses a write already acknowledged (an accepted payment without its
// claim, a token spendable again). WAIT numreplicas timeout, sent after the
// write on the same connection, returns once that many replicas have
// acknowledged everything the connection wrote. (WAITAOF, which also waits
// for their fsync, exists from Redis 7.2; WAIT is enough here because a
// replica that holds the write in memory and is promoted serves it, and
// appendfsync always on every server, which Hashwall checks on the master,
// makes each answer mean "on disk".)
type Replication struct {
	Replicas int           // replicas that must acknowledge; 0: do not wait
	Timeout  time.Duration // how long to wait for them
}

// Bounds and defaults of a Replication's settings.
const (
	MaxReplicas           = 16
	DefaultReplicaTimeout = 500 * time.Millisecond
	// MaxReplicaTimeout stays under the 2 s that a payment and every
	// Redis command may take (Timeout).
	MaxReplicaTimeout = time.Second
)

// NewReplication resolves configured settings for rdb: replicas 0 is the
// default (DefaultReplicas), -1 none; timeout 0 is DefaultReplicaTimeout.
func NewReplication(rdb redis.UniversalClient, replicas int, timeout time.Duration) Replication {
	switch {
	case replicas == 0:
		replicas = DefaultReplicas(rdb)
	case replicas < 0:
		replicas = 0
	}
	if timeout == 0 {
		timeout = DefaultReplicaTimeout
	}
	return Replication{Replicas: replicas, Timeout: timeout}
}

// CheckReplication checks configured settings (see NewReplication).
func CheckReplication(replicas int, timeout time.Duration) error {
	if replicas < -1 || replicas > MaxReplicas {
		return fmt.Errorf("replicas %d must be -1 (none) or 1..%d (0: the default)", replicas, MaxReplicas)
	}
	if timeout < 0 || timeout > 0 && timeout < time.Millisecond || timeout > MaxReplicaTimeout {
		return fmt.Errorf("replica_timeout %v must be 1ms..%v", timeout, MaxReplicaTimeout)
	}
	return nil
}

// DefaultReplicas is 1 behind Sentinel, whose failover promotes a replica,
// and 0 otherwise (one server has no replica to lose writes to; a
// Cluster's replicas are waited for when configured).
func DefaultReplicas(rdb redis.UniversalClient) int {
	// go-redis names the master's connection pool of a Sentinel client so.
	if c, ok := rdb.(*redis.Client); ok && c.Options().Addr == "FailoverClient" {
		return 1
	}
	return 0
}

// Run runs script s like s.Run, then waits for the replicas: its error is
// ErrNotReplicated (with the script's reply still in the Cmd) when they do
// not all acknowledge in time.
func (r Replication) Run(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	if r.Replicas == 0 {
		return s.Run(ctx, rdb, keys, args...)
	}
	key := ""
	if len(keys) > 0 {
		key = keys[0]
	}
	var cmd *redis.Cmd
	err := r.Pipelined(ctx, rdb, key, func(p redis.Pipeliner) { cmd = s.EvalSha(ctx, p, keys, args...) })
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		// Scripts are not replicated: a promoted replica has none yet.
		err = r.Pipelined(ctx, rdb, key, func(p redis.Pipeliner) { cmd = s.Eval(ctx, p, keys, args...) })
	}
	if err != nil && cmd.Err() == nil {
		cmd.SetErr(err)
	}
	return cmd
}

// Pipelined sends fn's commands in one pipeline and, when r waits for
// replicas, on the same connection a write that follows everything the
// master holds, then WAIT. That write is what makes an idempotent repeat
// safe: its script only reads the record an earlier request wrote, perhaps
// on another connection, and WAIT covers only what its own connection wrote
// (Redis 7.2 and later do not count reads). On a Cluster the pipeline then
// goes to the master of key's slot, which must hold all of fn's keys. It
// returns ErrNotReplicated, WAIT's or the extra write's error, or nil; the
// errors of fn's commands are theirs.
func (r Replication) Pipelined(ctx context.Context, rdb redis.UniversalClient, key string, fn func(redis.Pipeliner)) error {
	if r.Replicas == 0 {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { fn(p); return nil })
		return err
	}
	var c redis.Cmdable = rdb
	cc, cluster := rdb.(*redis.ClusterClient)
	if cluster {
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return err
		}
		c = node
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout+r.Timeout)
		defer cancel()
	}
	var mark redis.Cmder
	var wait *redis.Cmd
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		if cluster {
			// Cluster nodes send PUBLISH over the bus, not the replication
			// stream: write a short-lived key of key's slot.
			mark = p.Set(ctx, "hw:ack:{"+hashTag(key)+"}", "", time.Second)
		} else {
			mark = p.Publish(ctx, "hw:ack", "") // replicated, never in the AOF
		}
		wait = p.Do(ctx, "wait", r.Replicas, r.Timeout.Milliseconds())
		return nil
	})
	if err := mark.Err(); err != nil {
		return err
	}
	n, err := wait.Int64()
	if err != nil {
		return err
	}
	if int(n) < r.Replicas {
		return fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, n, r.Replicas, r.Timeout)
	}
	return nil
}

// hashTag is the part of key that Redis Cluster hashes: the text between
// the first { and the next }, if not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}
