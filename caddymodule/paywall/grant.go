package paywall

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hashwall/hashwall/payword"
)

// grantCookie names the grant cookie; one per product, told apart by Path.
const grantCookie = "hw_grant"

// maxGrantLen bounds a grant token before it is parsed; maxGrantCookies
// bounds how many grant cookies one request may make us try.
const (
	maxGrantLen     = 2048
	maxGrantCookies = 8
	// maxGrantCache bounds the grants cached: about 560 bytes each
	// (claims, boxed placeholders, key), 35 MiB in all.
	maxGrantCache = 1 << 16
)

// grantClaims is a grant's payload: issuer = vendor, subject = certificate
// serial, jti = authorization number.
type grantClaims struct {
	Product string `json:"product"`
	Scope   string `json:"scope"` // "path" or "prefix"
	User    string `json:"uid"`
	// Price is the amount paid, in tokens: the grant opens its product
	// only where the product costs no more (a rule's price may rise, an
	// upstream prices each answer). Grants without it open nothing.
	Price uint32 `json:"price"`
	jwt.RegisteredClaims

	vars [len(placeholderKeys)]any // the placeholders' values, boxed once
	// placeholders provides vars to a request's replacer: made once, so
	// that a cached grant costs no allocation per request.
	placeholders caddy.ReplacerFunc
}

// ready fills the placeholders' values; it is called before c is shared.
func (c *grantClaims) ready() {
	c.vars = [...]any{c.User, c.Subject, c.Product, c.ID}
	c.placeholders = provide(&c.vars)
}

// granter mints and checks grants with the vendor's HS256 keys: the first
// signs, every one verifies, so that a rotation (a new key first, the old
// one kept until the grants it signed have expired) asks no reader to pay
// again. A grant names its key by id (the JWT's kid); one minted before
// key ids is tried against every key. Checked grants are cached, so a
// returning reader costs a map lookup and the expiry and product
// comparisons.
type granter struct {
	keys   [][]byte
	kids   []string
	all    jwt.VerificationKeySet
	vendor string
	parser *jwt.Parser
	minter *minter

	cache bounded[grantKey, grantEntry]
	seed  maphash.Seed
}

// grantKey is a checked grant's cache key: the last characters of its
// token, 192 bits of its HMAC, which name the one header and payload it was
// computed over. Not the whole token (it would double the cache's memory),
// nor its SHA-256 (a microsecond per request).
type grantKey [32]byte

// grantEntry is a checked grant. sum, the token's hash (seeded per
// process), refuses the other spellings of a token with the same
// signature; were one to collide it would only get the claims of the grant
// whose signature it carries, which its sender holds.
type grantEntry struct {
	sum    uint64
	claims *grantClaims
}

func newGranter(keys [][]byte, vendor string) *granter {
	g := &granter{
		keys: keys, vendor: vendor, cache: bounded[grantKey, grantEntry]{max: maxGrantCache}, seed: maphash.MakeSeed(),
		// No iat check: a grant minted by a gateway whose clock runs ahead
		// must still open the product at its neighbours.
		// Strict decoding: a signature (or payload) with non-zero trailing
		// bits is another spelling of the same grant; only ours is taken.
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(vendor),
			jwt.WithExpirationRequired(), jwt.WithStrictDecoding()),
	}
	for _, k := range keys {
		g.kids = append(g.kids, grantKeyID(k))
		g.all.Keys = append(g.all.Keys, k)
	}
	g.minter = newMinter(keys[0], g.kids[0])
	return g
}

// grantKeyID names a grant key by its hash, so that operators need not
// name keys and every gateway derives the same id.
func grantKeyID(k []byte) string {
	sum := sha256.Sum256(append([]byte("hashwall grant key id\x00"), k...))
	return hex.EncodeToString(sum[:6])
}

// key is the verification key of token t: the one its kid names, or all
// of them for a grant without one.
func (g *granter) key(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"]
	if !ok {
		return g.all, nil
	}
	for i, id := range g.kids {
		if id == kid {
			return g.keys[i], nil
		}
	}
	return nil, errGrant
}

var errGrant = errors.New("invalid grant")

// check verifies tok as a grant for product at now.
func (g *granter) check(tok, product string, now time.Time) (*grantClaims, error) {
	if len(tok) > maxGrantLen {
		return nil, errGrant
	}
	var key grantKey
	copy(key[:], tok[max(len(tok)-len(key), 0):])
	sum := maphash.String(g.seed, tok)
	e, ok := g.cache.get(key)
	c := e.claims
	if !ok || e.sum != sum {
		c = new(grantClaims)
		if _, err := g.parser.ParseWithClaims(tok, c, g.key); err != nil {
			return nil, errGrant
		}
		c.ready()
		g.cache.put(key, grantEntry{sum, c})
	}
	if c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Time) || c.Product != product || c.Price < 1 {
		return nil, errGrant
	}
	return c, nil
}

// grantCookieName is the name of product's grant cookie. Cookies are
// scoped by path only, so products that differ in their query (pages an
// upstream prices) each get a name of their own: one would otherwise
// replace the other in the browser.
func grantCookieName(product string) string {
	if !strings.Contains(product, "?") {
		return grantCookie
	}
	sum := sha256.Sum256([]byte(product))
	return grantCookie + "_" + hex.EncodeToString(sum[:8])
}

