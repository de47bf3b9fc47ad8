package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashwall/hashwall/payword"
	"github.com/hashwall/hashwall/wallet"
)

// TestRecoverLostWallet: a reader loses the wallet file; the agent revokes
// the old certificate at once and credits its unclaimed tokens back when
// the report window ends (claims gateways still hold would be paid from
// them first); the reader buys a new certificate with them. The old
// certificate is refused by gateways within a second.
func TestRecoverLostWallet(t *testing.T) {
	w := newWorld(t)
	alice := w.reader("alice", 100000)
	planet, globe := w.sites["planet"], w.sites["globe"]
	alice.must(t, "buy", "384")
	alice.must(t, "get", planet+"/articles/a")
	w.firstCredit("planet")

	// The file is lost. A new wallet recovers with the same account.
	lost := *alice
	fresh := *alice
	fresh.path = filepath.Join(w.dir, "alice-new.hw")
	out := fresh.must(t, "recover", "--agent", w.agentURL, "alice")
	if !strings.Contains(out, "old certificates are revoked") || !strings.Contains(out, "382 (minor units) go back to your balance at") {
		t.Fatalf("recover: %s", out)
	}
	me := func() (bal, pending int64) {
		var m struct {
			Balance int64 `json:"balance"`
			Pending int64 `json:"pending_credit"`
		}
		req, _ := http.NewRequest("GET", w.agentURL+"/v1/me", nil)
		req.SetBasicAuth("alice", alice.password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/v1/me: %d %v", resp.StatusCode, err)
		}
		return m.Balance, m.Pending
	}
	if bal, pending := me(); bal != 100000-384 || pending != 382 {
		t.Fatalf("right after the recovery: balance %d, pending %d; want 99616 and 382", bal, pending)
	}
	time.Sleep(reportWindow + 500*time.Millisecond)
	if bal, pending := me(); bal != 100000-384+382 || pending != 0 {
		t.Fatalf("after the report window: balance %d, pending %d", bal, pending)
	}
	fresh.must(t, "buy", "256")
	if bal := fresh.must(t, "balance"); !strings.Contains(bal, "spendable: 256") {
		t.Fatalf("new wallet balance:\n%s", bal)
	}
	if got := fresh.must(t, "get", globe+"/articles/b"); !strings.Contains(got, "paid 2 token(s) to globe") {
		t.Fatalf("paying with the recovered wallet: %s", got)
	}

	// Whoever holds the old file cannot spend it any more.
	time.Sleep(1500 * time.Millisecond) // the gateways' CRL pull interval is 1s
	_, errOut, err := lost.run(t, "get", globe+"/articles/c")
	if err == nil || !strings.Contains(errOut, "403") {
		t.Fatalf("old certificate after recovery: %v %s", err, errOut)
	}
}

func TestHostileWalletUse(t *testing.T) {
	_, wl := binaries(t)
	dir := t.TempDir()

	// A fake site: it challenges, then answers 200 to any payment without a grant.
	var paid atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "PayWord ") {
			paid.Add(1)
			fmt.Fprint(rw, "take the money and run")
			return
		}
		price := uint32(3)
		if strings.HasPrefix(r.URL.Path, "/dear") {
			price = 500
		}
		rw.Header().Set("WWW-Authenticate", payword.Challenge{Vendor: "shady", Price: price, Product: r.URL.Path}.String())
		rw.WriteHeader(http.StatusPaymentRequired)
	}))
	defer site.Close()
	// A wallet with a certificate, made without an agent; its bank only
	// publishes the shady site as vendor shady's origin.
	cli := &walletCLI{bin: wl, path: filepath.Join(dir, "w.hw"), password: "a good password"}
	bank := fakeBank(t, map[string][]string{"shady": {site.URL}})
	makeWalletWithCertificate(t, cli, bank)

	// Price above the limit: refused before anything is spent.
	_, errOut, err := cli.run(t, "get", site.URL+"/dear/x")
	if err == nil || !strings.Contains(errOut, "asks 500 tokens, above your limit per request of 10; nothing was paid") || paid.Load() != 0 {
		t.Fatalf("over the limit: %v %s", err, errOut)
	}
	// 200 without a grant: the wallet keeps the record of it.
	cli.must(t, "get", site.URL+"/a")
	if hist := cli.must(t, "history"); !strings.Contains(hist, "spent-without-grant") || !strings.Contains(hist, "without a grant") {
		t.Fatalf("history: %s", hist)
	}

	good, _ := os.ReadFile(cli.path)
	// Wrong password.
	wrong := *cli
	wrong.password = "not the password"
	if _, errOut, err := wrong.run(t, "balance"); err == nil || !strings.Contains(errOut, "wrong password") {
		t.Fatalf("wrong password: %v %s", err, errOut)
	}
	// Corrupted and truncated files.
	for name, data := range map[string][]byte{
		"corrupted": append(append([]byte(nil), good[:len(good)-10]...), 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'),
		"truncated": good[:20],
	} {
		os.WriteFile(cli.path, data, 0o600)
		_, errOut, err := cli.run(t, "get", site.URL+"/b")
		if err == nil || !(strings.Contains(errOut, "wrong password, or the wallet file was changed") || strings.Contains(errOut, "not a Hashwall wallet")) {
			t.Fatalf("%s file: %v %s", name, err, errOut)
		}
		if after, _ := os.ReadFile(cli.path); string(after) != string(data) {
			t.Fatalf("%s file was overwritten", name)
		}
	}
	if n := paid.Load(); n != 1 {
		t.Fatalf("the site was paid %d times", n)
	}
}

// throwawayKey signs the certificates and documents of tests without an agent.
var throwawayKey = payword.SigningKey{ID: "throwaway", Key: ed25519.NewKeyFromSeed(make([]byte, 32))}

// fakeBank publishes throwawayKey and the given vendors' origins, signed,
// as the agent does; nothing else.
func fakeBank(t *testing.T, origins map[string][]string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(rw http.ResponseWriter, r *http.Request) {
		json.NewEncoder(rw).Encode(map[string]any{"keys": []map[string]any{{"kid": throwawayKey.ID, "public": payword.Bytes(throwawayKey.Public())}}})
	})
	mux.HandleFunc("GET /v1/vendors/{vendor}/origins", func(rw http.ResponseWriter, r *http.Request) {
		list, ok := origins[r.PathValue("vendor")]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		now := time.Now().Unix()
		body, _ := json.Marshal(payword.VendorOrigins{Kind: payword.OriginsKind, Vendor: r.PathValue("vendor"), Origins: list, Time: now, Expires: now + 3600})
		json.NewEncoder(rw).Encode(payword.Seal(throwawayKey, body))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

// makeWalletWithCertificate creates cli's wallet file holding a certificate
// signed by a throwaway agent key, for tests that need no agent.
func makeWalletWithCertificate(t *testing.T, cli *walletCLI, bank string) {
	t.Helper()
	wal, err := wallet.Create(cli.path, []byte(cli.password), bank, "tester")
	if err != nil {
		t.Fatal(err)
	}
	defer wal.Close()
	var k payword.Secret
	rand.Read(k[:])
	c := &payword.Certificate{IssuedAt: time.Now().Unix() - 60, ExpiresAt: time.Now().Unix() + 3600,
		UnitValue: 1, Currency: "EUR", Scope: payword.GenericScope, UserID: "u-test"}
	rand.Read(c.Serial[:])
	copy(c.UserKey[:], wal.PublicKey())
	c.Issue(k, 2, 16)
	raw, err := c.Sign(throwawayKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := wal.AddCertificate(raw, k[:]); err != nil {
		t.Fatal(err)
	}
}
