package paywall

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strconv"
	"sync"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hashwall/hashwall/internal/jsonappend"
)

// minter signs grants as golang-jwt's HS256 would, byte for byte (a test
// holds them together), without its maps and reflection: one grant is
// minted per payment. The header is the same for every grant of a key.
type minter struct {
	header string // base64url of {"alg":"HS256","kid":…,"typ":"JWT"}, and the dot
	macs   sync.Pool
}

func newMinter(key []byte, kid string) *minter {
	hdr := jsonappend.String([]byte(`{"alg":"HS256","kid":`), kid)
	hdr = append(hdr, `,"typ":"JWT"}`...)
	m := &minter{header: base64.RawURLEncoding.EncodeToString(hdr) + "."}
	m.macs.New = func() any { return hmac.New(sha256.New, key) }
	return m
}

// mint signs c with the first key. The same claims always give the same
// token, so a retried payment gets back exactly the grant it was first
// given (while the signing key stays the same).
func (g *granter) mint(c *grantClaims) (string, error) {
	m := g.minter
	var payload [512]byte
	claims := payload[:0]
	if plainGrant(c) {
		claims = appendGrantClaims(claims, c)
	} else {
		var err error
		if claims, err = json.Marshal(c); err != nil {
			return "", err
		}
	}
	out := make([]byte, 0, len(m.header)+base64.RawURLEncoding.EncodedLen(len(claims))+1+base64.RawURLEncoding.EncodedLen(sha256.Size))
	out = append(out, m.header...)
	out = base64.RawURLEncoding.AppendEncode(out, claims)
	mac := m.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(out)
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	m.macs.Put(mac)
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, sum[:])
	return string(out), nil
}

// plainGrant says whether appendGrantClaims writes c as encoding/json
// would: grants have no audience, no not-before and whole seconds.
func plainGrant(c *grantClaims) bool {
	whole := func(d *jwt.NumericDate) bool { return d == nil || d.Nanosecond() == 0 }
	return len(c.Audience) == 0 && c.NotBefore == nil && whole(c.ExpiresAt) && whole(c.IssuedAt)
}

// appendGrantClaims appends c as encoding/json writes a grantClaims: its
// own fields, then jwt.RegisteredClaims's in their order, empty ones left
// out as their omitempty tags say, for a plainGrant.
func appendGrantClaims(b []byte, c *grantClaims) []byte {
	b = append(b, `{"product":`...)
	b = jsonappend.String(b, c.Product)
	b = append(b, `,"scope":`...)
	b = jsonappend.String(b, c.Scope)
	b = append(b, `,"uid":`...)
	b = jsonappend.String(b, c.User)
	b = append(b, `,"price":`...)
	b = strconv.AppendUint(b, uint64(c.Price), 10)
	str := func(name, v string) {
		if v != "" {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":`...)
			b = jsonappend.String(b, v)
		}
	}
	str("iss", c.Issuer)
	str("sub", c.Subject)
	if c.ExpiresAt != nil {
		b = append(b, `,"exp":`...)
		b = strconv.AppendInt(b, c.ExpiresAt.Unix(), 10)
	}
	if c.IssuedAt != nil {
		b = append(b, `,"iat":`...)
		b = strconv.AppendInt(b, c.IssuedAt.Unix(), 10)
	}
	str("jti", c.ID)
	return append(b, '}')
}
