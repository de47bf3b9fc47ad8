package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MasterName is the name the Sentinels of StartSentinel monitor.
const MasterName = "hw"

// Sentinel is a primary, its replicas and three Sentinels watching them,
// each its own redis-server on a loopback port. The data servers run as
// Start runs them (AOF with appendfsync always), so a killed one restarts
// with what it acknowledged. The Sentinels are tuned to fail over within
// about two seconds (the first acts 600 ms after the primary stops
// answering, and the periods of their queries and announcements are cut
// from seconds to a fraction of one with SENTINEL DEBUG), so that a test
// of a failover takes seconds.
type Sentinel struct {
	tb        testing.TB
	servers   []*Server // [0] starts as the primary
	sentinels []*Server
}

// StartSentinel starts a primary, replicas replicas of it (at least one)
// and three Sentinels, and waits until the replicas are in
// sync and every Sentinel knows the others and the replicas. opts apply to
// the data servers. Everything stops when the test ends.
func StartSentinel(tb testing.TB, replicas int, opts ...Option) *Sentinel {
	tb.Helper()
	replicas = max(replicas, 1)
	s := &Sentinel{tb: tb}
	// A (re)joining replica syncs through a file (on /dev/shm): a
	// diskless sync waits 5 s for other replicas to share the transfer,
	// and then up to a second for the replica's first acknowledgement
	// before it streams. A primary stopped at the end of the test does
	// not wait for its replicas (shutdown-timeout).
	opts = append([]Option{WithArgs("--repl-diskless-sync", "no", "--shutdown-timeout", "0")}, opts...)
	primary := Start(tb, opts...)
	s.servers = append(s.servers, primary)
	_, port, _ := net.SplitHostPort(primary.Addr())
	for range replicas {
		o := append(opts[:len(opts):len(opts)], WithArgs("--replicaof", "127.0.0.1", port))
		s.servers = append(s.servers, Start(tb, o...))
	}
	for i := range 3 {
		// The first Sentinel acts alone and soon: the votes of three that
		// see the primary down at once would split, and the next attempt
		// comes only after twice the failover timeout. The other two
		// vote for it.
		quorum, downAfter := 2, 1500
		if i == 0 {
			quorum, downAfter = 1, 600
		}
		conf := filepath.Join(tb.TempDir(), "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]s %[3]d\n"+
			"sentinel down-after-milliseconds %[1]s %[4]d\n"+
			"sentinel failover-timeout %[1]s 3000\n", MasterName, port, quorum, downAfter)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		sen := Start(tb, WithConfigFile(conf), WithArgs("--sentinel"))
		// Faster pings, queries of the others, INFO and announcements.
		// Pings no faster than 250 ms: a replica is promoted only if its
		// last INFO is at most five ping periods old, and during a
		// failover Sentinel asks it once a second.
		for _, kv := range [][2]string{
			{"ping-period", "250"}, {"ask-period", "100"}, {"info-period", "200"}, {"publish-period", "100"},
			{"tilt-period", "1000"}, {"min-link-reconnect-period", "200"},
		} {
			if _, err := Command(sen.Addr(), "SENTINEL", "DEBUG", kv[0], kv[1]); err != nil {
				tb.Fatalf("redistest: sentinel %d: %v", i, err)
			}
		}
		s.sentinels = append(s.sentinels, sen)
	}
	s.WaitReplicas(replicas, 10*time.Second)
	s.waitSentinels(replicas, 10*time.Second)
	return s
}

// URL is the redis-sentinel:// URL of the Sentinels, as internal/redisurl
// takes it.
func (s *Sentinel) URL() string {
	u := "redis-sentinel://" + s.sentinels[0].Addr() + "/0?master_name=" + MasterName
	for _, sen := range s.sentinels[1:] {
		u += "&addr=" + sen.Addr()
	}
	return u
}

// Servers returns the data servers; the first was the primary at start.
func (s *Sentinel) Servers() []*Server { return s.servers }

// Primary returns the data server the first Sentinel that answers names
// as the primary.
func (s *Sentinel) Primary() *Server {
	s.tb.Helper()
	p, err := s.primary()
	if err != nil {
		s.tb.Fatalf("redistest: %v", err)
	}
	return p
}

func (s *Sentinel) primary() (*Server, error) {
	var last error
	for _, sen := range s.sentinels {
		p, err := s.primaryOf(sen)
		if err == nil {
			return p, nil
		}
		last = err
	}
	return nil, last
}

func (s *Sentinel) primaryOf(sen *Server) (*Server, error) {
	r, err := Command(sen.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName)
	if err != nil {
		return nil, err
	}
	if len(r) != 2 {
		return nil, fmt.Errorf("sentinel %s names no primary: %q", sen.Addr(), r)
	}
	for _, srv := range s.servers {
		if srv.Addr() == net.JoinHostPort(r[0], r[1]) {
			return srv, nil
		}
	}
	return nil, fmt.Errorf("sentinel %s names an unknown primary %s:%s", sen.Addr(), r[0], r[1])
}

