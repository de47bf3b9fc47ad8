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

// TestCRLWaitsForFirstSync: likewise, a payment at start waits for the
// revocation list's first sync, not merely for a first attempt that may
// have failed.
func TestCRLWaitsForFirstSync(t *testing.T) {
	c := newCRLSet()
	got := make(chan time.Duration, 1)
	go func() { got <- c.age(time.Now()) }()
	time.Sleep(100 * time.Millisecond) // a failed first attempt, then the next one
	c.markSynced(time.Now())
	select {
	case age := <-got:
		if age > time.Second {
			t.Fatalf("the waiting payment saw the list %v old", age)
		}
	case <-time.After(crlFirstWait + time.Second):
		t.Fatal("the waiting payment did not see the first sync")
	}
}
