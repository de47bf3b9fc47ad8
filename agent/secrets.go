package agent

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/hashwall/hashwall/payword"
)

var b64 = base64.RawURLEncoding

// sealer encrypts certificate secrets with the master key (AES-256-GCM).
// The serial is the additional data, so a ciphertext cannot be moved to
// another certificate's record. Each ciphertext names its key by a short
// fingerprint, so old master keys can still open what they sealed after a
// rotation.
type sealer struct {
	current string                 // fingerprint of the sealing key
	keys    map[string]cipher.AEAD // by fingerprint
}

func newSealer(current []byte, old ...[]byte) (*sealer, error) {
	s := &sealer{keys: map[string]cipher.AEAD{}}
	for i, key := range append([][]byte{current}, old...) {
		if len(key) != 32 {
			return nil, errors.New("agent: master keys must be 32 bytes")
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		fp := sha256.Sum256(append([]byte("hashwall/master-key\n"), key...))
		id := hex.EncodeToString(fp[:4])
		s.keys[id] = aead
		if i == 0 {
			s.current = id
		}
	}
	return s, nil
}

func (s *sealer) seal(serial payword.Serial, k payword.Secret) string {
	return s.sealBytes(serial[:], k[:])
}

var errSecret = errors.New("agent: certificate secret does not decrypt (master key missing or wrong)")

func (s *sealer) open(serial payword.Serial, enc string) (payword.Secret, error) {
	var k payword.Secret
	plain, err := s.openBytes(serial[:], enc)
	if err != nil || len(plain) != len(k) {
		return k, errSecret
	}
	copy(k[:], plain)
	return k, nil
}

// sealBytes encrypts plain bound to ad (what the ciphertext belongs to:
// a serial, a hosted wallet's user), so that it opens for that ad only.
func (s *sealer) sealBytes(ad, plain []byte) string {
	aead := s.keys[s.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	return s.current + "." + b64.EncodeToString(aead.Seal(nonce, nonce, plain, ad))
}

func (s *sealer) openBytes(ad []byte, enc string) ([]byte, error) {
	id, body, _ := strings.Cut(enc, ".")
	aead, ok := s.keys[id]
	if !ok {
		return nil, errSecret
	}
	raw, err := b64.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, errSecret
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], ad)
	if err != nil {
		return nil, errSecret
	}
	return plain, nil
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
