package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

const (
	minPassword = 8
	maxPassword = 1024
	maxInfoKeys = 16
	maxInfoLen  = 256
)

func checkUser(q *agentapi.RegisterUser) error {
	if !payword.ValidID(q.Username) {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidUsername, "username must be 1-64 characters of A-Z a-z 0-9 . _ - : @")
	}
	if len(q.Password) < minPassword || len(q.Password) > maxPassword {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidPassword, "password must be 8 to 1024 bytes")
	}
	if len(q.Info) > maxInfoKeys {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidInfo, "at most 16 identification fields")
	}
	for k, v := range q.Info {
		if !payword.ValidID(k) || len(v) > maxInfoLen || !utf8.ValidString(v) {
			return fail(http.StatusBadRequest, agentapi.CodeInvalidInfo, "identification fields are id: text of at most 256 bytes")
		}
	}
	return nil
}

func (a *Agent) handleRegisterUser(w http.ResponseWriter, r *http.Request) error {
	var q agentapi.RegisterUser
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	if err := checkUser(&q); err != nil {
		return err
	}
	if a.requireAdmin(r) != nil { // the operator opens accounts uncounted
		if err := a.reserveSignup(r.Context(), r); err != nil {
			return err
		}
	}
	uid, err := a.registerUser(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, agentapi.User{User: uid, Username: q.Username})
	return nil
}

// registerUser stores a checked (checkUser) registration; the API and the
// sign-up page both call it.
func (a *Agent) registerUser(ctx context.Context, q agentapi.RegisterUser) (string, error) {
	uid := "u-" + randomHex(12) // opaque: certificates do not reveal the username
	info, _ := json.Marshal(q.Info)
	pw, err := a.hashPassword(ctx, q.Password)
	if err != nil {
		return "", err
	}
	res, err := a.run(ctx, registerUser, q.Username, uid, pw, info, a.now().Unix()).Text()
	if err != nil {
		return "", err
	}
	if res == "taken" {
		return "", fail(http.StatusConflict, agentapi.CodeUsernameTaken, "username already registered")
	}
	a.log.Info("user registered", zap.String("user", uid))
	return uid, nil
}

func (a *Agent) handleRegisterVendor(w http.ResponseWriter, r *http.Request) error {
	admin := a.requireAdmin(r)
	if admin != nil && !a.cfg.OpenVendors {
		return admin
	}
	var q agentapi.RegisterVendor
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	if q.Kind == "" {
		q.Kind = agentapi.KindGeneric
	}
	if !payword.ValidID(q.Vendor) || (q.Kind != agentapi.KindGeneric && q.Kind != agentapi.KindSpecific) {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidVendor, "vendor must be an id and kind generic or specific")
	}
	origins, err := canonicalOrigins(q.Origins)
	if err != nil {
		return err
	}
	if admin != nil { // open to anyone: counted with the readers' sign-ups
		if err := a.reserveSignup(r.Context(), r); err != nil {
			return err
		}
	}
	token, hash := newToken(agentapi.VendorTokenPrefix)
	res, err := a.run(r.Context(), registerVendor, q.Vendor, q.Kind, hash, a.now().Unix(), originsJSON(origins)).Text()
	if err != nil {
		return err
	}
	if res == "taken" {
		return fail(http.StatusConflict, agentapi.CodeVendorTaken, "vendor already registered")
	}
	a.log.Info("vendor registered", zap.String("vendor", q.Vendor), zap.String("kind", q.Kind), zap.Strings("origins", origins))
	writeJSON(w, http.StatusCreated, agentapi.Vendor{Vendor: q.Vendor, Token: token, Kind: q.Kind, Origins: origins})
	return nil
}

// handleRotateToken gives a vendor a new API token; the one it
// authenticated with stops working at once (a leaked token is replaced
// without a new vendor id).
func (a *Agent) handleRotateToken(w http.ResponseWriter, r *http.Request) error {
	vendor, err := a.vendorAuth(r)
	if err != nil {
		return err
	}
	var q agentapi.RotateToken
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 { // the body is optional
		if err := unmarshalStrict(body, &q); err != nil {
			return err
		}
	}
	out, err := a.rotateVendorToken(r.Context(), vendor, q.GraceSeconds)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rotateVendorToken gives vendor a new API token; the old one works for
// grace seconds more (0: stops at once). The API and the vendor's token
// page both call it.
func (a *Agent) rotateVendorToken(ctx context.Context, vendor string, grace int64) (agentapi.VendorToken, error) {
	if grace < 0 || grace > agentapi.MaxTokenGrace {
		return agentapi.VendorToken{}, fail(http.StatusBadRequest, agentapi.CodeInvalidGrace, "grace_seconds must be 0 to 604800")
	}
	token, hash := newToken(agentapi.VendorTokenPrefix)
	if err := a.run(ctx, rotateToken, vendor, hash, grace).Err(); err != nil {
		return agentapi.VendorToken{}, err
	}
	a.log.Info("vendor token rotated", zap.String("vendor", vendor), zap.Int64("grace_seconds", grace))
	out := agentapi.VendorToken{Vendor: vendor, Token: token}
	if grace > 0 {
		out.OldValidUntil = a.now().Unix() + grace
	}
	return out, nil
}

// handleLogout ends the session it is called with.
func (a *Agent) handleLogout(w http.ResponseWriter, r *http.Request) error {
	tok, ok := bearer(r)
	if !ok || !strings.HasPrefix(tok, agentapi.SessionTokenPrefix) {
		return errUnauthorized
	}
	n, err := a.rdb.Del(r.Context(), a.prefix+"sess:"+tokenHash(tok)).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return errUnauthorized
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Agent) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var q agentapi.Login
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	uid, err := a.login(r.Context(), r, q.Username, q.Password)
	if err != nil {
		return err
	}
	token, err := a.newSession(r.Context(), uid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agentapi.Session{User: uid, Token: token, ExpiresAt: a.now().Add(a.cfg.SessionTTL).Unix()})
	return nil
}

