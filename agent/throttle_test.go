package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestLoginThrottleConcurrent is issue 9 item 10: 300 concurrent wrong
// passwords plus the right one, spread over two agent instances on one
// Redis, over real HTTP. At most maxFailures passwords are checked, and
// the account is locked afterwards, even for the right password.
func TestLoginThrottleConcurrent(t *testing.T) {
	e := newEnv(t)
	e.user("alice", 0)
	// Production argon2 cost: each check takes long enough for the
	// guesses to overlap, as they do against a real agent.
	e.cfg.Argon = DefaultArgon
	e.restartAgent()
	second, err := New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	srvs := []*httptest.Server{httptest.NewServer(e.a), httptest.NewServer(second)}
	for _, s := range srvs {
		defer s.Close()
	}
	login := func(base, pw string) int {
		resp, err := http.Post(base+"/v1/sessions", "application/json",
			strings.NewReader(`{"username":"alice","password":"`+pw+`"}`))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 301 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := "wrong horse"
			if i == 150 {
				pw = "correct horse"
			}
			c := login(srvs[i%2].URL, pw)
			mu.Lock()
			codes[c]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("status counts: %v", codes)
	if codes[401] > maxFailures || codes[401]+codes[200] > maxFailures+1 || codes[429] < 301-maxFailures-1 {
		t.Fatalf("%d wrong passwords checked (limit %d): %v", codes[401], maxFailures, codes)
	}
	// A right password that won a slot gave it back, so the burst may
	// have left one wrong guess to spend; after it the account is locked.
	for n := codes[401]; n < maxFailures; n++ {
		if c := login(srvs[n%2].URL, "wrong horse"); c != 401 {
			t.Fatalf("wrong password %d of %d: %d, want 401", n+1, maxFailures, c)
		}
	}
	for _, s := range srvs {
		if c := login(s.URL, "correct horse"); c != 429 {
			t.Fatalf("right password after the burst: %d, want 429 until the window ends", c)
		}
	}
	// Basic auth is the same door.
	req := httptest.NewRequest("GET", "/v1/me", nil)
	req.SetBasicAuth("alice", "correct horse")
	rec := httptest.NewRecorder()
	second.ServeHTTP(rec, req)
	if rec.Code != 429 {
		t.Fatalf("Basic auth after the burst: %d", rec.Code)
	}
	e.clock.Add(failureWindow)
	if c := login(srvs[1].URL, "correct horse"); c != 200 {
		t.Fatalf("after the window: %d", c)
	}
}

// TestLoginThrottlePerAddress: one client address guessing over many
// usernames is stopped too, and the state lives in Redis with expiries
// (no process map that a flood of names could clear).
func TestLoginThrottlePerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("alice", 0)
	try := func(name, pw, addr string) int {
		req := httptest.NewRequest("POST", "/v1/sessions",
			strings.NewReader(`{"username":"`+name+`","password":"`+pw+`"}`))
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		e.a.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range maxAddrFailures {
		if c := try("name"+itoa(int64(i)), "wrong horse", "192.0.2.7:1000"); c != 401 {
			t.Fatalf("guess %d: %d", i, c)
		}
	}
	if c := try("alice", "correct horse", "192.0.2.7:1001"); c != 429 {
		t.Fatalf("address over its limit: %d", c)
	}
	if c := try("alice", "correct horse", "198.51.100.1:1000"); c != 200 {
		t.Fatalf("another address: %d", c)
	}
	// Lock alice from many addresses, then fail with many other names from
	// many other addresses: nothing clears alice's lockout.
	for i := range maxFailures {
		try("alice", "wrong horse", "203.0.113."+itoa(int64(i))+":1")
	}
	for i := range 300 {
		try("flood"+itoa(int64(i)), "wrong horse", "[2001:db8:"+itoa(int64(i))+"::1]:1")
	}
	if c := try("alice", "correct horse", "198.51.100.2:1000"); c != 429 {
		t.Fatalf("alice after a flood of other names: %d", c)
	}
	// Every throttle key expires.
	keys, _ := e.rdb.Keys(context.Background(), e.a.prefix+"lf:*").Result()
	if len(keys) < maxAddrFailures {
		t.Fatalf("%d throttle keys", len(keys))
	}
	for _, k := range keys {
		if ttl, err := e.rdb.PTTL(context.Background(), k).Result(); err != nil || ttl <= 0 {
			t.Fatalf("%s: ttl %v %v", k, ttl, err)
		}
	}
}

// TestSignupThrottle: sign-ups are counted per client address across agent
// instances on one Redis, on the API and the pages alike, before argon2
// runs; the operator's own are not counted, and the window ends.
func TestSignupThrottle(t *testing.T) {
	e := newEnv(t)
	e.cfg.SignupsPerHour = 5
	e.cfg.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	e.restartAgent()
	second, err := New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := e.webServer()
	other := httptest.NewServer(second)
	defer other.Close()
	srvs := []string{first.URL, other.URL}

	register := func(base, name, client, auth string) *http.Response {
		req, _ := http.NewRequest("POST", base+"/v1/users", strings.NewReader(`{"username":"`+name+`","password":"correct horse"}`))
		req.Header.Set("X-Test-Client", client)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	users := func() int64 {
		n, err := e.rdb.ZCard(context.Background(), e.a.prefix+"unames").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// 40 concurrent sign-ups from one address over both instances: 5 pass.
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			resp := register(srvs[i%2], fmt.Sprintf("flood-%d", i), "198.51.100.7", "")
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
	wg.Wait()
	if codes[201] != 5 || codes[429] != 35 || users() != 5 {
		t.Fatalf("40 sign-ups from one address: %v, %d accounts; want 5 created", codes, users())
	}

	// The pages count with the API: the same address is refused there too,
	// with the reader's username kept and nothing created.
	b := newBrowser(t, first)
	p := b.get("/signup")
	req, _ := http.NewRequest("POST", first.URL+"/signup", strings.NewReader(url.Values{
		"csrf": {p.hidden("csrf")}, "username": {"rosa"}, "password": {"a long enough password"}, "password2": {"a long enough password"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", first.URL)
	req.Header.Set("X-Test-Client", "198.51.100.7")
	p = b.do(req)
	if p.code != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many accounts") || p.header.Get("Retry-After") == "" {
		t.Fatalf("sign-up page over the limit: %d %q\n%s", p.code, p.header.Get("Retry-After"), p.body)
	}
	if !strings.Contains(p.body, `value="rosa"`) || users() != 5 {
		t.Fatalf("the refused form lost the username, or created an account (%d)", users())
	}

	// Another address, and the operator, are not held back.
	if resp := register(srvs[1], "neighbour", "198.51.100.8", ""); resp.StatusCode != http.StatusCreated {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
	if resp := register(srvs[0], "by-operator", "198.51.100.7", "Bearer "+adminToken); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the operator: %d", resp.StatusCode)
	}
	// A wrong admin token is an ordinary sign-up, refused.
	if resp := register(srvs[0], "not-operator", "198.51.100.7", "Bearer wrong"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a wrong admin token: %d", resp.StatusCode)
	}
	// The window ends after an hour.
	e.clock.Add(signupWindow)
	if resp := register(srvs[0], "next-hour", "198.51.100.7", ""); resp.StatusCode != http.StatusCreated {
		t.Fatalf("an hour later: %d", resp.StatusCode)
	}
}

// TestOpenVendorsThrottled: with open_vendors, anyone's vendor
// registrations count against the address's sign-ups; the admin's do not.
func TestOpenVendorsThrottled(t *testing.T) {
	e := newEnv(t)
	e.cfg.OpenVendors, e.cfg.SignupsPerHour = true, 2
	e.restartAgent()
	for i, want := range []int{201, 201, 429, 429} {
		body := fmt.Sprintf(`{"vendor":"open-%d"}`, i)
		if code := e.call("POST", "/v1/vendors", "", body, nil); code != want {
			t.Fatalf("registration %d: %d, want %d", i, code, want)
		}
	}
	if code := e.call("POST", "/v1/vendors", "Bearer "+adminToken, `{"vendor":"by-admin"}`, nil); code != 201 {
		t.Fatalf("the admin's registration: %d", code)
	}
	// A refused one changed nothing but the counter.
	before := e.state()
	if code := e.call("POST", "/v1/vendors", "", `{"vendor":"open-9"}`, nil); code != 429 {
		t.Fatalf("over the limit: %d", code)
	}
	if e.state() != before {
		t.Fatal("a refused registration changed the store")
	}
}
