package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net/http"

	"golang.org/x/crypto/argon2"

	"github.com/hashwall/hashwall/agentapi"
)

// ArgonParams is the argon2id cost of password hashes.
type ArgonParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultArgon follows OWASP's argon2id minimum (19 MiB, 2 passes).
var DefaultArgon = ArgonParams{Time: 2, Memory: 19 * 1024, Threads: 1}

const argonKeyLen = 32

// hashPassword returns a PHC-style string carrying its own parameters, so
// the cost can be raised later without invalidating old hashes.
func (p ArgonParams) hashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s",
		p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// checkPassword compares in constant time. A malformed hash never matches.
func checkPassword(encoded, pw string) bool {
	var p ArgonParams
	var saltS, keyS string
	var v int
	n, err := fmt.Sscanf(encoded, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s", &v, &p.Memory, &p.Time, &p.Threads, &saltS)
	if err != nil || n != 5 || v != 19 || p.Memory > 1<<21 || p.Time > 16 || p.Threads == 0 {
		return false
	}
	for i := 0; i < len(saltS); i++ {
		if saltS[i] == '$' {
			saltS, keyS = saltS[:i], saltS[i+1:]
			break
		}
	}
	salt, err1 := b64.DecodeString(saltS)
	want, err2 := b64.DecodeString(keyS)
	if err1 != nil || err2 != nil || len(want) != argonKeyLen {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, argonKeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1
}

// hashPassword and checkPassword run argon2 under a semaphore: each call
// holds Memory KiB, so unbounded concurrency would be a memory DoS.
func (a *Agent) hashPassword(ctx context.Context, pw string) (string, error) {
	if err := a.acquireArgon(ctx); err != nil {
		return "", err
	}
	defer func() { <-a.argon }()
	return a.cfg.Argon.hashPassword(pw), nil
}

func (a *Agent) checkPassword(ctx context.Context, encoded, pw string) (bool, error) {
	if err := a.acquireArgon(ctx); err != nil {
		return false, err
	}
	defer func() { <-a.argon }()
	return checkPassword(encoded, pw), nil
}

func (a *Agent) acquireArgon(ctx context.Context) error {
	select {
	case a.argon <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fail(http.StatusServiceUnavailable, agentapi.CodeBusy, "too many concurrent logins")
	}
}
