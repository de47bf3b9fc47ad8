// Package redistest starts a private redis-server for a test.
//
// Tests run against a real Redis rather than an in-memory fake because the
// agent relies on Redis semantics (Lua scripts, persistence, crash recovery)
// that fakes only approximate. Each test gets its own server on its own
// loopback port and temporary directory, so tests can run in parallel and
// never see each other's data.
//
// The package deliberately speaks raw RESP for its health check so that it
// does not depend on any Redis client library.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long we wait for PONG, so a wedged server fails
	// the test instead of hanging it until the global go test timeout.
	startTimeout = 10 * time.Second
	// stopTimeout is how long a graceful SIGTERM may take before SIGKILL.
	stopTimeout = 5 * time.Second
	// portAttempts covers the race between closing the probe listener and
	// redis-server binding the port, when another process grabs it.
	portAttempts = 5
)

// Option configures the server started by Start.
type Option func(*config)

type config struct {
	noAOF bool
	disk  bool
	file  string
	args  []string
}

// By default the server runs as Hashwall requires of a production store:
// the append-only file on with fsync before every reply (appendfsync
// always), so tests can Kill it and expect acknowledged writes to survive a
// Restart, and the agent's and gateway's durability checks pass. Its data
// lives on /dev/shm when there is one: fsync is then free, and a killed
// process still loses exactly what it had not handed to the kernel, which
// is what Kill simulates (not a power cut).

// WithAOF is the default; it is kept for the tests that say so.
func WithAOF() Option {
	return func(c *config) { c.noAOF = false }
}

// WithoutAOF runs the server with no persistence at all (appendonly no,
// no RDB snapshots), the store the durability checks must refuse.
func WithoutAOF() Option {
	return func(c *config) { c.noAOF = true }
}

// WithDisk keeps the data on the test's temporary directory (a real file
// system) even when /dev/shm exists, so fsync costs what it costs: for
// benchmarks of the fsync policy.
func WithDisk() Option {
	return func(c *config) { c.disk = true }
}

// WithConfigFile starts the server from a configuration file, such as one
// shipped for production. The test's address and directory override the
// file's; its persistence settings stay (WithoutAOF has no effect).
func WithConfigFile(path string) Option {
	return func(c *config) { c.file = path }
}

// WithArgs appends extra redis-server command-line arguments
// (e.g. "--maxmemory", "10mb"). They come last and so override the defaults.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Server is a running (or stopped) redis-server owned by one test.
// All methods are safe for concurrent use and may be called repeatedly.
type Server struct {
	tb      testing.TB
	bin     string
	dir     string // log and, unless on /dev/shm, data
	data    string // the server's --dir
	logPath string
	cfg     config

	mu   sync.Mutex
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has been reaped; nil when not running
}

// Start launches redis-server for tb and waits until it answers PING.
// The server is stopped automatically when the test ends.
//
// If redis-server is not installed the test is skipped, except when the CI
// environment variable is set: CI must never silently skip Redis tests.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server not found in PATH but CI is set; CI must run Redis tests (apt-get install redis-server): %v", err)
		}
		tb.Skip("redis-server not installed (apt-get install redis-server); skipping test that needs a real Redis")
	}

	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	s.logPath = filepath.Join(s.dir, "redis.log")
	for _, o := range opts {
		o(&s.cfg)
	}
	s.data = s.dir
	if !s.cfg.disk {
		if d, err := os.MkdirTemp("/dev/shm", "redistest-"); err == nil {
			s.data = d
			tb.Cleanup(func() { os.RemoveAll(d) }) // after Stop: cleanups run last-in first-out
		}
	}
	tb.Cleanup(s.Stop)

	s.mu.Lock()
	defer s.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		port, err := FreePort()
		if err != nil {
			tb.Fatalf("redistest: pick free port: %v", err)
		}
		s.port = port
		exited, err := s.launchLocked()
		if err == nil {
			return s
		}
		lastErr = err
		if !exited {
			// Alive but not answering: retrying on another port would
			// not help and would only multiply the wait.
			break
		}
	}
	s.failLocked("start", lastErr)
	return nil // unreachable: failLocked calls Fatal
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrLocked()
}

// URL returns a redis:// URL for database 0, the form our configs accept.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop shuts the server down gracefully (SIGTERM), escalating to SIGKILL
// after a bounded wait so a stuck server cannot hang the test.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGTERM)
}

// Kill terminates the server with SIGKILL, simulating a crash: no shutdown
// save, no AOF rewrite, only what was already fsynced survives.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGKILL)
}

