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
	"errors"
	"fmt"
	"net/url"
	"strings"

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
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("redisurl: %w", err)
		}
		if o.MasterName == "" {
			return nil, errors.New("redisurl: a sentinel URL needs ?master_name=")
		}
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("redisurl: %w", err)
		}
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("redisurl: unsupported scheme %q", u.Scheme)
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
