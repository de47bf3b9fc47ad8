package agent

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"

	"github.com/hashwall/hashwall/payword"
)

var b64 = base64.RawURLEncoding

// sealer encrypts certificate secrets with the master key (AES-256-GCM). The
// serial is the additional data, so a ciphertext cannot be moved to another
// certificate's record.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(serial payword.Serial, k payword.Secret) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(k)+s.aead.Overhead())
	rand.Read(nonce)
	return b64.EncodeToString(s.aead.Seal(nonce, nonce, k[:], serial[:]))
}

var errSecret = errors.New("agent: certificate secret does not decrypt (wrong master key?)")

func (s *sealer) open(serial payword.Serial, enc string) (payword.Secret, error) {
	var k payword.Secret
	raw, err := b64.DecodeString(enc)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return k, errSecret
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], serial[:])
	if err != nil || len(plain) != len(k) {
		return k, errSecret
	}
	copy(k[:], plain)
	return k, nil
}

// newToken returns a high-entropy bearer token and the hash under which it
// is stored: a plain SHA-256 suffices for 256 random bits, and lookups by
// hash leak nothing about the token through timing.
func newToken(prefix string) (token, hash string) {
	var b [32]byte
	rand.Read(b[:])
	token = prefix + b64.EncodeToString(b[:])
	return token, tokenHash(token)
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