// Pause stops the server with SIGSTOP: it keeps its connections and
// accepts new ones, but answers nothing until Resume, like a store stalled
// by a full disk or a stuck fsync. Stop, Kill and Restart resume it first.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart starts the server again on the same port and directory, so data
// persisted in the append-only file is reloaded. A running server is stopped first.
// It waits until the server answers PING (after loading its data).
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGTERM)
	if _, err := s.launchLocked(); err != nil {
		s.failLocked("restart", err)
	}
}

func (s *Server) addrLocked() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

func (s *Server) args() []string {
	var args []string
	if s.cfg.file != "" {
		args = append(args, s.cfg.file) // must come first
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--dir", s.data,
	)
	switch {
	case s.cfg.file != "":
	case s.cfg.noAOF:
		args = append(args, "--save", "", "--appendonly", "no")
	default:
		args = append(args, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	}
	return append(args, s.cfg.args...)
}

// launchLocked starts the process and waits for PONG. exited reports whether
// the process died during startup (typically: port already taken).
func (s *Server) launchLocked() (exited bool, err error) {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(logf, "--- redistest: %s %s\n", s.bin, shellJoin(s.args()))

	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Stdout = logf // an *os.File is handed to the child directly,
	cmd.Stderr = logf // so no copying goroutine keeps Wait from returning
	err = cmd.Start()
	logf.Close() // the child holds its own descriptor
	if err != nil {
		return false, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	if err := waitPong(s.addrLocked(), cmd.Process.Pid, done, startTimeout); err != nil {
		select {
		case <-done:
			exited = true
		default:
		}
		s.stopLocked(syscall.SIGKILL)
		return exited || errors.Is(err, errOtherServer), err
	}
	return false, nil
}

func (s *Server) stopLocked(sig syscall.Signal) {
	if s.done == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server would not handle SIGTERM
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// failLocked dumps the server log, which is usually the only place that says
// why redis-server refused to start, then fails the test.
func (s *Server) failLocked(what string, err error) {
	s.tb.Helper()
	if b, rerr := os.ReadFile(s.logPath); rerr == nil {
		s.tb.Logf("redistest: redis-server log (%s):\n%s", s.logPath, b)
	}
	s.tb.Fatalf("redistest: %s redis-server on %s: %v", what, s.addrLocked(), err)
}

// FreePort returns a loopback port that no other caller of FreePort on
// this machine holds, and that was free a moment ago. Ports come from below
// the kernel's ephemeral range, so that a client's outgoing connection
// cannot take the port of a server a test killed and is about to restart;
// each is claimed with a lock file held until the process exits, so that
// two test processes never hand out the same one. The port is released
// before its user binds it (hence the retries in Start).
func FreePort() (int, error) {
	lo, hi := portRange()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if handedOut.ports[port] || !claim(port) {
			continue
		}
		handedOut.ports[port] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // in use by something else; stays claimed, never handed out
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free port below the ephemeral range")
}

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// portRange is where FreePort looks: from 10000 to the start of the
// kernel's ephemeral range (32768 when it cannot be read).
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > lo+1000 {
				hi = n
			}
		}
	}
	return lo, hi
}

// claim takes port's lock file for the rest of the process (the kernel
// releases it when the process exits, however it exits).
func claim(port int) bool {
	dir := filepath.Join(os.TempDir(), "hashwall-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true // no lock files: fall back to the probe alone
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	claimed = append(claimed, f) // held open: the lock lives as long as the process
	return true
}

var claimed []*os.File

// errOtherServer: the port answers, but from another test's redis-server,
// which took it between freePort and our bind.
var errOtherServer = errors.New("another redis-server answers on the port")

// waitPong waits until the server at addr answers and is the process pid.
func waitPong(addr string, pid int, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		select {
		case <-exited:
			return errors.New("redis-server exited during startup")
		default:
		}
		got, err := serverPID(addr)
		switch {
		case err == nil && got != pid:
			return fmt.Errorf("%w (pid %d, ours %d)", errOtherServer, got, pid)
		case err == nil:
			// INFO answers while the dataset still loads; PING does not.
			if err = ping(addr); err == nil {
				return nil
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %v", timeout, lastErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", strings.TrimSpace(line))
	}
	return nil
}

// serverPID asks the server at addr for its process id (INFO server).
func serverPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil || n < 0 || n > 1<<16 {
		return 0, fmt.Errorf("unexpected reply %q", strings.TrimSpace(head)) // e.g. -LOADING
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server names no process_id")
}

// shellJoin renders args for the log so that empty values (--save "")
// stay visible.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
