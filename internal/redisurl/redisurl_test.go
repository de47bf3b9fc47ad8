package redisurl

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

func TestKinds(t *testing.T) {
	for _, c := range []struct {
		url  string
		want string // client type, or "error"
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client"},
		{"rediss://u:p@example.com:6380/2", "*redis.Client"},
		{"unix:///tmp/redis.sock", "*redis.Client"},
		{"redis-sentinel://127.0.0.1:26379/0?master_name=m&addr=127.0.0.2:26379", "*redis.Client"},
		{"redis-sentinel://127.0.0.1:26379/0", "error"},
		{"redis-cluster://127.0.0.1:7000?addr=127.0.0.1:7001", "*redis.ClusterClient"},
		{"http://127.0.0.1", "error"},
		{"redis-mesh://127.0.0.1", "error"},
		{"redis://127.0.0.1/x", "error"},
		{"redis://127.0.0.1/0?bogus=1", "error"},
	} {
		c := c
		t.Run(c.url, func(t *testing.T) {
			cl, err := New(c.url)
			got := "error"
			if err == nil {
				defer cl.Close()
				switch cl.(type) {
				case *redis.Client:
					got = "*redis.Client"
				case *redis.ClusterClient:
					got = "*redis.ClusterClient"
				}
			}
			if got != c.want {
				t.Fatalf("got %s (%v), want %s", got, err, c.want)
			}
		})
	}
}

func TestSingleServer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cl, err := New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRedact(t *testing.T) {
	got := Redact("redis-sentinel://s:secret1@h:26379/0?master_name=m&password=secret2")
	if strings.Contains(got, "secret") {
		t.Fatal(got)
	}
}
