package wallet

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/hashwall/hashwall/agentapi"
)

// Bank returns a client of the wallet's bank, the agent it was created
// with, without credentials: WithPassword(w.User(), password) adds them.
// hc nil: agentapi's default client.
func (w *Wallet) Bank(hc *http.Client) *agentapi.Client {
	return agentapi.NewClient(w.agentURL(), hc)
}

// Buy buys a certificate of at least tokens tokens made out to the wallet's
// key and stores it; scope is "" (any vendor) or one vendor's id. bank
// carries the account's credentials.
func (w *Wallet) Buy(ctx context.Context, bank *agentapi.Client, tokens int, scope string) (*agentapi.Bundle, error) {
	b, err := bank.Buy(ctx, int64(tokens), w.publicKey(), scope)
	if err != nil {
		return nil, err
	}
	if err := w.addBundle(b, false); err != nil {
		return nil, fmt.Errorf("the agent sold certificate %s but the wallet cannot keep it: %w", b.Serial, err)
	}
	return b, nil
}

// Recover has the bank revoke every certificate of the account and issue
// one to the wallet's key worth what it credits at once (see
// agentapi.Recovery); the wallet stops spending the certificates it holds
// and stores the new one. bank carries the account's credentials.
func (w *Wallet) Recover(ctx context.Context, bank *agentapi.Client) (*agentapi.Recovery, error) {
	rec, err := bank.Recover(ctx, w.publicKey())
	if err != nil {
		return nil, err
	}
	if rec.Bundle == nil {
		return rec, w.update(func(st *fileState) error {
			st.revokeAll()
			return nil
		})
	}
	if err := w.addBundle(rec.Bundle, true); err != nil {
		return nil, fmt.Errorf("the agent recovered certificate %s but the wallet cannot keep it: %w", rec.Bundle.Serial, err)
	}
	return rec, nil
}

func (w *Wallet) addBundle(b *agentapi.Bundle, revokeHeld bool) error {
	raw, err := base64.RawURLEncoding.DecodeString(b.Certificate)
	if err != nil {
		return fmt.Errorf("the agent sent a bad certificate: %w", err)
	}
	k, err := base64.RawURLEncoding.DecodeString(b.Secret)
	if err != nil {
		return fmt.Errorf("the agent sent a bad certificate secret: %w", err)
	}
	return w.addCertificate(raw, k, revokeHeld)
}

func (st *fileState) revokeAll() {
	for _, c := range st.Certs {
		c.Revoked = true
	}
}
