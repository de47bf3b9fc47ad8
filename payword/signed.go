package payword

import (
	"crypto/ed25519"
	"encoding/json"
	"time"
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

// open checks the signature against keys and returns the body.
func (s Signed) open(keys KeySet) ([]byte, error) {
	pub, ok := keys[s.KeyID]
	if !ok {
		return nil, errorf(ErrUnknownKey, "key id %q", s.KeyID)
	}
	if !ed25519.Verify(pub, append([]byte(signedPrefix), s.Body...), s.Sig) {
		return nil, errorf(ErrBadSignature, "signed document")
	}
	return s.Body, nil
}

// keysType is the type of a key announcement body.
const keysType = "keys"

// keyEntry is one announced agent key.
type keyEntry struct {
	KeyID  string `json:"kid"`
	Public Bytes  `json:"public"`
}

// keyDoc is the agent's key announcement: every key it currently uses.
// The agent signs it with each of those keys, so a verifier that trusts any
// one of them learns the others (a rotation: the new key is announced
// under the old one's signature).
type keyDoc struct {
	Type string     `json:"type"`
	Time int64      `json:"time"`
	Keys []keyEntry `json:"keys"`
}

// Bounds of a key announcement.
const (
	MaxAnnouncedKeys = 16
	MaxKeyDocSize    = 64 << 10
)

// AnnounceKeys signs the list of keys with each of them.
func AnnounceKeys(keys []SigningKey, now time.Time) []Signed {
	doc := keyDoc{Type: keysType, Time: now.Unix(), Keys: make([]keyEntry, 0, len(keys))}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, keyEntry{KeyID: k.ID, Public: Bytes(k.Public())})
	}
	body, _ := json.Marshal(doc)
	out := make([]Signed, 0, len(keys))
	for _, k := range keys {
		out = append(out, Seal(k, body))
	}
	return out
}

// OpenKeys returns the keys announced by the documents of docs signed by a
// key of trusted, trusted ones included. With an empty trusted set
// (bootstrap, which a caller may only do over an authenticated channel) a
// document counts if it is signed by a key it announces itself. Documents
// signed by other keys are ignored; a malformed one signed by a trusted
// key is an error.
func OpenKeys(docs []Signed, trusted KeySet) (KeySet, error) {
	if len(docs) > MaxAnnouncedKeys {
		return nil, errorf(ErrTooLarge, "%d key announcements", len(docs))
	}
	out := KeySet{}
	for kid, pub := range trusted {
		out[kid] = pub
	}
	for _, s := range docs {
		if len(s.Body) > MaxKeyDocSize {
			return nil, errorf(ErrTooLarge, "key announcement of %d bytes", len(s.Body))
		}
		if len(trusted) > 0 {
			if _, err := s.open(trusted); err != nil {
				continue // someone else's word
			}
		}
		var doc keyDoc
		if !shallowJSON(s.Body, 3) || json.Unmarshal(s.Body, &doc) != nil || doc.Type != keysType ||
			len(doc.Keys) == 0 || len(doc.Keys) > MaxAnnouncedKeys {
			if len(trusted) > 0 {
				return nil, errorf(ErrMalformed, "key announcement is not JSON of the right shape")
			}
			continue
		}
		announced := KeySet{}
		for _, k := range doc.Keys {
			if err := announced.Add(k.KeyID, ed25519.PublicKey(k.Public)); err != nil {
				if len(trusted) > 0 {
					return nil, errorf(ErrMalformed, "announced key: %v", err)
				}
				announced = nil
				break
			}
		}
		if len(trusted) == 0 {
			if _, err := s.open(announced); err != nil {
				continue // not signed by a key it announces
			}
		}
		for kid, pub := range announced {
			if old, ok := out[kid]; ok && !old.Equal(pub) {
				return nil, errorf(ErrBadSignature, "key id %q announced with another key", kid)
			}
			out[kid] = pub
		}
	}
	return out, nil
}

// openSigned decodes raw, at most max bytes, as a signed document and opens
// it with keys; what names the document in errors.
func openSigned(raw []byte, max int, what string, keys KeySet) ([]byte, error) {
	if len(raw) > max {
		return nil, errorf(ErrTooLarge, "%s of %d bytes", what, len(raw))
	}
	var s Signed
	if !shallowJSON(raw, 1) || json.Unmarshal(raw, &s) != nil {
		return nil, errorf(ErrMalformed, "%s is not a signed document", what)
	}
	return s.open(keys)
}
