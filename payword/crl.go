package payword

import (
	"encoding/json"
	"time"
)

// CRLEntry revokes one certificate. Seq numbers are assigned by the agent,
// strictly increasing from 1.
type CRLEntry struct {
	Seq    uint64 `json:"seq"`
	Serial Serial `json:"serial"`
	Time   int64  `json:"time"`             // Unix seconds
	Exp    int64  `json:"exp,omitempty"`    // the certificate's expires_at; 0 = unknown (kept)
	Reason string `json:"reason,omitempty"` // e.g. "double-spend", "recovered", "admin"
}

// CRLKeep is how long an entry outlives its certificate: a certificate is
// refused once expired whatever the list says, and the margin covers clocks
// that run behind. After it, agent, vendor stores and gateways drop it.
const CRLKeep = time.Hour

// Expired reports whether e may be dropped at now.
func (e CRLEntry) Expired(now time.Time) bool {
	return e.Exp > 0 && now.Unix() >= e.Exp+int64(CRLKeep/time.Second)
}

// CRLType is the type of a CRL page body.
const CRLType = "crl"

// CRL is one signed page of the revocation list. It binds the question it
// answers (Since), the agent's head (Last, the highest sequence number it
// has issued) and its signing time, so that a page cannot be replayed as
// the answer to another question or as a recent one. Entries are those
// with Since < Seq <= Next, in order (expired ones are pruned, so Seq may
// skip); Next == Last means the client is complete as of Time, otherwise
// it asks again with since = Next. A since beyond the head is answered
// with Next = Since > Last and no entries: the client sees its head went
// back.
type CRL struct {
	Type    string     `json:"type"`
	Since   uint64     `json:"since"`
	Next    uint64     `json:"next"`
	Last    uint64     `json:"last"`
	Time    int64      `json:"time"`
	Entries []CRLEntry `json:"entries"`
}

// Complete reports whether the page reaches the agent's head.
func (c *CRL) Complete() bool { return c.Next == c.Last }

// MaxCRLEntries bounds one page (about 150 kB on the wire).
const MaxCRLEntries = 1000

// MaxSignedSize bounds a signed document on the wire.
const MaxSignedSize = 2 << 20

// OpenCRL opens a signed CRL page and checks its shape.
func OpenCRL(raw []byte, keys KeySet) (*CRL, error) {
	body, err := openSigned(raw, MaxSignedSize, "CRL", keys)
	if err != nil {
		return nil, err
	}
	var crl CRL
	if !shallowJSON(body, 3) || json.Unmarshal(body, &crl) != nil || crl.Type != CRLType {
		return nil, errorf(ErrMalformed, "CRL body is not JSON of the right shape")
	}
	if len(crl.Entries) > MaxCRLEntries {
		return nil, errorf(ErrTooLarge, "CRL page of %d entries", len(crl.Entries))
	}
	// Next > Last only on the empty answer to a since beyond the head.
	if crl.Since > crl.Next || crl.Next > crl.Last && (crl.Next != crl.Since || len(crl.Entries) > 0) || crl.Time <= 0 {
		return nil, errorf(ErrMalformed, "CRL page covers (%d, %d] of %d", crl.Since, crl.Next, crl.Last)
	}
	prev := crl.Since
	for _, e := range crl.Entries {
		if e.Seq <= prev || e.Seq > crl.Next {
			return nil, errorf(ErrMalformed, "CRL entries out of order")
		}
		prev = e.Seq
	}
	return &crl, nil
}

// CRLCursor is what a CRL client holds between pages: the since it asks
// with, the highest head and the newest signing time it has accepted.
type CRLCursor struct {
	Since uint64 `json:"since"`
	Last  uint64 `json:"last"`
	Time  int64  `json:"time"`
}

// MaxClockSkew is how far ahead of a verifier's clock a signing time may
// be (the certificate's issued_at allows the same).
const MaxClockSkew = 300 * time.Second

// Accept checks that page c answers the question cur asks, at now, with
// pages older than maxAge refused, and returns the cursor after it:
//
//   - c.Since must be cur.Since (a page answering another question is a
//     replay, even one signed by the agent);
//   - c.Last must not be below cur.Last (the head never goes back);
//   - c.Time must not be below cur.Time (no older page after a newer one),
//     nor more than MaxClockSkew ahead of now, nor older than maxAge
//     (signing times are whole seconds: a page may be up to one second
//     older than it looks).
func (cur CRLCursor) Accept(c *CRL, now time.Time, maxAge time.Duration) (CRLCursor, error) {
	switch {
	case c.Since != cur.Since:
		return cur, errorf(ErrStale, "CRL page answers since=%d, asked since=%d", c.Since, cur.Since)
	case c.Last < cur.Last:
		return cur, errorf(ErrStale, "CRL head went back from %d to %d", cur.Last, c.Last)
	case c.Time < cur.Time:
		return cur, errorf(ErrStale, "CRL page signed at %d, after one signed at %d", c.Time, cur.Time)
	case time.Unix(c.Time, 0).After(now.Add(MaxClockSkew)):
		return cur, errorf(ErrStale, "CRL page signed in the future (%d)", c.Time)
	case now.Sub(time.Unix(c.Time+1, 0)) > maxAge:
		return cur, errorf(ErrStale, "CRL page signed %v ago", now.Sub(time.Unix(c.Time, 0)).Round(time.Second))
	}
	return CRLCursor{Since: c.Next, Last: c.Last, Time: c.Time}, nil
}

// FreshAt is the instant a complete page vouches for: its signing time,
// rounded up to the second it was truncated from, and never after now.
func (c *CRL) FreshAt(now time.Time) time.Time {
	t := time.Unix(c.Time+1, 0)
	if t.After(now) {
		return now
	}
	return t
}
