// Package redisurl turns one URL into a go-redis client for a single server,
// a Sentinel-managed master or a Cluster, so every Hashwall component takes
// the same `redis` setting:
//
//	redis://[user:pass@]host:6379/0          single server (rediss:// for TLS, unix:///path)
//	redis-sentinel://[s-user:s-pass@]host:26379/0?master_name=mymaster&addr=host2:26379&password=…
//	redis-cluster://[user:pass@]host:7000?addr=host2:7000&addr=host3:7000
//
// Query parameters are go-redis's (ParseURL, ParseFailoverURL, ParseClusterURL).
package redisurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// New returns a client for rawURL. It does not connect.
func New(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redisurl: %w", err)
	}
	base, kind, _ := strings.Cut(u.Scheme, "-")
	if base != "redis" && base != "rediss" && u.Scheme != "unix" {
		return nil, fmt.Errorf("redisurl: unsupported scheme %q", u.Scheme)
	}
	plain := *u
	plain.Scheme = base
	switch kind {
	case "":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisurl: %w", err)
		}
		o.ContextTimeoutEnabled = true
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = timeouts(o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
		return withBudget(redis.NewClient(o), o.ReadTimeout), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("redisurl: %w", err)
		}
		if o.MasterName == "" {
			return nil, errors.New("redisurl: a sentinel URL needs ?master_name=")
		}
		o.ContextTimeoutEnabled = true
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = timeouts(o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
		return withBudget(redis.NewFailoverClient(o), o.ReadTimeout), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("redisurl: %w", err)
		}
		o.ContextTimeoutEnabled = true
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = timeouts(o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
		return withBudget(redis.NewClusterClient(o), o.ReadTimeout), nil
	}
	return nil, fmt.Errorf("redisurl: unsupported scheme %q", u.Scheme)
}

// Timeout bounds each command or pipeline of every client New builds,
// retries included, unless the URL sets read_timeout (which then is the
// bound; dial_timeout and write_timeout likewise): a stalled store must turn
// into an error (503) at once, not after go-redis's default 5 s per attempt
// times its retries. Clients also honour their callers' context deadlines
// (ContextTimeoutEnabled; go-redis ignores them otherwise), so a shorter
// deadline, such as the gateway's per-payment one, wins. Blocking commands
// (XREADGROUP … BLOCK, BLPOP, WAIT) get their block time on top, as
// go-redis gives them.
const Timeout = 2 * time.Second

// budget gives each command or pipeline called without a deadline one of
// d, so that go-redis's retries on timeouts cannot multiply it.
type budget time.Duration

func withBudget[C interface{ AddHook(redis.Hook) }](c C, d time.Duration) C {
	c.AddHook(budget(d))
	return c
}

func (budget) DialHook(next redis.DialHook) redis.DialHook { return next }

func (b budget) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if _, ok := ctx.Deadline(); ok || blocking(cmd) {
			return next(ctx, cmd)
		}
		ctx, cancel := context.WithTimeout(ctx, time.Duration(b))
		defer cancel()
		return next(ctx, cmd)
	}
}

func (b budget) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if _, ok := ctx.Deadline(); ok {
			return next(ctx, cmds)
		}
		for _, c := range cmds {
			if blocking(c) {
				return next(ctx, cmds)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, time.Duration(b))
		defer cancel()
		return next(ctx, cmds)
	}
}

// blocking reports whether cmd may wait on the server by design.
func blocking(cmd redis.Cmder) bool {
	switch name := cmd.Name(); name {
	case "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop",
		"wait", "waitaof", "subscribe", "psubscribe", "ssubscribe":
		return true
	case "xread", "xreadgroup":
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && strings.EqualFold(s, "block") {
				return true
			}
		}
	}
	return false
}

func timeouts(dial, read, write time.Duration) (time.Duration, time.Duration, time.Duration) {
	if dial == 0 {
		dial = Timeout
	}
	if read == 0 {
		read = Timeout
	}
	if write == 0 {
		write = read
	}
	return dial, read, write
}

// Redact returns rawURL without its passwords, for logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable redis URL)"
	}
	q := u.Query()
	for _, k := range []string{"password", "sentinel_password"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}
