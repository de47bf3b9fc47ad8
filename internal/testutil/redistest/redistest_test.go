package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// do sends one command (see send) and fails the test on an error.
func do(t *testing.T, addr string, args ...string) string {
	t.Helper()
	r, err := send(addr, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
	return r
}

func TestStartPingStop(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:port", s.Addr())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("URL() = %q, want %q", s.URL(), want)
	}
	if _, err := serverPID(s.Addr()); err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	if got := do(t, s.Addr(), "SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}

	s.Stop()
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("dial after Stop succeeded, want connection refused")
	}
	s.Stop() // idempotent
	s.Kill()
}

func TestAOFSurvivesKill(t *testing.T) {
	t.Parallel()
	s := Start(t, WithAOF())
	if got := do(t, s.Addr(), "SET", "chain:42", "tip-value"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	addr := s.Addr()

	s.Kill()
	s.Kill() // idempotent
	s.Restart()

	if s.Addr() != addr {
		t.Fatalf("Restart moved server from %s to %s", addr, s.Addr())
	}
	if got := do(t, s.Addr(), "GET", "chain:42"); got != "tip-value" {
		t.Fatalf("GET after Kill+Restart = %q, want %q", got, "tip-value")
	}
}

func TestWithoutAOFDataIsLost(t *testing.T) {
	t.Parallel()
	s := Start(t, WithoutAOF(), WithArgs("--maxmemory", "16mb"))
	if got := do(t, s.Addr(), "CONFIG", "GET", "maxmemory"); got != "*2" {
		// Array reply; just make sure the command was accepted.
		t.Fatalf("CONFIG GET = %q", got)
	}
	do(t, s.Addr(), "SET", "k", "v")
	s.Restart() // running server: Restart stops it first
	if got := do(t, s.Addr(), "GET", "k"); got != "$-1" {
		t.Fatalf("GET after restart without persistence = %q, want nil", got)
	}
}

// recordTB captures Skip/Fatal instead of ending the real test, so we can
// check what Start does when redis-server is missing.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Helper()           {}
func (r *recordTB) Skip(args ...any)  { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *recordTB) Fatal(args ...any) { r.failed = fmt.Sprint(args...); runtime.Goexit() }
func (r *recordTB) Fatalf(format string, a ...any) {
	r.failed = fmt.Sprintf(format, a...)
	runtime.Goexit()
}
func (r *recordTB) Skipf(format string, a ...any) {
	r.skipped = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func startMissing(t *testing.T, ci string) *recordTB {
	t.Setenv("PATH", t.TempDir()) // no redis-server here
	t.Setenv("CI", ci)
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r)
		t.Error("Start returned without skipping or failing")
	}()
	<-done
	return r
}

func TestMissingBinarySkipsLocally(t *testing.T) {
	r := startMissing(t, "")
	if r.failed != "" || !strings.Contains(r.skipped, "redis-server not installed") {
		t.Fatalf("skipped=%q failed=%q, want skip", r.skipped, r.failed)
	}
}

func TestMissingBinaryFailsInCI(t *testing.T) {
	r := startMissing(t, "true")
	if r.skipped != "" || !strings.Contains(r.failed, "CI") {
		t.Fatalf("skipped=%q failed=%q, want fatal", r.skipped, r.failed)
	}
}

func TestBadArgsFailTheTest(t *testing.T) {
	t.Parallel()
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r, WithArgs("--no-such-option", "x"))
		t.Error("Start returned despite invalid arguments")
	}()
	<-done
	if !strings.Contains(r.failed, "exited during startup") {
		t.Fatalf("failed=%q, want startup failure", r.failed)
	}
}

// TestOtherServerOnPortIsNotOurs: when another test's redis-server took the
// port between freePort and our bind, its answer must not pass for ours
// (two tests would share one store).
func TestOtherServerOnPortIsNotOurs(t *testing.T) {
	t.Parallel()
	s := Start(t)
	err := waitPong(s.Addr(), os.Getpid(), make(chan struct{}), time.Second)
	if !errors.Is(err, errOtherServer) {
		t.Fatalf("waitPong for another pid: %v, want errOtherServer", err)
	}
}
