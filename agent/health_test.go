package agent

import (
	"errors"
	"net/http"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
)

// TestHealth: /healthz answers while the process serves; /readyz only
// while the store answers, and says so with a 503 otherwise.
func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	if h, err := c.Healthy(t.Context()); err != nil || !h.OK {
		t.Fatalf("healthz: %+v %v", h, err)
	}
	e.vendor("planet") // something in the store
	if h, err := c.Ready(t.Context()); err != nil || !h.OK || h.Checks["store"] != "ok" || h.Checks["signing_key"] != testKey.ID {
		t.Fatalf("readyz: %+v %v", h, err)
	}
	e.srv.Kill()
	_, err := c.Ready(t.Context())
	if ae, ok := errors.AsType[*agentapi.Error](err); !ok || ae.Status != http.StatusServiceUnavailable || ae.Code != agentapi.CodeStoreUnavailable {
		t.Fatalf("readyz with the store down: %v", err)
	}
	if h, err := c.Healthy(t.Context()); err != nil || !h.OK {
		t.Fatalf("healthz with the store down: %+v %v", h, err)
	}
}