// KillPrimary kills the current primary with SIGKILL and returns it.
func (s *Sentinel) KillPrimary() *Server {
	s.tb.Helper()
	p := s.Primary()
	p.Kill()
	return p
}

// WaitPromotion waits until every Sentinel names another primary than old
// and that server says it is one; it returns the new primary.
func (s *Sentinel) WaitPromotion(old *Server, within time.Duration) *Server {
	s.tb.Helper()
	var p *Server
	s.await("a promotion", within, func() (err error) { p, err = s.promoted(old); return err })
	return p
}

// await polls cond until it returns nil, or fails the test after within.
func (s *Sentinel) await(what string, within time.Duration, cond func() error) {
	s.tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			for _, sen := range s.sentinels { // they say why
				if b, rerr := os.ReadFile(sen.logPath); rerr == nil {
					s.tb.Logf("redistest: log of sentinel %s:\n%s", sen.Addr(), b)
				}
			}
			s.tb.Fatalf("redistest: no %s within %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Sentinel) promoted(old *Server) (*Server, error) {
	var p *Server
	for _, sen := range s.sentinels {
		q, err := s.primaryOf(sen)
		switch {
		case err != nil:
			return nil, err
		case q == old:
			return nil, fmt.Errorf("sentinel %s still names %s", sen.Addr(), old.Addr())
		case p != nil && q != p:
			return nil, errors.New("the sentinels disagree")
		}
		p = q
	}
	if role := infoField(p.Addr(), "replication", "role"); role != "master" {
		return nil, fmt.Errorf("%s is %q, not master yet", p.Addr(), role)
	}
	return p, nil
}

// WaitReplicas waits until n replicas acknowledge the primary's writes
// (WAIT): done with their sync and following its stream.
func (s *Sentinel) WaitReplicas(n int, within time.Duration) {
	s.tb.Helper()
	s.await("replicas following", within, func() error { return s.replicasAck(n) })
}

func (s *Sentinel) replicasAck(n int) error {
	p, err := s.primary()
	if err != nil {
		return err
	}
	// A replica counts as online before its first acknowledgement, and the
	// stream waits for that (up to a second after its sync): only WAIT
	// tells. PUBLISH gives this connection something to wait for.
	r, err := commands(p.Addr(), []string{"PUBLISH", "redistest", ""}, []string{"WAIT", strconv.Itoa(n), "100"})
	if err != nil {
		return err
	}
	if got, _ := strconv.Atoi(r[len(r)-1]); got < n {
		return fmt.Errorf("%d of %d replicas of %s acknowledge", got, n, p.Addr())
	}
	return nil
}

// waitSentinels waits until each Sentinel knows the other two and the
// replicas: before that, it could not agree on a failover.
func (s *Sentinel) waitSentinels(replicas int, within time.Duration) {
	s.tb.Helper()
	for _, sen := range s.sentinels {
		s.await("sentinel ready", within, func() error {
			r, err := Command(sen.Addr(), "SENTINEL", "MASTER", MasterName)
			m := map[string]string{}
			for i := 0; i+1 < len(r); i += 2 {
				m[r[i]] = r[i+1]
			}
			if err == nil && (m["num-other-sentinels"] != "2" || m["num-slaves"] != strconv.Itoa(replicas)) {
				err = fmt.Errorf("sentinel %s knows %s other sentinels and %s replicas", sen.Addr(), m["num-other-sentinels"], m["num-slaves"])
			}
			return err
		})
	}
}

// infoField is one field of an INFO section of the server at addr, "" if
// it does not answer.
func infoField(addr, section, name string) string {
	r, err := Command(addr, "INFO", section)
	if err != nil || len(r) == 0 {
		return ""
	}
	return field(r[0], name)
}

func field(info, name string) string {
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return ""
}

// Command sends one command to the server at addr over a fresh connection
// and returns its reply as strings: the elements of an array (nested ones
// flattened), or the one value. An error reply is an error.
func Command(addr string, args ...string) ([]string, error) {
	return commands(addr, args)
}

// commands sends cmds on one connection and returns their replies, as
// Command does, one after the other.
func commands(addr string, cmds ...[]string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, err
	}
	var out []string
	r := bufio.NewReader(c)
	for range cmds {
		if err := readReply(r, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func readReply(r *bufio.Reader, out *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return errors.New("empty reply")
	}
	switch line[0] {
	case '-':
		return errors.New(line[1:])
	case '+', ':':
		*out = append(*out, line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n > 1<<20 {
			return fmt.Errorf("bad bulk header %q", line)
		}
		if n < 0 {
			return nil // nil reply
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, string(buf[:n]))
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n > 1<<16 {
			return fmt.Errorf("bad array header %q", line)
		}
		for range n {
			if err := readReply(r, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
