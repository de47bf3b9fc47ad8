package paywall

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// TestVerifierWaitsForKeys: a gateway just started whose first fetch of
// the agent's keys failed makes a payment wait for the next one rather
// than refuse it; with no keys at all, it refuses when its time is up.
func TestVerifierWaitsForKeys(t *testing.T) {
	k := newKeyStore(keyDeps{log: zap.NewNop()}, nil)
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.verifier(ctx); !errors.Is(err, errUnavailable) {
		t.Fatalf("no keys: %v, want unavailable", err)
	}

	got := make(chan error, 1)
	go func() {
		_, err := k.verifier(t.Context())
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // the sync worker's next try
	k.set(payword.KeySet{"agent-1": pub})
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("keys learnt while the payment waited: %v", err)
		}
	case <-time.After(storeTimeout):
		t.Fatal("the waiting payment did not see the keys")
	}
}
