// Package deploy holds no code: the files here run Hashwall under systemd
// (README.md, "Running as a service"). Its tests check them with the tools
// an operator would use: systemd-analyze on the units, the built binary on
// the Caddyfile and the agent's command line, redis-server on the configs.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// installed is where the units expect the binary.
const installed = "/usr/local/bin/hashwall"

// bin is cmd/hashwall, built by TestMain for the whole run.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hashwall-deploy-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "hashwall")
	code := 1
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/hashwall").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ../cmd/hashwall: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// systemdAnalyze finds systemd-analyze; CI must have it (.ci/run installs it).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze not found but CI is set; CI must check the units (apt-get install systemd): %v", err)
		}
		t.Skip("systemd-analyze not installed (apt-get install systemd); skipping the check of the systemd units")
	}
	return p
}

var units = []string{"hashwall-agent.service", "hashwall-gateway.service"}

// TestUnitsVerify runs `systemd-analyze verify` on the units, their
// ExecStart pointing at a freshly built binary (verify checks that it is
// executable), and fails on anything it prints: an unknown or misspelt key
// is only a warning. It also holds the units' hardening to an exposure
// under 2.0 in `systemd-analyze security` (systemd 252: agent 1.1,
// gateway 1.4; 0 is fully locked down, 10 unprotected).
func TestUnitsVerify(t *testing.T) {
	t.Parallel()
	sa := systemdAnalyze(t)
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("ExecStart="+installed+" ")) {
			t.Fatalf("%s: ExecStart does not run %s", u, installed)
		}
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte(installed), []byte(bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command(sa, append([]string{"verify"}, paths...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// --offline needs systemd 250; older ones (Ubuntu 22.04: 249) verify only.
	ver, _ := exec.Command(sa, "--version").Output()
	var n int
	if _, err := fmt.Sscanf(string(ver), "systemd %d", &n); err != nil || n < 250 {
		t.Logf("systemd-analyze %q cannot analyse units offline; exposure not checked", strings.SplitN(string(ver), "\n", 2)[0])
		return
	}
	for _, p := range paths {
		out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=20", p).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure over 2.0 (%v):\n%s", filepath.Base(p), err, out)
			continue
		}
		t.Log(lastLine(out))
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// unit is what the tests read of a unit's [Service] section: its
// Environment= assignments (one a line), LoadCredential= names and paths,
// and ExecStart.
type unit struct {
	env       map[string]string
	creds     map[string]string
	execStart string
}

func readUnit(t *testing.T, name string) unit {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{env: map[string]string{}, creds: map[string]string{}}
	section := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "[") {
			section = line
		}
		key, val, ok := strings.Cut(line, "=")
		if section != "[Service]" || !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch key {
		case "Environment":
			k, v, _ := strings.Cut(val, "=")
			if strings.ContainsAny(val, `"' `) {
				t.Fatalf("%s: %q: the test reads one unquoted assignment an Environment= line", name, line)
			}
			u.env[k] = v
		case "LoadCredential":
			id, path, _ := strings.Cut(val, ":")
			u.creds[id] = path
		case "ExecStart":
			u.execStart = val
		}
	}
	if u.execStart == "" {
		t.Fatalf("%s: no ExecStart", name)
	}
	return u
}

// expand does what systemd does to the few specifiers the units use.
func expand(s, credsDir, stateDir string) string {
	return strings.NewReplacer("%d", credsDir, "%S", stateDir).Replace(s)
}

