package agenthandler

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	_ "github.com/hashwall/hashwall/caddymodule/paywall"
	"github.com/hashwall/hashwall/internal/testutil/caddyload"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, auth string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestEndToEndWithGateway runs the bank (paywall_agent) and a newspaper
// (the paywall gateway) in one real Caddy: a reader buys a certificate, pays
// for an article, the gateway's report credits the vendor at the agent, and
// an admin revocation reaches the gateway within a second.
func TestEndToEndWithGateway(t *testing.T) {
	rds := redistest.Start(t)
	kf := filepath.Join(t.TempDir(), "agent-2026.pem")
	if _, err := agent.Keygen(kf, "agent-2026"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HW_E2E_MASTER", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)))
	bankPort, newsPort := caddyload.FreePort(t), caddyload.FreePort(t)
	bankSite := fmt.Sprintf(`http://127.0.0.1:%d {
	paywall_agent {
		redis %s
		signing_keys %s
		master_key {env.HW_E2E_MASTER}
		admin_token e2e-admin
		ephemeral
	}
}`, bankPort, rds.URL(), kf)
	global := "{\n\tlog {\n\t\tlevel ERROR\n\t}\n}\n"
	caddyload.Start(t, global+bankSite)

	bank := client{t, fmt.Sprintf("http://127.0.0.1:%d", bankPort)}
	admin := "Bearer e2e-admin"
	var v, v2 struct{ Token string }
	if bank.do("POST", "/v1/vendors", admin, map[string]string{"vendor": "planet"}, &v) != 201 ||
		bank.do("POST", "/v1/vendors", admin, map[string]string{"vendor": "globe"}, &v2) != 201 {
		t.Fatal("register vendors")
	}
	bank.do("POST", "/v1/users", "", map[string]string{"username": "alice", "password": "correct horse"}, nil)
	bank.do("POST", "/v1/admin/credit", admin, map[string]any{"user": "alice", "amount": 1000}, nil)
	var s struct{ Token string }
	bank.do("POST", "/v1/sessions", "", map[string]string{"username": "alice", "password": "correct horse"}, &s)
	_, user, _ := ed25519.GenerateKey(nil)
	buy := func() (*payword.Certificate, payword.Secret, *payword.Tree) {
		var b agentapi.Bundle
		if code := bank.do("POST", "/v1/certificates", "Bearer "+s.Token, map[string]any{
			"tokens": 256, "public_key": base64.RawURLEncoding.EncodeToString(user.Public().(ed25519.PublicKey)),
		}, &b); code != 201 {
			t.Fatalf("buy: %d", code)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(b.Certificate)
		cert, err := payword.ParseCertificate(raw)
		if err != nil {
			t.Fatal(err)
		}
		var k payword.Secret
		kb, _ := base64.RawURLEncoding.DecodeString(b.Secret)
		copy(k[:], kb)
		return cert, k, payword.NewTree(payword.Anchors(k, b.Segments, b.SegmentLen))
	}
	cert, k, tree := buy()

	// Reload with two newspapers added, the second in online mode; the agent
	// handler is provisioned again.
	globePort := caddyload.FreePort(t)
	site := func(port int, vendor, token, extra string) string {
		return fmt.Sprintf(`
http://127.0.0.1:%d {
	route {
		paywall {
			vendor %s
			api_token %s
			agent %s
			redis %s
			grant_key 0123456789abcdef0123456789abcdef
			price /articles/* 2
			crl redis
			%s
		}
		respond "article {path}"
	}
}`, port, vendor, token, bank.base, rds.URL(), extra)
	}
	caddyload.Start(t, global+bankSite+site(newsPort, "planet", v.Token, "")+site(globePort, "globe", v2.Token, "mode online"))
	// The old bank server closes kept-alive connections in the background;
	// a POST sent on one as it closes is not retried.
	http.DefaultClient.CloseIdleConnections()
	pay := func(port int, vendor string, cert *payword.Certificate, k payword.Secret, tree *payword.Tree,
		g, i uint32, product string) int {
		bind, _ := payword.Bind(cert, user, g, vendor, time.Now())
		header := payword.NewPayment(cert, tree, k, bind, g, i, 2, vendor, product).Header()
		// A gateway just loaded learns the bank's keys and revocation list
		// first and answers 503 meanwhile; a wallet sends the same payment
		// again, as this does, for a bounded time.
		for deadline := time.Now().Add(10 * time.Second); ; {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, product), nil)
			req.Header.Set("Authorization", header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if resp.StatusCode != 200 {
				t.Logf("payment at %s: %d %q", vendor, resp.StatusCode, resp.Header.Get("Payment-Error"))
			}
			return resp.StatusCode
		}
	}
	if code := pay(newsPort, "planet", cert, k, tree, 0, 2, "/articles/moon"); code != 200 {
		t.Fatalf("payment: %d", code)
	}
	vendor := "Bearer " + v.Token
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st agentapi.Statement
		bank.do("GET", "/v1/statement", vendor, nil, &st)
		if st.Closing == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway's report did not credit the vendor: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if code := bank.do("POST", "/v1/admin/revoke", admin, map[string]string{"serial": cert.Serial.String()}, nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	start := time.Now()
	i := uint32(4)
	for pay(newsPort, "planet", cert, k, tree, 0, i, fmt.Sprintf("/articles/%d", i)) == 200 {
		if time.Since(start) > time.Second {
			t.Fatal("revoked certificate still accepted after 1s")
		}
		i += 2
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revocation refused by the gateway after %v", time.Since(start))

	// Online mode: the globe registers its segment with the agent before it
	// accepts; a segment the planet registered first is refused, and the
	// double binding revokes the certificate.
	cert2, k2, tree2 := buy()
	if code := pay(globePort, "globe", cert2, k2, tree2, 0, 2, "/articles/sun"); code != 200 {
		t.Fatalf("online payment: %d", code)
	}
	planetBind, _ := payword.Bind(cert2, user, 1, "planet", time.Now())
	var owner struct{ Owner string }
	if code := bank.do("POST", "/v1/bindings", vendor, map[string]string{
		"bind": base64.RawURLEncoding.EncodeToString(planetBind.Raw())}, &owner); code != 200 || owner.Owner != "planet" {
		t.Fatalf("planet binds segment 1: %d %+v", code, owner)
	}
	if code := pay(globePort, "globe", cert2, k2, tree2, 1, 2, "/articles/moon"); code == 200 {
		t.Fatal("the online gateway accepted a segment bound to another vendor")
	}
	var crl payword.Signed
	bank.do("GET", "/v1/crl?since=1", "", nil, &crl)
	if !strings.Contains(string(crl.Body), cert2.Serial.String()) || !strings.Contains(string(crl.Body), "double-spend") {
		t.Fatalf("double binding not revoked: %s", crl.Body)
	}
}
