package agentcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecret checks where `hashwall agent` takes a secret from: the
// variable, or the file its _FILE variable names (as systemd's
// LoadCredential= hands it over), never both, never an oversized file.
// t.Setenv forbids t.Parallel.
func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const v = "HASHWALL_TEST_SECRET"
	for _, tc := range []struct {
		name, env, path, want, wantErr string
	}{
		{name: "variable", env: "s3cret", want: "s3cret"},
		{name: "unset", want: ""},
		{name: "file, final line break dropped", path: file("nl", "s3cret\n"), want: "s3cret"},
		{name: "file, CRLF dropped", path: file("crlf", "s3cret\r\n"), want: "s3cret"},
		{name: "file, inner lines kept", path: file("lines", "k1\nk2\n"), want: "k1\nk2"},
		{name: "empty file", path: file("empty", ""), want: ""},
		{name: "both set", env: "s3cret", path: file("both", "other"), wantErr: "both " + v + " and " + v + "_FILE"},
		{name: "missing file", path: filepath.Join(dir, "absent"), wantErr: "no such file"},
		{name: "oversized file", path: file("big", strings.Repeat("k", maxSecretFile+1)), wantErr: "over 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(v, tc.env)
			t.Setenv(v+"_FILE", tc.path)
			got, err := secret(v)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "other") {
					t.Fatalf("the error shows the secret: %v", err)
				}
			case err != nil || got != tc.want:
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
