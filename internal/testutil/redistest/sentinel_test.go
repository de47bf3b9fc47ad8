package redistest

import (
	"testing"
	"time"
)

// TestSentinelFailover: a write on the primary reaches the replica; after
// the primary is killed the Sentinels promote the replica, which has the
// write, within seconds; the old primary, restarted, rejoins as a replica
// of the new one.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := StartSentinel(t, 1)
	old := s.Primary()
	if old != s.Servers()[0] {
		t.Fatalf("primary %s, want the first server", old.Addr())
	}
	if _, err := Command(old.Addr(), "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if r, err := Command(old.Addr(), "WAIT", "1", "1000"); err != nil || r[0] != "1" {
		t.Fatalf("WAIT: %q %v", r, err)
	}
	start := time.Now()
	s.KillPrimary()
	p := s.WaitPromotion(old, 10*time.Second)
	promoted := time.Since(start)
	if p != s.Servers()[1] {
		t.Fatalf("promoted %s", p.Addr())
	}
	if r, err := Command(p.Addr(), "GET", "k"); err != nil || len(r) != 1 || r[0] != "v" {
		t.Fatalf("new primary holds %q (%v)", r, err)
	}
	old.Restart()
	s.WaitReplicas(1, 10*time.Second)
	t.Logf("promoted in %v, old primary back as a replica %v after the kill", promoted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if role := infoField(old.Addr(), "replication", "role"); role != "slave" {
		t.Fatalf("old primary is %q", role)
	}
	if promoted > 5*time.Second {
		t.Fatalf("promotion took %v", promoted)
	}
}
