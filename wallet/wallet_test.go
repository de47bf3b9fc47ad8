package wallet

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// Tests use a cheap KDF; BenchmarkUnlock measures the real one.
	defaultKDF = kdfParams{Time: 1, Memory: 8 << 10, Threads: 1}
	bank = newFakeBank()
	code := m.Run()
	bank.Close()
	os.Exit(code)
}

var password = []byte("correct horse")

func testWallet(t *testing.T) (*Wallet, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wallet.hw")
	w, err := Create(path, password, bank.URL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

func reopen(t *testing.T, w *Wallet, path string) *Wallet {
	t.Helper()
	w.Close()
	w2, err := Open(path, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w2.Close() })
	return w2
}

// snapshot returns a copy of w's state.
func (w *Wallet) snapshot() fileState {
	w.mu.Lock()
	defer w.mu.Unlock()
	raw, _ := json.Marshal(&w.st)
	var st fileState
	_ = json.Unmarshal(raw, &st)
	return st
}

func get(t testing.TB, tr *Transport, url string) (string, error) {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), errors.New(resp.Status)
	}
	return string(b), nil
}

func TestFileIsEncryptedAndSurvivesReopen(t *testing.T) {
	w, path := testWallet(t)
	c := issue(t, w, 4, 8, "*")
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("alice")) || bytes.Contains(raw, c.Raw()[:40]) {
		t.Fatal("the wallet file holds plaintext")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("wallet file mode %v", fi.Mode())
	}
	w = reopen(t, w, path)
	if b := w.Balance(); len(b) != 1 || b[0].Total != 32 || b[0].Free != 32 {
		t.Fatalf("balance after reopen: %+v", b)
	}
}

func TestHostileWalletFiles(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 2, 4, "*")
	w.Close()
	good, _ := os.ReadFile(path)
	flip := append([]byte(nil), good...)
	flip[len(flip)-5] ^= 1
	param := append([]byte(nil), good...)
	param[len(fileMagic)+saltLen+3]++ // argon2 time
	huge := append([]byte(nil), good...)
	huge[len(fileMagic)+saltLen+4] = 0xff // argon2 memory
	tests := []struct {
		name     string
		data     []byte
		password []byte
		want     error
	}{
		{"wrong password", good, []byte("wrong"), ErrWrongPassword},
		{"flipped byte", flip, password, ErrWrongPassword},
		{"changed KDF parameter", param, password, ErrWrongPassword},
		{"absurd KDF memory", huge, password, ErrNotWallet},
		{"truncated", good[:len(good)/2], password, ErrWrongPassword},
		{"truncated header", good[:10], password, ErrNotWallet},
		{"empty", nil, password, ErrNotWallet},
		{"not a wallet", []byte("{\"version\":1}"), password, ErrNotWallet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path, tt.password); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tt.data) {
				t.Fatal("a failed open changed the file")
			}
		})
	}
}

func TestOneProcessAtATime(t *testing.T) {
	w, path := testWallet(t)
	if _, err := Open(path, password); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	w.Close()
	w2, err := Open(path, password)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	w2.Close()
	if _, err := Create(path, password, "", "x"); !errors.Is(err, ErrExists) {
		t.Fatalf("create over an existing wallet: %v", err)
	}
}

func TestPayThenReuseGrant(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 4, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 2, "/b": 3})
	tr := &Transport{Wallet: w}
	for range 3 {
		body, err := get(t, tr, v.URL+"/a")
		if err != nil || body != "content of /a" {
			t.Fatalf("get: %q %v", body, err)
		}
	}
	if v.accepted != 2 {
		t.Fatalf("vendor accepted %d tokens for three reads under one grant, want 2", v.accepted)
	}
	if _, err := get(t, tr, v.URL+"/b"); err != nil {
		t.Fatal(err)
	}
	b := w.Balance()[0]
	if b.Spent != 5 || b.Pending != 0 || b.Bound["planet"] != 3 || b.Free != 24 {
		t.Fatalf("balance %+v", b)
	}
	if body, err := get(t, tr, v.URL+"/free"); err != nil || body != "free" {
		t.Fatal("free page")
	}
}

