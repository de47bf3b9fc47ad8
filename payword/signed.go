package payword

import (
	"crypto/ed25519"
	"encoding/json"
)

// Signed is an agent-signed document (the CRL, for one): the body's exact
// bytes travel with the signature, so no canonical re-encoding is needed.
type Signed struct {
	KeyID string `json:"kid"`
	Body  Bytes  `json:"body"`
	Sig   Bytes  `json:"sig"`
}

// signedPrefix separates these signatures from certificate signatures.
const signedPrefix = "hashwall/v1/signed\n"

// Seal signs body with k.
func Seal(k SigningKey, body []byte) Signed {
	return Signed{KeyID: k.ID, Body: body, Sig: ed25519.Sign(k.Key, append([]byte(signedPrefix), body...))}
}

// Open checks the signature against keys and returns the body.
func (s Signed) Open(keys KeySet) ([]byte, error) {
	pub, ok := keys[s.KeyID]
	if !ok {
		return nil, errorf(ErrUnknownKey, "key id %q", s.KeyID)
	}
	if !ed25519.Verify(pub, append([]byte(signedPrefix), s.Body...), s.Sig) {
		return nil, errorf(ErrBadSignature, "signed document")
	}
	return s.Body, nil
}

// CRLEntry revokes one certificate. Seq numbers are assigned by the agent,
// strictly increasing from 1.
type CRLEntry struct {
	Seq    uint64 `json:"seq"`
	Serial Serial `json:"serial"`
	Time   int64  `json:"time"`             // Unix seconds
	Reason string `json:"reason,omitempty"` // e.g. "double-spend", "recovered", "admin"
}

// CRL is one page of the revocation list: the entries with Seq > Since, in
// order, and Last, the highest sequence number the agent has issued.
type CRL struct {
	Since   uint64     `json:"since"`
	Last    uint64     `json:"last"`
	Time    int64      `json:"time"`
	Entries []CRLEntry `json:"entries"`
}

// MaxCRLEntries bounds one page; a client asks again with since = the last
// Seq it got until it reaches Last.
const MaxCRLEntries = 10000

// MaxSignedSize bounds a signed document on the wire.
const MaxSignedSize = 2 << 20

// DecodeCRL opens a signed CRL page and checks its shape.
func DecodeCRL(raw []byte, keys KeySet) (*CRL, error) {
	if len(raw) > MaxSignedSize {
		return nil, errorf(ErrTooLarge, "CRL of %d bytes", len(raw))
	}
	var s Signed
	if !shallowJSON(raw, 1) || json.Unmarshal(raw, &s) != nil {
		return nil, errorf(ErrMalformed, "CRL is not a signed document")
	}
	body, err := s.Open(keys)
	if err != nil {
		return nil, err
	}
	var crl CRL
	if !shallowJSON(body, 3) || json.Unmarshal(body, &crl) != nil {
		return nil, errorf(ErrMalformed, "CRL body is not JSON of the right shape")
	}
	if len(crl.Entries) > MaxCRLEntries {
		return nil, errorf(ErrTooLarge, "CRL page of %d entries", len(crl.Entries))
	}
	prev := crl.Since
	for _, e := range crl.Entries {
		if e.Seq <= prev || e.Seq > crl.Last {
			return nil, errorf(ErrMalformed, "CRL entries out of order")
		}
		prev = e.Seq
	}
	return &crl, nil
}
