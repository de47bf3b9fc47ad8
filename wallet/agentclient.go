package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// AgentClient speaks the agent's user API (docs/agent-api.md).
type AgentClient struct {
	Base string       // the agent's base URL
	HTTP *http.Client // nil: http.DefaultClient
}

// AgentError is a refusal by the agent, with its machine-readable code.
type AgentError struct {
	Status  int
	Code    string
	Message string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("the agent refused: %s (%s)", e.Message, e.Code)
}

// Bundle is a certificate the agent sold: the signed certificate and K.
type Bundle struct {
	Serial      string `json:"serial"`
	Certificate string `json:"certificate"`
	Secret      string `json:"secret"`
	Tokens      int    `json:"tokens"`
	Cost        uint64 `json:"cost"`
	Currency    string `json:"currency"`
	ExpiresAt   int64  `json:"expires_at"`
}

// Account is the agent's view of the user.
type Account struct {
	User         string   `json:"user"`
	Balance      int64    `json:"balance"`
	Currency     string   `json:"currency"`
	Certificates []string `json:"certificates"`
}

const maxAgentResponse = 1 << 20

func (c *AgentClient) do(ctx context.Context, method, path, user, password string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &AgentError{Status: resp.StatusCode, Message: resp.Status}
		_ = json.Unmarshal(raw, &struct {
			Code *string `json:"code"`
			Msg  *string `json:"error"`
		}{&e.Code, &e.Message})
		return e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("the agent answered something unexpected: %w", err)
		}
	}
	return nil
}

// Register creates the user's account at the agent.
func (c *AgentClient) Register(ctx context.Context, username, password string, info map[string]string) error {
	return c.do(ctx, http.MethodPost, "/v1/users", "", "", map[string]any{
		"username": username, "password": password, "info": info}, nil)
}

// Buy buys a certificate of at least tokens tokens made out to pub; scope is
// "" (any vendor) or one vendor id. A purchase whose answer is lost is asked
// again with the same request id, so the agent charges it once.
func (c *AgentClient) Buy(ctx context.Context, username, password string, tokens int, pub ed25519.PublicKey, scope string) (*Bundle, error) {
	id := make([]byte, 12)
	rand.Read(id)
	req := map[string]any{"tokens": tokens, "public_key": base64.RawURLEncoding.EncodeToString(pub),
		"scope": scope, "request_id": "buy-" + hex.EncodeToString(id)}
	var b Bundle
	var err error
	for range 3 {
		var ae *AgentError
		if err = c.do(ctx, http.MethodPost, "/v1/certificates", username, password, req, &b); err == nil ||
			errors.As(err, &ae) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// Recovery is the agent's answer to a recovery: the certificates are revoked
// at once, Value is credited at once, and Pending is credited at CreditAt
// (Unix seconds), once the bank's report window has passed, less the claims
// that arrive until then.
type Recovery struct {
	Value    int64   `json:"recovered_value"`
	Pending  int64   `json:"pending_credit"`
	CreditAt int64   `json:"credit_at"`
	Bundle   *Bundle `json:"bundle"`
}

// Recover has the agent revoke every certificate of the user and issue one
// to pub worth what it credits at once. Bundle is nil when nothing was
// credited at once.
func (c *AgentClient) Recover(ctx context.Context, username, password string, pub ed25519.PublicKey) (*Recovery, error) {
	var out Recovery
	err := c.do(ctx, http.MethodPost, "/v1/certificates/recover", username, password, map[string]any{
		"public_key": base64.RawURLEncoding.EncodeToString(pub)}, &out)
	return &out, err
}

// Me returns the user's account.
func (c *AgentClient) Me(ctx context.Context, username, password string) (*Account, error) {
	var a Account
	if err := c.do(ctx, http.MethodGet, "/v1/me", username, password, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AddBundle stores a bundle from the agent.
func (w *Wallet) AddBundle(b *Bundle) error {
	raw, err := base64.RawURLEncoding.DecodeString(b.Certificate)
	if err != nil {
		return fmt.Errorf("the agent sent a bad certificate: %w", err)
	}
	k, err := base64.RawURLEncoding.DecodeString(b.Secret)
	if err != nil {
		return fmt.Errorf("the agent sent a bad certificate secret: %w", err)
	}
	return w.AddCertificate(raw, k)
}

// MarkAllRevoked stops spending every certificate held: after a recovery the
// agent has revoked them.
func (w *Wallet) MarkAllRevoked() error {
	return w.update(func(st *State) error {
		for _, c := range st.Certs {
			c.Revoked = true
		}
		return nil
	})
}
