package agent

import (
	"net/http"
	"sync"
	"time"
)

// throttle slows password guessing: after maxFailures wrong passwords for
// one username within failureWindow, logins to it are refused (429) until
// the window ends. It lives in memory, so a refused login writes nothing.
type throttle struct {
	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

const (
	maxFailures   = 10
	failureWindow = 15 * time.Minute
	maxThrottled  = 1 << 16
)

var errThrottled = fail(http.StatusTooManyRequests, "too_many_attempts", "too many failed logins; try again later")

func newThrottle() *throttle { return &throttle{m: make(map[string]*failures)} }

func (t *throttle) allow(user string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[user]
	return f == nil || f.n < maxFailures || now.Sub(f.since) >= failureWindow
}

func (t *throttle) failed(user string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[user]
	if f == nil || now.Sub(f.since) >= failureWindow {
		if len(t.m) >= maxThrottled {
			clear(t.m)
		}
		f = &failures{since: now}
		t.m[user] = f
	}
	f.n++
}

func (t *throttle) succeeded(user string) {
	t.mu.Lock()
	delete(t.m, user)
	t.mu.Unlock()
}
