package wallet

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
)

// sellingBank sells certificates of 2 segments of 8 tokens as the agent
// does, made out to the key asked for, or to another key when wrongKey is
// set; a recovery answers with a certificate when withBundle is set.
type sellingBank struct {
	*httptest.Server
	bank                 *paytest.Bank
	seed                 byte
	wrongKey, withBundle bool
}

func newSellingBank(t *testing.T) *sellingBank {
	b := &sellingBank{bank: paytest.NewBank(t)}
	bundle := func(pub []byte) *agentapi.Bundle {
		b.seed++
		o := paytest.Options{Seed: b.seed, Segments: 2, SegmentLen: 8, UserKey: pub}
		if b.wrongKey {
			o.UserKey = nil
		}
		c := b.bank.Issue(t, o)
		return &agentapi.Bundle{Serial: c.Serial.String(), Certificate: base64.RawURLEncoding.EncodeToString(c.Raw()),
			Secret: base64.RawURLEncoding.EncodeToString(c.K[:]), Segments: 2, SegmentLen: 8, Tokens: c.Tokens()}
	}
	key := func(r *http.Request, body any) []byte {
		json.NewDecoder(r.Body).Decode(body)
		var pub string
		switch q := body.(type) {
		case *agentapi.Purchase:
			pub = q.PublicKey
		case *agentapi.Recover:
			pub = q.PublicKey
		}
		raw, _ := base64.RawURLEncoding.DecodeString(pub)
		return raw
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/certificates", func(w http.ResponseWriter, r *http.Request) {
		if user, _, _ := r.BasicAuth(); user != "alice" {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(agentapi.Error{Message: "who?", Code: agentapi.CodeInvalidCredentials})
			return
		}
		json.NewEncoder(w).Encode(bundle(key(r, &agentapi.Purchase{})))
	})
	mux.HandleFunc("POST /v1/certificates/recover", func(w http.ResponseWriter, r *http.Request) {
		rec := agentapi.Recovery{RecoveredValue: 16, PendingCredit: 4, CreditAt: 1}
		if pub := key(r, &agentapi.Recover{}); b.withBundle {
			rec.Bundle = bundle(pub)
		}
		json.NewEncoder(w).Encode(rec)
	})
	b.Server = httptest.NewServer(mux)
	t.Cleanup(b.Close)
	return b
}

func (b *sellingBank) wallet(t *testing.T) *Wallet {
	t.Helper()
	w, _ := testWallet(t)
	w.st.Agent = b.URL
	return w
}

func TestBuyStoresTheCertificate(t *testing.T) {
	b := newSellingBank(t)
	w := b.wallet(t)
	bundle, err := w.Buy(t.Context(), w.Bank(nil).WithPassword(w.User(), "pw"), 16, "")
	if err != nil {
		t.Fatal(err)
	}
	if bal := w.Balance(); len(bal) != 1 || bal[0].Serial != bundle.Serial || bal[0].Spendable() != 16 {
		t.Fatalf("balance after buying: %+v", bal)
	}
	if h := w.History(); len(h) != 1 || h[0].Kind != "bought" || h[0].Amount != 16 {
		t.Fatalf("history: %+v", h)
	}
	// The agent's refusal comes back as its error, and nothing is stored.
	_, err = w.Buy(t.Context(), w.Bank(nil).WithPassword("mallory", "pw"), 16, "")
	if ae, ok := errors.AsType[*agentapi.Error](err); !ok || ae.Code != agentapi.CodeInvalidCredentials {
		t.Fatalf("refused purchase: %v", err)
	}
	// A certificate made out to another key is not kept.
	b.wrongKey = true
	if _, err := w.Buy(t.Context(), w.Bank(nil).WithPassword(w.User(), "pw"), 16, ""); err == nil {
		t.Fatal("a certificate of another key was accepted")
	}
	if n := len(w.Balance()); n != 1 {
		t.Fatalf("%d certificates after the refusals", n)
	}
}

func TestRecoverRevokesAndStores(t *testing.T) {
	b := newSellingBank(t)
	w := b.wallet(t)
	bank := w.Bank(nil).WithPassword(w.User(), "pw")
	if _, err := w.Buy(t.Context(), bank, 16, ""); err != nil {
		t.Fatal(err)
	}
	b.withBundle = true
	rec, err := w.Recover(t.Context(), bank)
	if err != nil || rec.Bundle == nil || rec.PendingCredit != 4 {
		t.Fatalf("recover: %+v %v", rec, err)
	}
	bal := w.Balance()
	if len(bal) != 2 || !bal[0].Revoked || bal[0].Spendable() != 0 || bal[1].Revoked || bal[1].Serial != rec.Bundle.Serial {
		t.Fatalf("balance after the recovery: %+v", bal)
	}
	// Nothing credited at once: no new certificate, the held ones revoked.
	b.withBundle = false
	if rec, err := w.Recover(t.Context(), bank); err != nil || rec.Bundle != nil {
		t.Fatalf("recover without a bundle: %+v %v", rec, err)
	}
	for _, c := range w.Balance() {
		if !c.Revoked {
			t.Fatalf("certificate %s still spendable", c.Serial)
		}
	}
}