func TestTwoVendorsNeverShareASegment(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 3, 4, "*")
	a := newFakeVendor(t, "alpha", map[string]uint32{"/x": 3})
	b := newFakeVendor(t, "beta", map[string]uint32{"/x": 3})
	tr := &Transport{Wallet: w}
	for _, v := range []*fakeVendor{a, b} {
		if _, err := get(t, tr, v.URL+"/x"); err != nil {
			t.Fatal(err)
		}
	}
	st := w.snapshot()
	if len(st.Certs[0].Segs) != 2 || st.Certs[0].Segs[0].Vendor == st.Certs[0].Segs[1].Vendor {
		t.Fatalf("segments %+v", st.Certs[0].Segs)
	}
	// Alpha's segment has 1 token left: too few for 3, so alpha gets the
	// last fresh segment, and after that nothing is left for it.
	a.prices["/y"], a.prices["/z"] = 3, 3
	if _, err := get(t, tr, a.URL+"/y"); err != nil {
		t.Fatal(err)
	}
	_, err := get(t, tr, a.URL+"/z")
	if !errors.Is(err, ErrNoTokens) || !strings.Contains(err.Error(), "buy") {
		t.Fatalf("out of tokens: %v", err)
	}
	if a.accepted != 6 || b.accepted != 3 {
		t.Fatalf("accepted %d and %d", a.accepted, b.accepted)
	}
}

func TestLostAnswerIsRetriedBeforeSpendingAgain(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 2, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 2, "/b": 2})
	v.dropAfterAccept = 100 // every attempt of the first payment loses its answer
	_, err := get(t, &Transport{Wallet: w}, v.URL+"/a")
	var pe *PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("lost answer: %v", err)
	}
	if len(w.PendingPayments()) != 1 {
		t.Fatal("the payment is not in the journal")
	}
	// The process dies; a new one opens the wallet and reads another article.
	v.mu.Lock()
	v.dropAfterAccept = 0
	v.mu.Unlock()
	w = reopen(t, w, path)
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/b"); err != nil {
		t.Fatal(err)
	}
	if len(w.PendingPayments()) != 0 {
		t.Fatal("the journal was not settled")
	}
	if v.accepted != 4 {
		t.Fatalf("vendor accepted %d tokens, want 4: the retried payment counted once", v.accepted)
	}
	// The retried payment's grant was kept: /a is not paid again.
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil || v.accepted != 4 {
		t.Fatalf("re-read of /a: %v, accepted %d", err, v.accepted)
	}
	if b := w.Balance()[0]; b.Spent != 4 {
		t.Fatalf("spent %d", b.Spent)
	}
}

func TestRefusalReturnsTokens(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 2})
	v.refuse = true
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err == nil {
		t.Fatal("refused payment reported as success")
	}
	b := w.Balance()[0]
	if b.Spent != 0 || b.Pending != 0 || b.Bound["planet"] != 8 {
		t.Fatalf("tokens not returned: %+v", b)
	}
	// The segment stays bound to that vendor; the next payment there uses it.
	v.refuse = false
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil || v.accepted != 2 {
		t.Fatalf("pay after refusal: %v", err)
	}
	if len(w.snapshot().Certs[0].Segs) != 1 {
		t.Fatal("a second segment was bound")
	}
}

func TestPriceAboveLimitIsNotPaid(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 64, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/dear": 50, "/ok": 5})
	_, err := get(t, &Transport{Wallet: w}, v.URL+"/dear")
	var ol *OverLimitError
	if !errors.As(err, &ol) || ol.Price != 50 {
		t.Fatalf("over the default limit: %v", err)
	}
	if _, err := get(t, &Transport{Wallet: w, MaxPrice: 4}, v.URL+"/ok"); !errors.As(err, &ol) {
		t.Fatalf("over --max-price: %v", err)
	}
	if v.accepted != 0 || w.Balance()[0].Spent != 0 || len(w.snapshot().Certs[0].Segs) != 0 {
		t.Fatal("something was spent or bound")
	}
	if _, err := get(t, &Transport{Wallet: w, MaxPrice: 50}, v.URL+"/dear"); err != nil {
		t.Fatalf("within a raised limit: %v", err)
	}
}

func TestVendorAnsweringWithoutGrant(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 2})
	v.noGrant = true
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	st := w.snapshot()
	if last := st.History[len(st.History)-1]; last.Kind != "spent-without-grant" || len(st.Grants) != 0 {
		t.Fatalf("history %+v", last)
	}
}

func TestSpecificCertificateOnlyAtItsVendor(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 8, "planet")
	other := newFakeVendor(t, "other", map[string]uint32{"/a": 1})
	if _, err := get(t, &Transport{Wallet: w}, other.URL+"/a"); !errors.Is(err, ErrNoTokens) {
		t.Fatalf("specific certificate at another vendor: %v", err)
	}
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 1})
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil {
		t.Fatal(err)
	}
}

func TestExpiredGrantIsDroppedAndRepaid(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 1})
	tr := &Transport{Wallet: w}
	if _, err := get(t, tr, v.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	clear(v.grants) // the vendor no longer honours the grant
	v.mu.Unlock()
	if _, err := get(t, tr, v.URL+"/a"); err != nil || v.accepted != 2 {
		t.Fatalf("re-pay after grant loss: %v", err)
	}
}

