// Package caddyload runs a real Caddy in a test process, from a Caddyfile,
// through caddytest.
//
// caddytest starts one Caddy per test binary (caddycmd.Main in a goroutine)
// with its admin API on a fixed port, and every later config is posted to
// that admin API. So this package picks a free loopback admin port once per
// process (go test runs packages in parallel, so never caddytest's 2999)
// and writes `admin localhost:<port>` into the global options of every
// config: a config without it would move the admin API away and the next
// load would find nothing. Tests that use Start must not run in parallel
// with each other: the process has one Caddy and one config.
package caddyload

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// FreePort returns a loopback TCP port that was free a moment ago and that
// this process has not handed out before (redistest's allocator, so that a
// Redis and a Caddy listener of one test process never share a port either):
// Caddy listens with SO_REUSEPORT, so two of its listeners given the same
// port both bind it and split its connections silently.
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := redistest.FreePort()
	if err != nil {
		tb.Fatalf("caddyload: %v", err)
	}
	return p
}

var (
	adminOnce sync.Once
	adminPort int
	adminErr  error
)

// AdminPort returns the loopback port of this process's Caddy admin API,
// chosen on first use.
func AdminPort(tb testing.TB) int {
	tb.Helper()
	adminOnce.Do(func() { adminPort, adminErr = redistest.FreePort() })
	if adminErr != nil {
		tb.Fatalf("caddyload: picking the admin port: %v", adminErr)
	}
	return adminPort
}

// rewritten matches the paths caddytest replaces with its own certificate
// files (its prependCaddyFilePath), whatever directory they are in.
var rewritten = regexp.MustCompile(`/[\w\d\.]+\.(key|crt)`)

// Start loads caddyfile into this process's Caddy, replacing whatever config
// runs, and returns the caddytest Tester (whose Client dials loopback only).
// It adds `admin localhost:<AdminPort>`, `default_bind 127.0.0.1` and
// `persist_config off` to the global options; a caddyfile that sets admin
// to anything else, or binds a non-loopback address, is refused.
// When the test ends Caddy is left idle (admin API only), so the test's
// sites and handlers stop before the servers they use (Redis, upstreams)
// are torn down by earlier-registered cleanups.
//
// caddytest skips the test when its prerequisites fail (no certificates
// beside it, no Caddy admin API after starting one, -short); with the CI
// environment variable set such a skip fails the test instead, as
// internal/redistest does for a missing redis-server.
func Start(tb testing.TB, src string) *caddytest.Tester {
	tb.Helper()
	if m := rewritten.FindString(src); m != "" {
		tb.Fatalf("caddyload: caddytest rewrites %q to a file beside caddytest.go; name the file without a .key or .crt suffix", m)
	}
	port := AdminPort(tb)
	cfg, err := globals(src, port)
	if err != nil {
		tb.Fatalf("caddyload: %v", err)
	}
	g := &guard{TB: tb, ci: os.Getenv("CI") != ""}
	tc := caddytest.NewTester(g).WithDefaultOverrides(caddytest.Config{
		AdminPort:          port,
		LoadRequestTimeout: 30 * time.Second, // a reload waits for the old config's handlers to stop
	})
	tb.Cleanup(func() { idle(tb, port) })
	settleAdmin(port)
	tc.InitServer(cfg, "caddyfile")
	g.mu.Lock()
	failed := g.failed
	g.mu.Unlock()
	if failed {
		tb.FailNow()
	}
	// A foreign process answering on our admin port would have taken the
	// config instead of this process's Caddy.
	if caddy.ActiveContext().Context == nil {
		tb.Fatalf("caddyload: the admin API on localhost:%d is not this process's Caddy", port)
	}
	return tc
}

