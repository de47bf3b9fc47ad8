package agent

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogsHoldNoSecrets runs a whole scenario, fraud included, and checks
// that no password, token, key or certificate secret reaches the logs.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	core, logs := observer.New(zap.DebugLevel)
	e.cfg.Logger = zap.New(core)
	e.restartAgent()
	va, vb := e.vendor("planet"), e.vendor("globe")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 256)
	e.report(va, "planet", "b1", w.claim(0, 2, 2, "planet"), w.claim(1, 1, 1, ""))
	e.report(vb, "globe", "b2", w.claim(0, 3, 3, "globe"))
	e.call("POST", "/v1/sessions", "", map[string]string{"username": "alice", "password": "wrong horse"}, nil)
	e.call("POST", "/v1/admin/revoke", "Bearer "+adminToken, map[string]string{"user": "alice"}, nil)

	secrets := map[string]string{
		"password": "correct horse", "admin token": adminToken,
		"vendor token": strings.TrimPrefix(va, "Bearer "), "session": strings.TrimPrefix(alice, "Bearer "),
		"K": b64.EncodeToString(w.k[:]),
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, entry := range logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		for what, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line holds the %s: %s", what, line)
			}
		}
	}
}