// newSession stores a new session of uid (the API's and the pages') and
// returns its token; only its hash is stored.
func (a *Agent) newSession(ctx context.Context, uid string) (string, error) {
	token, hash := newToken(agentapi.SessionTokenPrefix)
	if err := a.rdb.Set(ctx, a.prefix+"sess:"+hash, uid, a.cfg.SessionTTL).Err(); err != nil {
		return "", err
	}
	return token, nil
}

var errCredentials = fail(http.StatusUnauthorized, agentapi.CodeInvalidCredentials, "unknown user or wrong password")

// login checks a password. An unknown user costs the same argon2 work as a
// known one, so timing does not reveal which usernames exist. Every check
// first reserves an attempt in the throttle (throttle.go): this is the only
// place a password is checked, for sessions and Basic auth alike.
func (a *Agent) login(ctx context.Context, r *http.Request, username, password string) (string, error) {
	if !payword.ValidID(username) || len(password) > maxPassword {
		return "", errCredentials
	}
	addr := a.clientAddr(r)
	if err := a.reserveLogin(ctx, username, addr); err != nil {
		return "", err
	}
	checked := false
	defer func() {
		if !checked {
			a.releaseLogin(username, addr)
		}
	}()
	uid, err := a.rdb.Get(ctx, a.prefix+"uname:"+username).Result()
	if err != nil && err != redis.Nil {
		return "", err
	}
	var stored []any
	if uid != "" {
		if stored, err = a.rdb.HMGet(ctx, a.prefix+"u:"+uid, "pw", "status").Result(); err != nil {
			return "", err
		}
	}
	hash := a.dummy
	if len(stored) == 2 {
		if s, ok := stored[0].(string); ok {
			hash = s
		}
	}
	ok, err := a.checkPassword(ctx, hash, password)
	if err != nil {
		return "", err
	}
	if !ok || uid == "" {
		checked = true // a wrong password keeps its slot
		return "", errCredentials
	}
	if stored[1] != "active" {
		return "", fail(http.StatusForbidden, agentapi.CodeUserRevoked, "user account is revoked")
	}
	return uid, nil
}

// userAuth authenticates a user by session token (Bearer) or by password
// (Basic). Sessions make purchases cheap: argon2 runs once per login.
func (a *Agent) userAuth(r *http.Request) (string, error) {
	if name, pw, ok := r.BasicAuth(); ok {
		return a.login(r.Context(), r, name, pw)
	}
	tok, ok := bearer(r)
	if !ok || !strings.HasPrefix(tok, agentapi.SessionTokenPrefix) {
		return "", errUnauthorized
	}
	uid, err := a.rdb.Get(r.Context(), a.prefix+"sess:"+tokenHash(tok)).Result()
	if err == redis.Nil {
		return "", errUnauthorized
	}
	return uid, err
}

// vendorAuth authenticates a vendor by its API token.
func (a *Agent) vendorAuth(r *http.Request) (string, error) {
	tok, ok := bearer(r)
	if !ok {
		return "", errUnauthorized
	}
	return a.vendorOfToken(r.Context(), tok)
}

// vendorOfToken is the active vendor whose API token tok is (the API's
// Bearer token, and the vendor pages' log-in).
func (a *Agent) vendorOfToken(ctx context.Context, tok string) (string, error) {
	if !strings.HasPrefix(tok, agentapi.VendorTokenPrefix) {
		return "", errUnauthorized
	}
	vid, err := a.rdb.Get(ctx, a.prefix+"vtok:"+tokenHash(tok)).Result()
	if err == redis.Nil {
		return "", errUnauthorized
	}
	if err != nil {
		return "", err
	}
	status, err := a.rdb.HGet(ctx, a.prefix+"v:"+vid, "status").Result()
	if err != nil && err != redis.Nil {
		return "", err
	}
	if status != "active" {
		return "", fail(http.StatusForbidden, agentapi.CodeVendorRevoked, "vendor is revoked")
	}
	return vid, nil
}

func (a *Agent) requireAdmin(r *http.Request) error {
	tok, ok := bearer(r)
	if a.cfg.AdminToken == "" || !ok {
		return errUnauthorized
	}
	h := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(h[:], a.admin[:]) != 1 {
		return errUnauthorized
	}
	return nil
}

func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
