package paywall

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// agentClient speaks the agent's HTTP API (CONTRACT: /v1/keys, /v1/crl,
// /v1/reports, /v1/bindings).
type agentClient struct {
	base  string
	token string
	hc    *http.Client
}

func newAgentClient(base, token string) *agentClient {
	return &agentClient{base: base, token: token, hc: &http.Client{Timeout: 10 * time.Second}}
}

// maxAgentResponse bounds what we read of an agent answer.
const maxAgentResponse = payword.MaxSignedSize

// agentError is a non-200 answer.
type agentError struct {
	Status  int
	Message string `json:"error"`
	Code    string `json:"code"`
	Owner   string `json:"owner"`
}

func (e *agentError) Error() string {
	return fmt.Sprintf("agent answered %d: %s (%s)", e.Status, e.Message, e.Code)
}

// do sends a request and decodes a 200 JSON answer into out.
func (a *agentClient) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentResponse+1))
	if err != nil {
		return err
	}
	if len(raw) > maxAgentResponse {
		return fmt.Errorf("agent answer to %s over %d bytes", path, maxAgentResponse)
	}
	if resp.StatusCode != http.StatusOK {
		e := &agentError{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, e)
		return e
	}
	if b, ok := out.(*[]byte); ok {
		*b = raw
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("agent answer to %s: %v", path, err)
	}
	return nil
}

// keys fetches the agent's key announcements.
func (a *agentClient) keys(ctx context.Context) ([]payword.Signed, error) {
	var out struct {
		Signed []payword.Signed `json:"signed"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/keys", nil, &out); err != nil {
		return nil, err
	}
	return out.Signed, nil
}

// crl fetches the signed CRL page after since. The vendor's token makes the
// agent count the page against the vendor's rate limit, not the address's.
func (a *agentClient) crl(ctx context.Context, since uint64, keys payword.KeySet) (*payword.CRL, error) {
	var raw []byte
	if err := a.do(ctx, http.MethodGet, "/v1/crl?since="+strconv.FormatUint(since, 10), nil, &raw); err != nil {
		return nil, err
	}
	return payword.OpenCRL(raw, keys)
}

// reportResult is the agent's verdict on one claim.
type reportResult struct {
	Auth    string `json:"auth"`
	Verdict string `json:"verdict"`
	Amount  uint64 `json:"amount"`
}

// reportAnswer is the agent's 200 to a report.
type reportAnswer struct {
	Batch   string         `json:"batch"`
	Results []reportResult `json:"results"`
}

// report ships a batch of claims. The caller checks the answer against
// what it sent: the batch id, and a result for each claim.
func (a *agentClient) report(ctx context.Context, r *payword.Report) (*reportAnswer, error) {
	var out reportAnswer
	if err := a.do(ctx, http.MethodPost, "/v1/reports", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// bind registers a segment binding (online mode). A segment the agent says
// is another vendor's is a double-spend attempt; an unreachable agent makes
// the payment wait (503), never pass.
func (a *agentClient) bind(ctx context.Context, raw []byte) error {
	var out struct {
		Owner string `json:"owner"`
	}
	err := a.do(ctx, http.MethodPost, "/v1/bindings", map[string]string{"bind": base64.RawURLEncoding.EncodeToString(raw)}, &out)
	if e, ok := err.(*agentError); ok {
		switch {
		case e.Status == http.StatusConflict:
			return fmt.Errorf("%w: owned by %q", errBoundElse, e.Owner)
		case e.Status == http.StatusBadRequest:
			return fmt.Errorf("%w: agent refused the binding: %s", payword.ErrBadBinding, e.Message)
		case e.Status == http.StatusNotFound:
			return errUnknownCert
		}
	}
	if err != nil {
		return fmt.Errorf("%w: registering the binding: %v", errUnavailable, err)
	}
	return nil
}