// grantFor returns the request's valid grant for product that paid at
// least price tokens, from an `Authorization: Bearer` header or the grant
// cookies, or nil. With price 0 (not known yet, the upstream sets it) it
// returns the dearest grant for product.
func (h *Handler) grantFor(r *http.Request, product string, price uint32) *grantClaims {
	now := time.Now()
	var best *grantClaims
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		if c, err := h.grants.check(a[7:], product, now); err == nil && c.Price >= price {
			if price > 0 {
				h.metrics.fromBearer.Inc()
				return c
			}
			best = c
		}
	}
	// Scan for our cookie by hand: parsing every cookie of the request
	// costs more than checking the grant.
	name := grantCookieName(product)
	n := 0
	for _, line := range r.Header["Cookie"] {
		for line != "" && n < maxGrantCookies {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			n++
			c, err := h.grants.check(strings.Trim(val, `"`), product, now)
			if err != nil || c.Price < price {
				continue
			}
			if price > 0 {
				h.metrics.fromCookie.Inc()
				return c
			}
			if best == nil || c.Price > best.Price {
				best = c
			}
		}
	}
	return best
}

// deliverGrant sets the grant cookie, the receipt header and the
// placeholders of an accepted payment.
func (h *Handler) deliverGrant(w http.ResponseWriter, r *http.Request, g *grantClaims, token string, o offer) {
	// A cookie's path has no query; and without its trailing slash, a
	// prefix's cookie also comes back for the prefix's own page (`/issues/d`
	// for `/issues/d/`), which the product covers too.
	cpath, _, _ := strings.Cut(o.Product, "?")
	if len(cpath) > 1 {
		cpath = strings.TrimSuffix(cpath, "/")
	}
	w.Header().Add("Set-Cookie", grantSetCookie(grantCookieName(o.Product), token, cookiePath(r, cpath),
		int(time.Until(g.ExpiresAt.Time)/time.Second), r.TLS != nil))
	w.Header().Set(payword.ReceiptHeader, token)
	w.Header().Set("Cache-Control", "private, no-store")
	setPlaceholders(r, g)
}

// grantSetCookie is the Set-Cookie value of a grant, as http.Cookie's
// String writes it (a test holds the two together), without its checks of
// name and value, which are ours and valid: one is set per payment.
func grantSetCookie(name, token, path string, maxAge int, secure bool) string {
	plain := maxAge > 0 && path != ""
	for i := 0; plain && i < len(path); i++ {
		plain = path[i] >= 0x20 && path[i] < 0x7f && path[i] != ';'
	}
	if !plain {
		c := &http.Cookie{Name: name, Value: token, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
		return c.String()
	}
	b := make([]byte, 0, len(name)+len(token)+len(path)+64)
	b = append(b, name...)
	b = append(b, '=')
	b = append(b, token...)
	b = append(b, "; Path="...)
	b = append(b, path...)
	b = append(b, "; Max-Age="...)
	b = strconv.AppendInt(b, int64(maxAge), 10)
	b = append(b, "; HttpOnly"...)
	if secure {
		b = append(b, "; Secure"...)
	}
	b = append(b, "; SameSite=Lax"...)
	return string(b)
}

// cookiePath is the product's path as the browser sees it. A route that
// stripped a prefix before the paywall (handle_path, uri strip_prefix) made
// the product the stripped path; the cookie needs the prefix back, or the
// browser would never return it.
func cookiePath(r *http.Request, product string) string {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil {
		return product
	}
	prefix, ok := strings.CutSuffix(orig.URL.Path, r.URL.Path)
	if !ok || prefix == "" || !strings.HasPrefix(prefix, "/") {
		return product
	}
	return strings.TrimSuffix(prefix, "/") + product
}

// placeholderKeys are the placeholders the handler provides to the
// handlers after it: the grant's user, serial, product and authorization.
var placeholderKeys = [...]string{"http.paywall.user", "http.paywall.serial", "http.paywall.product", "http.paywall.auth"}

// setPlaceholders sets the placeholders to grant g's values, or to empty
// strings when g is nil, before a request goes on to the next handler. They
// are always set: Caddy leaves an unknown placeholder as it is (header_up
// replaces known ones only), and an upstream could take a literal
// "{http.paywall.user}" for a reader.
//
// The first time in a request they come from a provider made with the
// grant: setting them would grow the replacer's map of static values, an
// allocation per request. But the first provider that knows a key answers
// for it, so once they are known (set before in this request, or by some
// other handler) they are set as static values, which are asked before
// every provider.
func setPlaceholders(r *http.Request, g *grantClaims) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	vals, values := &noGrantVars, noGrantPlaceholders
	if g != nil {
		vals, values = &g.vars, g.placeholders
	}
	if _, known := repl.Get(placeholderKeys[0]); !known {
		repl.Map(values)
		return
	}
	for i, k := range placeholderKeys {
		repl.Set(k, vals[i])
	}
}

// provide returns the placeholder provider of vals.
func provide(vals *[len(placeholderKeys)]any) caddy.ReplacerFunc {
	return func(key string) (any, bool) {
		for i, k := range placeholderKeys {
			if key == k {
				return vals[i], true
			}
		}
		return nil, false
	}
}

var (
	noGrantVars         = [len(placeholderKeys)]any{"", "", "", ""}
	noGrantPlaceholders = provide(&noGrantVars)
)
