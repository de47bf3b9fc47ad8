package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashwall/hashwall/internal/atomicfile"
	"github.com/hashwall/hashwall/payword"
)

// keyFile is the on-disk form of an agent signing key.
type keyFile struct {
	KeyID string        `json:"kid"`
	Seed  payword.Bytes `json:"ed25519_seed"`
}

// Keygen writes a new signing key with id kid to path (mode 0600). It never
// overwrites a file: losing a signing key would orphan every certificate.
func Keygen(path, kid string) (payword.SigningKey, error) {
	if !payword.ValidID(kid) {
		return payword.SigningKey{}, fmt.Errorf("agent: invalid key id %q", kid)
	}
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	body, _ := json.Marshal(keyFile{KeyID: kid, Seed: seed})
	if err := atomicfile.Create(path, append(body, '\n'), 0o600); err != nil {
		return payword.SigningKey{}, fmt.Errorf("agent: %w", err)
	}
	return payword.SigningKey{ID: kid, Key: ed25519.NewKeyFromSeed(seed)}, nil
}

// LoadKeyFile reads a key written by Keygen. It refuses files that others
// can read.
func LoadKeyFile(path string) (payword.SigningKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return payword.SigningKey{}, err
	}
	others := fs.FileMode(0o077)
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" && filepath.Dir(filepath.Clean(path)) == filepath.Clean(dir) {
		// systemd's LoadCredential= file: mode 0400 and an ACL that lets the
		// service's user read it, which shows as the group's read bit.
		others = 0o037
	}
	if st.Mode().Perm()&others != 0 {
		return payword.SigningKey{}, fmt.Errorf("agent: key file %s is readable by others (mode %v); chmod 600", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return payword.SigningKey{}, err
	}
	var kf keyFile
	if err := json.Unmarshal(raw, &kf); err != nil || !payword.ValidID(kf.KeyID) || len(kf.Seed) != ed25519.SeedSize {
		return payword.SigningKey{}, fmt.Errorf("agent: %s is not a hashwall key file", path)
	}
	return payword.SigningKey{ID: kf.KeyID, Key: ed25519.NewKeyFromSeed(kf.Seed)}, nil
}
