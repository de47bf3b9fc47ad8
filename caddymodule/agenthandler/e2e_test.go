package agenthandler

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

	ctx := t.Context()
	bank := agentapi.NewClient(fmt.Sprintf("http://127.0.0.1:%d", bankPort), nil)
	admin := bank.WithToken("e2e-admin")
	v, err := admin.RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: "planet"})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := admin.RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: "globe"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bank.RegisterUser(ctx, agentapi.RegisterUser{Username: "alice", Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Credit(ctx, agentapi.Credit{User: "alice", Amount: 1000}); err != nil {
		t.Fatal(err)
	}
	s, err := bank.Login(ctx, "alice", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	alice := bank.WithToken(s.Token)
	_, user, _ := ed25519.GenerateKey(nil)
	buy := func() (*payword.Certificate, payword.Secret, *payword.Tree) {
		b, err := alice.Buy(ctx, 256, user.Public().(ed25519.PublicKey), "")
		if err != nil {
			t.Fatalf("buy: %v", err)
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
}`, port, vendor, token, bank.BaseURL(), rds.URL(), extra)
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
	planet := bank.WithToken(v.Token)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := planet.Statement(ctx, time.Time{}, time.Time{})
		if err == nil && st.Closing == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway's report did not credit the vendor: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if _, err := admin.Revoke(ctx, agentapi.Revoke{Serial: &cert.Serial}); err != nil {
		t.Fatalf("revoke: %v", err)
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
	if owner, err := planet.Bind(ctx, planetBind.Raw()); err != nil || owner.Owner != "planet" {
		t.Fatalf("planet binds segment 1: %+v, %v", owner, err)
	}
	if code := pay(globePort, "globe", cert2, k2, tree2, 1, 2, "/articles/moon"); code == 200 {
		t.Fatal("the online gateway accepted a segment bound to another vendor")
	}
	raw, err := bank.CRL(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var crl payword.Signed
	if err := json.Unmarshal(raw, &crl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(crl.Body), cert2.Serial.String()) || !strings.Contains(string(crl.Body), "double-spend") {
		t.Fatalf("double binding not revoked: %s", crl.Body)
	}
}
