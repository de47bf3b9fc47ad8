package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

func TestKeygenAndLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "agent.key")
	k, err := Keygen(path, "agent-2026")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	if _, err := Keygen(path, "agent-2027"); err == nil {
		t.Fatal("overwrote a key file")
	}
	got, err := LoadKeyFile(path)
	if err != nil || got.ID != "agent-2026" || !got.Key.Equal(k.Key) {
		t.Fatal(got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadKeyFile(path); err == nil {
		t.Fatal("loaded a world-readable key")
	}
}

// TestLoadKeyFileCredential: a key handed over by systemd's LoadCredential=
// shows mode 0440 (the ACL granting the service's user shows as the group's
// read bit); only there is the group bit accepted. t.Setenv forbids t.Parallel.
func TestLoadKeyFileCredential(t *testing.T) {
	creds := t.TempDir()
	path := filepath.Join(creds, "signing-key")
	if _, err := Keygen(path, "agent-2026"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o440)
	t.Setenv("CREDENTIALS_DIRECTORY", t.TempDir())
	if _, err := LoadKeyFile(path); err == nil {
		t.Fatal("loaded a group-readable key outside the credentials directory")
	}
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	if k, err := LoadKeyFile(path); err != nil || k.ID != "agent-2026" {
		t.Fatal(k, err)
	}
	os.Chmod(path, 0o444)
	if _, err := LoadKeyFile(path); err == nil {
		t.Fatal("loaded a world-readable key from the credentials directory")
	}
}

func TestRunServer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithoutAOF()) // the last check wants a Redis without AOF
	dir := t.TempDir()
	kf := filepath.Join(dir, "agent.key")
	if _, err := Keygen(kf, "agent-2026"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	master := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	go func() {
		done <- RunServer(ctx, ServerConfig{Listener: ln, MetricsListener: mln, RedisURL: srv.URL(), KeyFiles: []string{kf},
			MasterKey: master, Settings: Settings{Ephemeral: true}})
	}()
	base := "http://" + ln.Addr().String()
	var body string
	for range 50 {
		resp, err := http.Get(base + "/v1/keys")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, `"kid":"agent-2026"`) {
		t.Fatalf("/v1/keys: %q", body)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + probe)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", probe, resp.StatusCode)
		}
	}
	// /metrics is not on the public listener (issue 9 item 14), only on its own.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/metrics on the API listener: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + mln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "hashwall_agent_request_duration_seconds") {
		t.Fatalf("metrics: %.200s", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Without --ephemeral the same (AOF off) Redis is refused.
	err = RunServer(context.Background(), ServerConfig{Listen: "127.0.0.1:0", RedisURL: srv.URL(), KeyFiles: []string{kf}, MasterKey: master})
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("started on a non-durable Redis: %v", err)
	}
}
