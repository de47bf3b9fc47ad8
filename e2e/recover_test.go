package e2e

import (
	"crypto/ed25519"
	"encoding/base64"
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

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
	"github.com/hashwall/hashwall/wallet"
)

// TestRecoverLostWallet: a reader loses the wallet file; the agent revokes
// the old certificate at once and credits its unclaimed tokens back when
// the report window ends (claims gateways still hold would be paid from
// them first); the reader buys a new certificate with them. The old
// certificate is refused by gateways within a second.
func TestRecoverLostWallet(t *testing.T) {
	t.Parallel() // its own Redis, agent, gateway and ports
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
		a, err := w.agent().WithPassword("alice", alice.password).Me(t.Context())
		if err != nil {
			t.Fatalf("/v1/me: %v", err)
		}
		return a.Balance, a.PendingCredit
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
	t.Parallel()
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

// fakeBank is a bank without an agent: it publishes paytest's bank key and
// the given vendors' origins, signed, as the agent does, and sells a
// certificate of 2 segments of 16 tokens to any key; nothing else.
func fakeBank(t *testing.T, origins map[string][]string) string {
	t.Helper()
	bank := paytest.NewBank(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(rw http.ResponseWriter, r *http.Request) {
		json.NewEncoder(rw).Encode(agentapi.Keys{Keys: []agentapi.Key{{KeyID: bank.Key.ID, Public: payword.Bytes(bank.Key.Public())}}})
	})
	mux.HandleFunc("GET /v1/vendors/{vendor}/origins", func(rw http.ResponseWriter, r *http.Request) {
		list, ok := origins[r.PathValue("vendor")]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		now := time.Now().Unix()
		body, _ := json.Marshal(payword.VendorOrigins{Kind: payword.OriginsKind, Vendor: r.PathValue("vendor"), Origins: list, Time: now, Expires: now + 3600})
		json.NewEncoder(rw).Encode(payword.Seal(bank.Key, body))
	})
	mux.HandleFunc("POST /v1/certificates", func(rw http.ResponseWriter, r *http.Request) {
		var q agentapi.Purchase
		json.NewDecoder(r.Body).Decode(&q)
		pub, err := base64.RawURLEncoding.DecodeString(q.PublicKey)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			http.Error(rw, `{"error":"bad key","code":"invalid_public_key"}`, http.StatusBadRequest)
			return
		}
		c := bank.Issue(t, paytest.Options{Segments: 2, SegmentLen: 16, Lifetime: time.Hour, UserKey: pub})
		json.NewEncoder(rw).Encode(agentapi.Bundle{Serial: c.Serial.String(),
			Certificate: base64.RawURLEncoding.EncodeToString(c.Raw()), Secret: base64.RawURLEncoding.EncodeToString(c.K[:]),
			Segments: 2, SegmentLen: 16, Tokens: c.Tokens(), Currency: c.Currency, ExpiresAt: c.ExpiresAt})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

// makeWalletWithCertificate creates cli's wallet file at bank (a fakeBank)
// and buys a certificate there.
func makeWalletWithCertificate(t *testing.T, cli *walletCLI, bank string) {
	t.Helper()
	wal, err := wallet.Create(cli.path, []byte(cli.password), bank, "tester")
	if err != nil {
		t.Fatal(err)
	}
	defer wal.Close()
	if _, err := wal.Buy(t.Context(), wal.Bank(nil).WithPassword("tester", cli.password), 32, ""); err != nil {
		t.Fatal(err)
	}
}