// writeCreds writes, in a directory standing for $CREDENTIALS_DIRECTORY,
// each credential the unit loads, from content (the test must know every
// name, so a renamed credential fails here). Files are mode 0440: what a
// credential guarded by systemd's ACL shows.
func writeCreds(t *testing.T, u unit, content map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for id := range u.creds {
		c, ok := content[id]
		if !ok {
			t.Fatalf("the unit loads credential %q, which the test does not know", id)
		}
		if err := os.WriteFile(filepath.Join(dir, id), []byte(c), 0o440); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func randomB64(t *testing.T, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// TestGatewayCaddyfile validates deploy/Caddyfile as the gateway unit loads
// it: with the unit's environment and its credentials read through the
// {file.*} placeholders. A grant key too short is refused, so the secrets
// do come from the credential files.
func TestGatewayCaddyfile(t *testing.T) {
	t.Parallel()
	u := readUnit(t, "hashwall-gateway.service")
	state := t.TempDir()
	validate := func(grantKey string) (string, error) {
		creds := writeCreds(t, u, map[string]string{"api-token": randomB64(t, 24) + "\n", "grant-key": grantKey + "\n"})
		cmd := exec.Command(bin, "validate", "--config", "Caddyfile")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + state, "CREDENTIALS_DIRECTORY=" + creds}
		for k, v := range u.env {
			cmd.Env = append(cmd.Env, k+"="+expand(v, creds, state))
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := validate(randomB64(t, 32)); err != nil {
		t.Fatalf("hashwall validate: %v\n%s", err, out)
	}
	if out, err := validate("short"); err == nil || !strings.Contains(out, "grant keys must be at least 32 bytes") {
		t.Fatalf("a 5-byte grant key credential was not refused: %v\n%s", err, out)
	}
}

// startRedis starts redis-server with a shipped config, only its data
// directory and pid file moved into the test's.
func startRedis(t *testing.T, conf string) *redistest.Server {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, re := range []string{`(?m)^dir .*$`, `(?m)^pidfile .*$`} {
		if !regexp.MustCompile(re).Match(b) {
			t.Fatalf("%s has no line %s", conf, re)
		}
	}
	b = regexp.MustCompile(`(?m)^dir .*$`).ReplaceAll(b, []byte("dir "+dir))
	b = regexp.MustCompile(`(?m)^pidfile .*$`).ReplaceAll(b, []byte("pidfile "+filepath.Join(dir, "redis.pid")))
	p := filepath.Join(dir, conf)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return redistest.Start(t, redistest.WithConfigFile(p))
}

// TestRedisConfigs starts redis-server with each shipped config and holds
// it to the durability check the agent and the gateway run at start, plus
// what that check does not see: fsync during AOF rewrites, no eviction,
// and a loopback-only bind (read from the file: the test binds its own).
func TestRedisConfigs(t *testing.T) {
	t.Parallel()
	for _, conf := range []string{"redis-bank.conf", "redis-gateway.conf"} {
		t.Run(conf, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			binds := regexp.MustCompile(`(?m)^bind (.*)$`).FindAllSubmatch(b, -1)
			if len(binds) != 1 || string(binds[0][1]) != "127.0.0.1 -::1" {
				t.Fatalf("%s binds %q, want only loopback", conf, binds)
			}
			srv := startRedis(t, conf)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			defer rdb.Close()
			ctx := context.Background()
			if err := redisurl.CheckDurable(ctx, rdb); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]string{"no-appendfsync-on-rewrite": "no", "maxmemory-policy": "noeviction", "protected-mode": "yes"} {
				if got, err := rdb.ConfigGet(ctx, k).Result(); err != nil || got[k] != want {
					t.Errorf("CONFIG GET %s = %q, %v; want %q", k, got[k], err, want)
				}
			}
		})
	}
}

// TestAgentUnitRuns runs the agent's ExecStart as systemd would: the unit's
// Environment= overridden by agent.env.example, %d the credentials
// directory, against redis-server with redis-bank.conf. The agent answers
// /readyz (it found its master key and signing key, and took the store as
// durable), its admin API takes the token from the credential, and the
// example's --metrics-listen serves.
func TestAgentUnitRuns(t *testing.T) {
	t.Parallel()
	u := readUnit(t, "hashwall-agent.service")

	keygen := t.TempDir()
	if out, err := exec.Command(bin, "agent", "keygen", "--out", filepath.Join(keygen, "signing-key"), "--kid", "agent-test").CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	signingKey, err := os.ReadFile(filepath.Join(keygen, "signing-key"))
	if err != nil {
		t.Fatal(err)
	}
	adminToken := randomB64(t, 24)
	creds := writeCreds(t, u, map[string]string{
		"master-key":      randomB64(t, 32) + "\n",
		"old-master-keys": randomB64(t, 32) + "\n" + randomB64(t, 32) + "\n",
		"admin-token":     adminToken + "\n",
		"webhook-secret":  randomB64(t, 32) + "\n",
		"signing-key":     string(signingKey),
	})

	env := map[string]string{}
	for k, v := range u.env {
		env[k] = expand(v, creds, "")
	}
	example := readEnvFile(t, "agent.env.example")
	for k, v := range example {
		if _, ok := u.env[k]; !ok {
			t.Fatalf("agent.env.example sets %s, which the unit does not use", k)
		}
		env[k] = v
	}
	listen := freeAddr(t)
	metrics := freeAddr(t)
	env["HASHWALL_AGENT_LISTEN"] = listen
	env["HASHWALL_AGENT_REDIS"] = startRedis(t, "redis-bank.conf").URL()
	if !strings.Contains(env["HASHWALL_AGENT_FLAGS"], "--metrics-listen 127.0.0.1:9480") {
		t.Fatalf("agent.env.example: flags %q no longer serve metrics on 127.0.0.1:9480", env["HASHWALL_AGENT_FLAGS"])
	}
	env["HASHWALL_AGENT_FLAGS"] = strings.Replace(env["HASHWALL_AGENT_FLAGS"], "127.0.0.1:9480", metrics, 1)

	argv := execArgs(t, expand(u.execStart, creds, ""), env)
	if argv[0] != installed {
		t.Fatalf("ExecStart runs %s, not %s", argv[0], installed)
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CREDENTIALS_DIRECTORY=" + creds}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", log.String())
		}
	}()

	get := func(url, token string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(30 * time.Second); get("http://"+listen+"/readyz", "") != http.StatusOK; {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the agent exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent is not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	check := "http://" + listen + "/v1/admin/ledger/check"
	if got := get(check, adminToken); got != http.StatusOK {
		t.Errorf("admin API with the credential's token: %d", got)
	}
	if got := get(check, "wrong"); got == http.StatusOK {
		t.Error("admin API took a wrong token")
	}
	if got := get("http://"+metrics+"/metrics", ""); got != http.StatusOK {
		t.Errorf("metrics on the example's --metrics-listen: %d", got)
	}
}

// readEnvFile reads an EnvironmentFile: KEY=VALUE lines, # comments.
func readEnvFile(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(v, `"'`) {
			t.Fatalf("%s: %q: want unquoted KEY=VALUE", name, line)
		}
		env[k] = v
	}
	return env
}

// execArgs splits ExecStart as systemd does for the forms the units use:
// ${VAR} replaced within a word, $VAR alone split into words.
func execArgs(t *testing.T, line string, env map[string]string) []string {
	t.Helper()
	lookup := func(k string) string {
		v, ok := env[k]
		if !ok {
			t.Fatalf("ExecStart uses %s, which nothing sets", k)
		}
		return v
	}
	braced := regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)
	var argv []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			argv = append(argv, strings.Fields(lookup(w[1:]))...)
			continue
		}
		argv = append(argv, braced.ReplaceAllStringFunc(w, func(m string) string { return lookup(m[2 : len(m)-1]) }))
	}
	return argv
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}
