package paywall

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/caddyload"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
)

// TestDirectiveOrderCannotLeak: with no `order` line, in real Caddy, the
// paywall runs before every directive that could answer a priced path,
// wherever it stands in the site block: unpaid, each site answers 402 and
// none of its content; paid, the content comes.
func TestDirectiveOrderCannotLeak(t *testing.T) {
	e := newEnv(t)
	t.Setenv("HW_TEST_GRANT_KEY", testGrantKey)
	const content = "PRICED-CONTENT"
	var upstreamHits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		fmt.Fprint(w, content+" from the upstream")
	}))
	t.Cleanup(up.Close)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "articles"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "articles", "x"), []byte(content+" from a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "x"), []byte(content+" from a file under handle_path"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Each site mixes the paywall with directives that answer requests,
	// the paywall written last where Caddy's own order would put it late.
	sites := map[string]string{
		"handle": `handle /articles/* {
		respond "` + content + ` from handle"
	}
	respond "free page"`,
		"handle_path": `handle_path /articles/* {
		root * ` + root + `
		file_server
	}`,
		"route": `route /articles/* {
		respond "` + content + ` from route"
	}`,
		"respond":       `respond /articles/* "` + content + ` from respond"`,
		"redir":         `redir /articles/* /moved`,
		"rewrite":       `rewrite /articles/* /articles/x`,
		"file_server":   "root * " + root + "\n\tfile_server",
		"reverse_proxy": "reverse_proxy " + up.Listener.Addr().String(),
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `{
	log {
		level WARN
	}
}
(pay) {
	paywall {
		vendor %s
		api_token secret-token
		agent %s
		redis %s
		grant_key {env.HW_TEST_GRANT_KEY}
		key %s %s
		price /articles/* 2
		crl agent 100ms
	}
}
`, testVendor, e.agent.URL, e.redis.URL(), e.agent.key.ID, pubB64(e.agent.key))
	bases := map[string]string{}
	for name, body := range sites {
		port := caddyload.FreePort(t)
		bases[name] = fmt.Sprintf("http://127.0.0.1:%d", port)
		fmt.Fprintf(&cfg, "http://127.0.0.1:%d {\n\t%s\n\timport pay\n}\n", port, body)
	}
	caddyload.Start(t, cfg.String())

	get := func(url, auth string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for name, base := range bases {
		status, hdr, body := get(base+"/articles/x", "")
		if status != http.StatusPaymentRequired || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "PayWord ") ||
			strings.Contains(body, content) || hdr.Get("Location") != "" {
			t.Errorf("%s: unpaid /articles/x answered %d %q %q", name, status, hdr, body)
		}
	}
	if n := upstreamHits.Load(); n != 0 {
		t.Errorf("the upstream saw %d unpaid requests of a priced path", n)
	}
	if status, _, body := get(bases["handle"]+"/free", ""); status != http.StatusOK || body != "free page" {
		t.Errorf("free page: %d %q", status, body)
	}

	// Paid, each site serves what its directives make of the path. The
	// first payments may meet a revocation list not synced yet (503);
	// a payment sent again is the same payment.
	for i, name := range []string{"handle", "route", "file_server", "reverse_proxy"} {
		wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: byte(40 + i)})
		auth := wal.Header(t, 0, 2, 2, testVendor, "/articles/x")
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, _, body := get(bases[name]+"/articles/x", auth)
			if status == http.StatusOK && strings.Contains(body, content) {
				break
			}
			if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Errorf("%s: paid /articles/x answered %d %q", name, status, body)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