// globals puts `admin localhost:<port>`, `default_bind 127.0.0.1` and
// `persist_config off` into the global options block of src, adding the
// block if there is none. Sites then listen on loopback only, whatever
// their addresses say.
func globals(src string, port int) (string, error) {
	blocks, err := caddyfile.Parse("Caddyfile", []byte(src))
	if err != nil {
		return "", err
	}
	want := "localhost:" + strconv.Itoa(port)
	var add []string
	hasAdmin, hasBind, hasPersist := false, false, false
	if len(blocks) > 0 && len(blocks[0].Keys) == 0 {
		for _, seg := range blocks[0].Segments {
			switch seg.Directive() {
			case "admin":
				if len(seg) != 2 || seg[1].Text != want {
					return "", fmt.Errorf("the global options set admin; leave it out, caddyload sets admin %s", want)
				}
				hasAdmin = true
			case "default_bind":
				for _, tok := range seg[1:] {
					if ip := net.ParseIP(tok.Text); ip == nil || !ip.IsLoopback() {
						return "", fmt.Errorf("default_bind %s: tests listen on loopback addresses only", tok.Text)
					}
				}
				hasBind = true
			case "persist_config":
				hasPersist = true
			}
		}
	}
	if !hasAdmin {
		add = append(add, "admin "+want)
	}
	if !hasBind {
		add = append(add, "default_bind 127.0.0.1")
	}
	if !hasPersist {
		add = append(add, "persist_config off") // parallel test binaries must not share an autosave file
	}
	if len(add) == 0 {
		return src, nil
	}
	lines := "\n\t" + strings.Join(add, "\n\t")
	if i := globalBrace(src); i >= 0 {
		return src[:i+1] + lines + src[i+1:], nil
	}
	return "{" + lines + "\n}\n" + src, nil
}

// globalBrace returns the offset of the `{` that opens a global options
// block, or -1 if src does not start with one (after blank and comment
// lines).
func globalBrace(src string) int {
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case ' ', '\t', '\r', '\n':
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case '{':
			return i
		default:
			return -1
		}
	}
	return -1
}

// closeIdleAdmin drops the kept-alive connections of http.DefaultTransport,
// which caddytest's loads use: a load may restart the admin server, and a
// POST sent on a connection it closed fails with EOF (Go resends only
// idempotent requests).
func closeIdleAdmin() {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

// settleAdmin waits, up to a second, until the admin API answers three
// fresh connections in a row: a load just before (the last test's idle)
// stops the old admin server in the background, and a connection it takes
// meanwhile ends in EOF. Before the first load nothing answers, and it
// returns at once.
func settleAdmin(port int) {
	closeIdleAdmin()
	if caddy.ActiveContext().Context == nil {
		return
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for ok, end := 0, time.Now().Add(time.Second); ok < 3 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		resp, err := c.Get(fmt.Sprintf("http://localhost:%d/config/", port))
		if err != nil {
			ok = 0
			continue
		}
		resp.Body.Close()
		ok++
	}
}

// idle replaces the running config with one that serves nothing but the
// admin API.
func idle(tb testing.TB, port int) {
	if caddy.ActiveContext().Context == nil {
		return // caddytest never started Caddy (a skipped test)
	}
	cfg := fmt.Sprintf("{\n\tadmin localhost:%d\n\tpersist_config off\n}\n", port)
	closeIdleAdmin()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var resp *http.Response
	var err error
	for try := 0; try < 3; try++ { // a connection the old admin server took as it stopped ends in EOF
		if resp, err = c.Post(fmt.Sprintf("http://localhost:%d/load", port), "text/caddyfile", bytes.NewReader([]byte(cfg))); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Errorf("caddyload: unloading the test's config: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		tb.Errorf("caddyload: unloading the test's config: %d %s", resp.StatusCode, b.String())
	}
}

// guard is the testing.TB caddytest sees: it notes failures (InitServer
// only marks them and goes on) and, on CI, turns skips into failures.
type guard struct {
	testing.TB
	ci bool

	mu     sync.Mutex
	failed bool
}

func (g *guard) Fail() {
	g.mu.Lock()
	g.failed = true
	g.mu.Unlock()
	g.TB.Fail()
}

func (g *guard) Errorf(format string, args ...any) {
	g.mu.Lock()
	g.failed = true
	g.mu.Unlock()
	g.TB.Helper()
	g.TB.Errorf(format, args...)
}

func (g *guard) SkipNow() {
	if g.ci {
		g.TB.Fatal("caddytest skipped the test, but CI is set: CI must run the Caddy end-to-end tests")
	}
	g.TB.SkipNow()
}

func (g *guard) Skipf(format string, args ...any) {
	if g.ci {
		g.TB.Fatalf("caddytest skipped the test, but CI is set: CI must run the Caddy end-to-end tests: "+format, args...)
	}
	g.TB.Skipf(format, args...)
}