// TestDroppedConnectionsAtEachStep cuts the connection before the vendor
// sees the payment, and after it accepted it, both beyond the transport's
// own retries: the payment stays journaled, is sent again unchanged, and is
// paid exactly once.
func TestDroppedConnectionsAtEachStep(t *testing.T) {
	for _, step := range []string{"before the vendor sees it", "after the vendor accepted it"} {
		t.Run(step, func(t *testing.T) {
			w, path := testWallet(t)
			issue(t, w, 2, 8, "*")
			v := newFakeVendor(t, "planet", map[string]uint32{"/a": 2, "/b": 3})
			v.mu.Lock()
			if step == "before the vendor sees it" {
				v.dropBeforeSeen = 100
			} else {
				v.dropAfterAccept = 100
			}
			v.mu.Unlock()
			var pe *PendingError
			if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); !errors.As(err, &pe) {
				t.Fatalf("dropped connection: %v", err)
			}
			// Refused elsewhere meanwhile: nothing else is spent at this vendor.
			if _, err := w.reserve("planet", "/b", v.URL+"/b", 3); !errors.Is(err, ErrPending) {
				t.Fatalf("reserving while a payment is pending: %v", err)
			}
			v.mu.Lock()
			v.dropBeforeSeen, v.dropAfterAccept = 0, 0
			v.mu.Unlock()
			w = reopen(t, w, path)
			if _, err := get(t, &Transport{Wallet: w}, v.URL+"/b"); err != nil {
				t.Fatal(err)
			}
			if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil {
				t.Fatal(err)
			}
			b := w.Balance()[0]
			if v.accepted != 5 || b.Spent != 5 || b.Pending != 0 {
				t.Fatalf("vendor accepted %d, wallet spent %d (pending %d); want 5 and 5", v.accepted, b.Spent, b.Pending)
			}
		})
	}
}

func TestExportImport(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 8, "*")
	if _, err := w.reserve("planet", "/a", "http://x/a", 2); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exported := filepath.Join(dir, "backup.hw")
	if err := w.Export(exported); err != nil {
		t.Fatal(err)
	}
	if err := Import(exported, filepath.Join(dir, "other.hw"), []byte("wrong")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("import with a wrong password: %v", err)
	}
	dst := filepath.Join(dir, "restored.hw")
	if err := Import(exported, dst, password); err != nil {
		t.Fatal(err)
	}
	if err := Import(exported, dst, password); !errors.Is(err, ErrExists) {
		t.Fatalf("import over a wallet: %v", err)
	}
	r, err := Open(dst, password)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if p := r.PendingPayments(); len(p) != 1 || r.Balance()[0].Pending != 2 {
		t.Fatalf("the export lost the journaled payment: %+v", p)
	}
}

// A paid page that turns out missing upstream was still paid: the receipt,
// not the status, decides.
// A voided payment (a rule-priced page the site did not serve) stays
// spent, and the history says its value goes back to the reader's account;
// a payment not charged (an upstream-priced page missing) returns its
// tokens, even when the site's answer is a 5xx.
func TestVoidedAndNotCharged(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/gone": 2, "/a": 1, "/absent": 2})
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/gone"); err == nil {
		t.Fatal("a 404 reported as success")
	}
	st := w.snapshot()
	if b := w.Balance()[0]; b.Spent != 2 || b.Pending != 0 {
		t.Fatalf("balance after a voided 404: %+v", b)
	}
	if e := st.History[len(st.History)-1]; e.Kind != "spent-without-grant" || !strings.Contains(e.Note, "voided") {
		t.Fatalf("voided payment recorded as %+v", e)
	}
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/absent"); err == nil {
		t.Fatal("a 404 reported as success")
	}
	if b := w.Balance()[0]; b.Spent != 2 || b.Pending != 0 {
		t.Fatalf("tokens of a payment not charged kept as spent: %+v", b)
	}
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil || v.accepted != 3 {
		t.Fatalf("next payment: %v (accepted %d)", err, v.accepted)
	}
}

// When the vendor says the tokens were spent there already, they are gone:
// the wallet moves past them instead of offering them again.
func TestReplayVerdictMovesOn(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 2, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 2, "/b": 2})
	p, err := w.reserve("planet", "/a", v.URL+"/a", 2)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, v.URL+"/a", nil)
	req.Header.Set("Authorization", p.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("direct payment: %v", err)
	}
	resp.Body.Close()
	// The wallet wrongly believes the vendor refused it: the tokens return.
	if err := w.settle(p.ID, refused, nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/b"); err == nil {
		t.Fatal("a replayed payment was served")
	}
	if st := w.snapshot(); st.History[len(st.History)-1].Kind != "spent-without-grant" {
		t.Fatalf("replay verdict recorded as %q", st.History[len(st.History)-1].Kind)
	}
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/b"); err != nil || v.accepted != 4 {
		t.Fatalf("the next payment: %v (accepted %d)", err, v.accepted)
	}
}
