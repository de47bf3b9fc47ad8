package caddyload

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestGlobals(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"http://127.0.0.1:1 {\n}\n", "{\n\tadmin localhost:7\n\tdefault_bind 127.0.0.1\n\tpersist_config off\n}\nhttp://127.0.0.1:1 {\n}\n"},
		{"# c\n{\n\tlog\n}\n:1\n", "# c\n{\n\tadmin localhost:7\n\tdefault_bind 127.0.0.1\n\tpersist_config off\n\tlog\n}\n:1\n"},
		{"{\n\tadmin localhost:7\n\tdefault_bind ::1\n\tpersist_config off\n}\n", "{\n\tadmin localhost:7\n\tdefault_bind ::1\n\tpersist_config off\n}\n"},
	} {
		got, err := globals(tc.src, 7)
		if err != nil || got != tc.want {
			t.Errorf("globals(%q) = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
	for _, src := range []string{
		"{\n\tadmin off\n}\n", "{\n\tadmin localhost:2999\n}\n", "{\n\tadmin localhost:7 {\n\t\torigins x\n\t}\n}\n",
		"{\n\tdefault_bind 0.0.0.0\n}\n", "{\n\tdefault_bind 127.0.0.1 192.0.2.1\n}\n",
	} {
		if _, err := globals(src, 7); err == nil {
			t.Errorf("globals(%q) accepted", src)
		}
	}
}

func TestFreePortsDiffer(t *testing.T) {
	seen := map[int]bool{AdminPort(t): true}
	for range 200 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// Start serves a Caddyfile from this process's Caddy, a second Start
// replaces it, and the end of the test leaves Caddy idle.
func TestStart(t *testing.T) {
	port := FreePort(t)
	site := func(body string) string {
		return fmt.Sprintf("http://127.0.0.1:%d {\n\trespond %q\n}\n", port, body)
	}
	get := func() (string, error) {
		// A new connection each time: an old server closes its kept-alive
		// ones in the background after a reload.
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	t.Run("load", func(t *testing.T) {
		Start(t, site("one"))
		if got, err := get(); got != "one" || err != nil {
			t.Fatalf("first config: %q %v", got, err)
		}
		tc := Start(t, "{\n\tlog {\n\t\tlevel ERROR\n\t}\n}\n"+site("two"))
		if got, err := get(); got != "two" || err != nil {
			t.Fatalf("second config: %q %v", got, err)
		}
		tc.AssertGetResponse(fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "two")
		// Bound to 127.0.0.1 only: a wildcard listener would hold ::1 too.
		if l, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", port)); err == nil {
			l.Close()
		} else if errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("the site listens beyond 127.0.0.1: %v", err)
		}
	})
	// The old server stops in the background; its listener goes soon.
	for deadline := time.Now().Add(5 * time.Second); ; {
		got, err := get()
		if err != nil && strings.Contains(err.Error(), "refused") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("site still served after the test: %q %v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if AdminPort(t) == 2999 || AdminPort(t) != adminPort {
		t.Fatalf("admin port %d", AdminPort(t))
	}
}
