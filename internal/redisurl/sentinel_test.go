package redisurl

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// TestSentinel runs a real Sentinel watching a real master and checks that
// a redis-sentinel:// URL reaches the master through it.
func TestSentinel(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	host, mport, _ := net.SplitHostPort(master.Addr())
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nsentinel monitor hw %s %s 1\n", port, dir, host, mport)), 0o600)
	cmd := exec.Command(bin, conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	cl, err := New(fmt.Sprintf("redis-sentinel://127.0.0.1:%d/0?master_name=hw", port))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		err = cl.Set(ctx, "hw:test", "via-sentinel", 0).Err()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("through sentinel: %v", err)
	}
	direct, _ := New(master.URL())
	defer direct.Close()
	if v, _ := direct.Get(ctx, "hw:test").Result(); v != "via-sentinel" {
		t.Fatalf("master holds %q", v)
	}
}
