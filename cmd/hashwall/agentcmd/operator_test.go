package agentcmd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// The test binary is also `hashwall`: run with asHashwall=1 it is Caddy's
// command line with this package's commands, so each test runs the real
// command in its own process, exit status and all.
const asHashwall = "HASHWALL_AGENTCMD_TEST_AS_HASHWALL"

func TestMain(m *testing.M) {
	if os.Getenv(asHashwall) == "1" {
		caddycmd.Main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const adminToken = "test-admin-token-0123456789"

// testBank is an agent served over HTTP on loopback, on its own Redis.
type testBank struct {
	url   string
	admin *agentapi.Client
	rdb   *redis.Client
}

func startBank(t *testing.T) *testBank {
	t.Helper()
	srv := redistest.Start(t)
	kf := filepath.Join(t.TempDir(), "agent.key")
	if _, err := agent.Keygen(kf, "agent-test"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.RunServer(ctx, agent.ServerConfig{Listener: ln, RedisURL: srv.URL(), KeyFiles: []string{kf},
			MasterKey:  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
			AdminToken: adminToken, Settings: agent.Settings{}.WithDefaults()})
	}()
	b := &testBank{url: "http://" + ln.Addr().String(), rdb: redis.NewClient(&redis.Options{Addr: srv.Addr()})}
	t.Cleanup(func() { // before Redis stops
		b.rdb.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	b.admin = agentapi.NewClient(b.url, nil).WithToken(adminToken)
	for i := 0; ; i++ {
		if _, err := b.admin.Ready(ctx); err == nil {
			return b
		} else if i == 200 {
			t.Fatalf("the agent did not start: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// result is what one run of the command left.
type result struct {
	out, err string
	code     int
}

// hashwall runs `hashwall agent args...` with env (NAME=value) over an
// environment cleared of HASHWALL_ variables.
func hashwall(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"agent"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HASHWALL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, asHashwall+"=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// as runs a command against b with the admin token.
func (b *testBank) as(t *testing.T, args ...string) result {
	t.Helper()
	return hashwall(t, []string{"HASHWALL_AGENT=" + b.url, envAdminToken + "=" + adminToken}, args...)
}

// ok runs a command that must succeed and returns its output.
func (b *testBank) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := b.as(t, args...)
	if r.code != 0 {
		t.Fatalf("hashwall agent %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// okJSON runs a command with --json and decodes its output into v.
func (b *testBank) okJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := b.ok(t, append(args, "--json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("hashwall agent %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// expect checks a run's exit status and that its stderr says each of says.
func expect(t *testing.T, r result, code int, says ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.out, r.err)
	}
	for _, s := range says {
		if !strings.Contains(r.err, s) {
			t.Errorf("stderr does not say %q:\n%s", s, r.err)
		}
	}
}

// reader registers a reader and returns a client of its session.
func (b *testBank) reader(t *testing.T, name string) *agentapi.Client {
	t.Helper()
	ctx := context.Background()
	c := agentapi.NewClient(b.url, nil)
	if _, err := c.RegisterUser(ctx, agentapi.RegisterUser{Username: name, Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx, name, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	return c.WithToken(s.Token)
}

func balance(t *testing.T, reader *agentapi.Client) int64 {
	t.Helper()
	a, err := reader.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// held is a certificate as a wallet holds it.
type held struct {
	cert *payword.Certificate
	k    payword.Secret
	key  ed25519.PrivateKey
}

func buy(t *testing.T, reader *agentapi.Client, tokens int64) *held {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	bu, err := reader.Buy(context.Background(), tokens, priv.Public().(ed25519.PublicKey), "")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := payword.DecodeBase64(bu.Certificate)
	h := &held{key: priv}
	if h.cert, err = payword.ParseCertificate(raw); err != nil {
		t.Fatal(err)
	}
	k, _ := payword.DecodeBase64(bu.Secret)
	copy(h.k[:], k)
	return h
}

// claim is a vendor's claim of the first n tokens of segment g, bound to
// the vendor when bind (else: vendor fraud).
func (h *held) claim(g, n uint32, vendor string, bind bool) payword.Claim {
	c := payword.Claim{Serial: h.cert.Serial, Segment: g, Index: n, Amount: n,
		Token: payword.TokenAt(h.k, g, int(n), int(h.cert.SegmentLen)), Product: "/a", Auth: fmt.Sprintf("a-%d", g), Time: 1}
	if bind {
		b, _ := payword.Bind(h.cert, h.key, g, vendor, time.Unix(1, 0))
		c.Binding = b.Raw()
	}
	return c
}

// onCRL is the agent's revocation entry of serial, read through the API.
func (b *testBank) onCRL(t *testing.T, serial payword.Serial) *payword.CRLEntry {
	t.Helper()
	keys, err := agentKeys(context.Background(), b.admin)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.admin.CRL(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := payword.OpenCRL(raw, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range crl.Entries {
		if e.Serial == serial {
			return &e
		}
	}
	return nil
}

// TestOperatorCommands runs each command against a live agent and checks
// its effect through the agent's API.
func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	b := startBank(t)
	ctx := context.Background()

	// vendor register: the token it prints works.
	var v agentapi.Vendor
	b.okJSON(t, &v, "vendor", "register", "planet", "--origin", "https://news.example.com")
	if v.Vendor != "planet" || v.Kind != agentapi.KindGeneric || !strings.HasPrefix(v.Token, agentapi.VendorTokenPrefix) {
		t.Fatalf("registered %+v", v)
	}
	planet := agentapi.NewClient(b.url, nil).WithToken(v.Token)
	if _, err := planet.Statement(ctx, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("the printed token does not work: %v", err)
	}
	out := b.ok(t, "vendor", "register", "daily", "--kind", "specific")
	if !regexp.MustCompile(`token\s+hwv_\S+`).MatchString(out) || !strings.Contains(out, "shown only this once") ||
		!strings.Contains(out, "no wallet pays") {
		t.Errorf("vendor register prints:\n%s", out)
	}

	// vendor origins: what the agent signs.
	var d payword.VendorOrigins
	b.okJSON(t, &d, "vendor", "origins", "planet")
	if d.Vendor != "planet" || !reflect.DeepEqual(d.Origins, []string{"https://news.example.com"}) {
		t.Fatalf("origins %+v", d)
	}
	if out := b.ok(t, "vendor", "origins", "daily"); !strings.Contains(out, "none: no wallet pays") {
		t.Errorf("origins of daily:\n%s", out)
	}

	// credit: the reader's balance moves, once per event id.
	alice := b.reader(t, "alice")
	if out := b.ok(t, "credit", "alice", "500", "--ref", "inv-1"); out != "credited 500 to alice\n" {
		t.Errorf("credit prints %q", out)
	}
	for range 2 {
		var c agentapi.Credited
		b.okJSON(t, &c, "credit", "alice", "100", "--event", "evt-1")
	}
	if got := balance(t, alice); got != 600 {
		t.Fatalf("balance %d after crediting 500 and 100 (twice, one event), want 600", got)
	}

	// A certificate spent at planet (paid) and claimed without binding (fraud).
	h := buy(t, alice, 256)
	res, err := planet.Report(ctx, &payword.Report{Vendor: "planet", Batch: "b-1",
		Claims: []payword.Claim{h.claim(0, 3, "planet", true), h.claim(1, 2, "planet", false)}})
	if err != nil || res.Results[0].Verdict != agentapi.VerdictPaid || res.Results[1].Verdict != agentapi.VerdictVendorFraud {
		t.Fatalf("report: %+v %v", res, err)
	}

	// disputes: the fraud case.
	var fc agentapi.FraudCases
	b.okJSON(t, &fc, "disputes", "--limit", "10")
	if len(fc.Cases) != 1 || fc.Cases[0].Kind != string(agentapi.VerdictVendorFraud) || fc.Cases[0].Vendor != "planet" ||
		fc.Cases[0].Serial != h.cert.Serial.String() || fc.Cases[0].Seg != 1 {
		t.Fatalf("disputes: %+v", fc)
	}
	if out := b.ok(t, "disputes"); !regexp.MustCompile(`vendor_fraud\s+planet\s+` + h.cert.Serial.String() + `\s+1`).MatchString(out) {
		t.Errorf("disputes prints:\n%s", out)
	}

	// statement: JSON as the client reads it, the agent's CSV, a table.
	from, to := time.Now().Add(-time.Hour).Truncate(time.Second), time.Now().Add(time.Hour).Truncate(time.Second)
	period := []string{"--from", strconv.FormatInt(from.Unix(), 10), "--to", to.UTC().Format(time.RFC3339)}
	var st agentapi.Statement
	b.okJSON(t, &st, append([]string{"statement", "planet"}, period...)...)
	want, err := b.admin.VendorStatement(ctx, "planet", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&st, want) || st.Credited != 3 || len(st.Entries) != 1 {
		t.Fatalf("statement --json %+v, the client reads %+v", st, want)
	}
	csv := b.ok(t, append([]string{"statement", "planet", "--csv"}, period...)...)
	if !strings.HasPrefix(csv, "seq,time,kind,ref,amount,balance,currency\n") || !strings.Contains(csv, ",claims,") {
		t.Errorf("statement --csv:\n%s", csv)
	}
	if out := b.ok(t, "statement", "planet"); !regexp.MustCompile(`opening\s+0`).MatchString(out) ||
		!regexp.MustCompile(`claims\s+b-1\s+3\s+3`).MatchString(out) || !regexp.MustCompile(`closing\s+3\s+3`).MatchString(out) {
		t.Errorf("statement prints:\n%s", out)
	}

	// revoke a certificate: it goes on the CRL, and revocations lists it.
	serial := h.cert.Serial.String()
	if out := b.ok(t, "revoke", "--serial", serial); out != "revoked certificate "+serial+"\n" {
		t.Errorf("revoke prints %q", out)
	}
	if e := b.onCRL(t, h.cert.Serial); e == nil || e.Reason != "admin" {
		t.Fatalf("the revoked certificate's CRL entry: %+v", e)
	}
	if out := b.ok(t, "revoke", "--serial", serial); !strings.Contains(out, "was not active") {
		t.Errorf("revoking again prints %q", out)
	}
	var list revocations
	b.okJSON(t, &list, "revocations")
	if len(list.Entries) != 1 || list.Entries[0].Serial != h.cert.Serial || list.Last != list.Entries[0].Seq {
		t.Fatalf("revocations: %+v", list)
	}
	if out := b.ok(t, "revocations", "--since", strconv.FormatUint(list.Last, 10)); strings.Contains(out, serial) || !strings.Contains(out, "0 entries") {
		t.Errorf("revocations --since the head:\n%s", out)
	}

	// revoke a reader: its certificates go on the CRL, it can no longer log in.
	h2 := buy(t, alice, 1)
	if out := b.ok(t, "revoke", "--user", "alice"); out != "revoked alice and its 1 active certificate(s)\n" {
		t.Errorf("revoke --user prints %q", out)
	}
	if b.onCRL(t, h2.cert.Serial) == nil {
		t.Fatal("alice's certificate is not on the CRL")
	}
	if _, err := agentapi.NewClient(b.url, nil).Login(ctx, "alice", "correct horse"); !isCode(err, agentapi.CodeUserRevoked) {
		t.Fatalf("a revoked reader logs in: %v", err)
	}

	// settle and ledger check.
	var s agentapi.Settled
	b.okJSON(t, &s, "settle")
	if s != (agentapi.Settled{}) {
		t.Errorf("settled %+v with nothing expired", s)
	}
	if out := b.ok(t, "settle"); out != "settled 0 certificate(s), refunded 0 to their readers\n" {
		t.Errorf("settle prints %q", out)
	}
	if out := b.ok(t, "ledger", "check"); out != "the ledger balances\n" {
		t.Errorf("ledger check prints %q", out)
	}
	var lc agentapi.LedgerCheck
	if b.okJSON(t, &lc, "ledger", "check"); !lc.OK {
		t.Error("ledger check --json: not ok")
	}
}

func isCode(err error, code agentapi.Code) bool {
	ae, ok := errors.AsType[*agentapi.Error](err)
	return ok && ae.Code == code
}

// TestLedgerCheckFailsOnMismatch: a balance changed behind the ledger's
// back makes `ledger check` fail, for a person and for a monitor.
func TestLedgerCheckFailsOnMismatch(t *testing.T) {
	t.Parallel()
	b := startBank(t)
	ctx := context.Background()
	bob := b.reader(t, "bob")
	b.ok(t, "credit", "bob", "50")
	b.ok(t, "ledger", "check")
	me, err := bob.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.HIncrBy(ctx, "hw:a:u:"+me.User, "bal", 7).Err(); err != nil {
		t.Fatal(err)
	}
	if balance(t, bob) != 57 {
		t.Fatal("the tampering missed bob's balance")
	}
	expect(t, b.as(t, "ledger", "check"), 1, "ledger_mismatch", "does not sum", "investigate")
	r := b.as(t, "ledger", "check", "--json")
	expect(t, r, 1, "ledger_mismatch")
	var got struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || got.OK || got.Error == "" {
		t.Fatalf("ledger check --json printed %q (%v)", r.out, err)
	}
}

// TestOperatorRefusals: a missing or wrong token, a bad argument or an
// insecure agent URL is refused with what to do, and changes nothing.
func TestOperatorRefusals(t *testing.T) {
	t.Parallel()
	b := startBank(t)
	carol := b.reader(t, "carol")
	at := "HASHWALL_AGENT=" + b.url
	for _, args := range [][]string{{"credit", "carol", "5"}, {"settle"}, {"ledger", "check"}, {"disputes"}, {"vendor", "register", "x"}} {
		expect(t, hashwall(t, []string{at}, args...), 1, "set HASHWALL_ADMIN_TOKEN to the agent's admin token")
		r := hashwall(t, []string{at, envAdminToken + "=wrong-token-4242"}, args...)
		expect(t, r, 1, "unauthorized", "HTTP 401", "set HASHWALL_ADMIN_TOKEN")
		if strings.Contains(r.out+r.err, "wrong-token-4242") {
			t.Errorf("the token is printed: %s", r.err)
		}
	}
	// Plain http to another host: refused before anything is sent.
	for _, env := range [][]string{{"HASHWALL_AGENT=http://bank.example.com"}, {at}} {
		r := hashwall(t, append(env, envAdminToken+"="+adminToken), "credit", "carol", "5", "--agent", "http://bank.example.com:8480")
		expect(t, r, 1, "refusing to send the admin token over plain http to bank.example.com:8480", "use https")
	}
	expect(t, hashwall(t, []string{"HASHWALL_AGENT=http://bank.example.com", envAdminToken + "=" + adminToken}, "settle"),
		1, "refusing to send the admin token over plain http")

	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"credit", "carol", "0"}, "above 0"},
		{[]string{"credit", "carol", "--", "-5"}, "above 0"},
		{[]string{"credit", "carol", "-5"}, "unknown shorthand flag"},
		{[]string{"credit", "carol", "5.00"}, "whole number"},
		{[]string{"credit", "carol", "1e3"}, "whole number"},
		{[]string{"credit", "carol", "99999999999999999999"}, "whole number"},
		{[]string{"credit", "carol"}, "takes 2 argument(s), got 1"},
		{[]string{"credit", "carol", "5", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"credit", "carol", "5", "--agent", "ftp://127.0.0.1"}, "not an agent URL"},
		{[]string{"revoke"}, "exactly one of --serial, --user, --vendor"},
		{[]string{"revoke", "--user", "carol", "--vendor", "planet"}, "exactly one"},
		{[]string{"revoke", "--serial", "00ff"}, "not a serial"},
		{[]string{"disputes", "--limit", "0"}, "--limit is 1 to 1000"},
		{[]string{"statement", "planet", "--from", "last week"}, "not a time"},
		{[]string{"statement", "planet", "--csv", "--json"}, "not both"},
		{[]string{"vendor", "register", "x", "--kind", "special"}, "--kind is generic or specific"},
		{[]string{"vendor"}, "name a command"},
		{[]string{"ledger", "audit"}, `unknown command "audit"`},
	} {
		r := b.as(t, c.args...)
		expect(t, r, 2, c.says, "usage: ")
	}
	if got := balance(t, carol); got != 0 {
		t.Fatalf("refused credits moved carol's balance to %d", got)
	}

	// The agent's refusals name their code and what to do.
	expect(t, b.as(t, "credit", "carol", strconv.FormatInt(1<<41, 10)), 1, "invalid_credit", "HTTP 400")
	expect(t, b.as(t, "credit", "nobody", "5"), 1, "unknown_user", "usernames are case-sensitive")
	expect(t, b.as(t, "revoke", "--vendor", "nobody"), 1, "unknown_account")
	expect(t, b.as(t, "statement", "nobody"), 1, "unknown_vendor")
	b.ok(t, "vendor", "register", "planet")
	expect(t, b.as(t, "vendor", "register", "planet"), 1, "vendor_taken", "choose another")
	expect(t, b.as(t, "vendor", "register", "sun", "--origin", "ftp://sun.example.com"), 1, "invalid_origins", "scheme://host")
	expect(t, b.as(t, "settle", "--agent", b.url+"/prefix"), 1, "404 Not Found", "is --agent the agent's base URL?")
	if got := balance(t, carol); got != 0 {
		t.Fatalf("refused credits moved carol's balance to %d", got)
	}

	// No agent there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	expect(t, b.as(t, "settle", "--agent", closed), 1, "cannot reach the agent", "--agent or HASHWALL_AGENT")
}

// TestOperatorHelp: every command's --help exits 0 and lists the flags its
// usage line names, spelt the same; a mistyped command starts no bank.
func TestOperatorHelp(t *testing.T) {
	t.Parallel()
	root := &cobra.Command{Use: "agent"}
	addOperatorCommands(root)
	var walk func(c *cobra.Command, path []string)
	n := 0
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			p := append(append([]string(nil), path...), sub.Name())
			walk(sub, p)
			n++
			r := hashwall(t, nil, append(p, "--help")...)
			if r.code != 0 || !strings.Contains(r.out, "Usage:") {
				t.Errorf("%v --help: exit %d\n%s%s", p, r.code, r.out, r.err)
			}
			for _, m := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(sub.Use, -1) {
				if sub.Flags().Lookup(m[1]) == nil || !strings.Contains(r.out, "--"+m[1]+" ") {
					t.Errorf("%v: usage %q names --%s, which its help does not list:\n%s", p, sub.Use, m[1], r.out)
				}
			}
		}
	}
	walk(root, nil)
	if n != 11 {
		t.Errorf("%d commands, want 11", n)
	}
	r := hashwall(t, nil, "credits", "alice", "5")
	if r.code == 0 || !strings.Contains(r.err, `unknown command "credits"`) {
		t.Fatalf("a mistyped command: exit %d\n%s", r.code, r.err)
	}
}
