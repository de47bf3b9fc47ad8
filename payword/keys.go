package payword

import (
	"crypto/ed25519"
	"fmt"
)

// KeySet maps key ids to the agent public keys a verifier trusts. Several keys
// at once let the agent rotate its signing key without a flag day.
type KeySet map[string]ed25519.PublicKey

// Add trusts pub under kid.
func (ks KeySet) Add(kid string, pub ed25519.PublicKey) error {
	if !ValidID(kid) {
		return fmt.Errorf("payword: invalid key id %q", kid)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("payword: key %s: public key must be %d bytes", kid, ed25519.PublicKeySize)
	}
	ks[kid] = pub
	return nil
}

// SigningKey is an agent private key with its key id.
type SigningKey struct {
	ID  string
	Key ed25519.PrivateKey
}

// Public returns the key's public half.
func (k SigningKey) Public() ed25519.PublicKey { return k.Key.Public().(ed25519.PublicKey) }
