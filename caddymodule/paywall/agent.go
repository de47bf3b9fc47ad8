package paywall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// agentTimeout bounds every call to the agent (docs/agent-api.md: /v1/keys,
// /v1/crl, /v1/reports, /v1/bindings); a report attempt has its own,
// shorter bound (reportTimeout).
const agentTimeout = 10 * time.Second

// newAgentClient is the vendor's client of the agent; its API token
// authenticates reports and bindings, and makes CRL pages count against the
// vendor's rate limit rather than the address's.
func newAgentClient(base, token string) *agentapi.Client {
	return agentapi.NewClient(base, &http.Client{Timeout: agentTimeout}).WithToken(token)
}

// bind registers a segment binding (online mode). A segment the agent says
// is another vendor's is a double-spend attempt; an unreachable agent makes
// the payment wait (503), never pass.
func bind(ctx context.Context, agent *agentapi.Client, raw []byte) error {
	_, err := agent.Bind(ctx, raw)
	if e, ok := errors.AsType[*agentapi.Error](err); ok {
		switch e.Status {
		case http.StatusConflict:
			return fmt.Errorf("%w: owned by %q", errBoundElse, e.Owner)
		case http.StatusBadRequest:
			return fmt.Errorf("%w: agent refused the binding: %s", payword.ErrBadBinding, e.Message)
		case http.StatusNotFound:
			return errUnknownCert
		}
	}
	if err != nil {
		return fmt.Errorf("%w: registering the binding: %v", errUnavailable, err)
	}
	return nil
}
