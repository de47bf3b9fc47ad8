package paywall

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// adapt runs the Caddyfile adapter in process, as `caddy adapt` does.
func adapt(t testing.TB, src []byte) ([]byte, error) {
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	return pretty.Bytes(), nil
}

func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.caddyfile")
	files = append(files, "../../Caddyfile.example")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := adapt(t, src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		golden := filepath.Join("testdata", strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))+".golden.json")
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%s: %v (run with -update)", f, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: adapted JSON differs from %s:\n%s", f, golden, got)
		}
		// Stable: adapting twice gives the same bytes.
		if again, _ := adapt(t, src); !bytes.Equal(got, again) {
			t.Errorf("%s: adapt is not stable", f)
		}
	}
}

func TestCaddyfileHostile(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"args on the directive", `paywall extra { vendor v }`, "wrong argument count"},
		{"unknown option", `paywall { bogus 1 }`, "unrecognized paywall option"},
		{"vendor twice", "paywall {\nvendor a\nvendor b\n}", "given twice"},
		{"vendor without value", "paywall {\nvendor\n}", "wrong argument count"},
		{"vendor with two values", "paywall {\nvendor a b\n}", "wrong argument count"},
		{"price without tokens", "paywall {\nprice /a/*\n}", "wrong argument count"},
		{"price zero", "paywall {\nprice /a/* 0\n}", "must be 1..1024"},
		{"price negative", "paywall {\nprice /a/* -2\n}", "must be 1..1024"},
		{"price above a segment", "paywall {\nprice /a/* 1025\n}", "must be 1..1024"},
		{"price overflow", "paywall {\nprice /a/* 99999999999999999999\n}", "must be 1..1024"},
		{"price not a number", "paywall {\nprice /a/* two\n}", "must be 1..1024"},
		{"price extra arg", "paywall {\nprice /a/* 2 3\n}", "wrong argument count"},
		{"price unknown option", "paywall {\nprice /a/* 2 {\nfoo bar\n}\n}", "unrecognized price option"},
		{"price bad mode", "paywall {\nprice /a/* 2 {\nmode never\n}\n}", "unknown mode"},
		{"price bad ttl", "paywall {\nprice /a/* 2 {\nttl soon\n}\n}", "invalid duration"},
		{"price negative ttl", "paywall {\nprice /a/* 2 {\nttl -1h\n}\n}", "invalid duration"},
		{"scope without value", "paywall {\nprice /a/* 2 {\nscope\n}\n}", "wrong argument count"},
		{"ttl zero", "paywall {\nttl 0s\n}", "invalid duration"},
		{"key without public key", "paywall {\nkey kid\n}", "wrong argument count"},
		{"key twice", "paywall {\nkey k AAAA\nkey k BBBB\n}", "given twice"},
		{"free without pattern", "paywall {\nfree\n}", "wrong argument count"},
		{"upstream_price with an argument", "paywall {\nupstream_price yes\n}", "wrong argument count"},
		{"crl with three args", "paywall {\ncrl agent 1s x\n}", "wrong argument count"},
		{"crl bad interval", "paywall {\ncrl agent never\n}", "invalid interval"},
		{"token_value without currency", "paywall {\ntoken_value 1\n}", "wrong argument count"},
		{"token_value extra arg", "paywall {\ntoken_value 1 EUR x\n}", "wrong argument count"},
		{"token_value not a number", "paywall {\ntoken_value 0.01 EUR\n}", "not a number of minor units"},
		{"token_value negative", "paywall {\ntoken_value -1 EUR\n}", "not a number of minor units"},
	} {
		h := new(Handler)
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestCaddyfileRepeated: a single-valued subdirective given twice is an
// error naming the line of its second occurrence; repeatable ones add up.
func TestCaddyfileRepeated(t *testing.T) {
	for _, tc := range []struct{ opt, value string }{
		{"vendor", "v"}, {"api_token", "t"}, {"agent", "https://a"}, {"redis", "redis://r"},
		{"grant_key", "k"}, {"ttl", "1h"}, {"mode", "batch"}, {"realm", "r"}, {"upstream_price", ""},
		{"template", "f"}, {"crl", "agent 1s"}, {"crl_max_age", "1m"}, {"batch_interval", "1m"},
		{"ephemeral", ""}, {"offline_segments", "2"}, {"token_value", "1 EUR"},
	} {
		body := fmt.Sprintf("paywall {\n\t%s %s\n\tfree /f\n\t%s %s\n}", tc.opt, tc.value, tc.opt, tc.value)
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(body))
		if err == nil || !strings.Contains(err.Error(), tc.opt+" given twice") || !strings.HasSuffix(err.Error(), "Testfile:4") {
			t.Errorf("%s twice: error %v, want one naming line 4", tc.opt, err)
		}
	}
	for _, opt := range []string{"scope /a/", "ttl 1h", "mode batch"} {
		body := fmt.Sprintf("paywall {\n\tprice /a/* 2 {\n\t\t%s\n\t\t%s\n\t}\n}", opt, opt)
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(body))
		name, _, _ := strings.Cut(opt, " ")
		if err == nil || !strings.Contains(err.Error(), name+" given twice") || !strings.HasSuffix(err.Error(), "Testfile:4") {
			t.Errorf("price %s twice: error %v, want one naming line 4", name, err)
		}
	}
	h := new(Handler)
	body := "paywall {\nkey k1 AAAA\nkey k2 BBBB\nprice /a/* 1\nprice /b/* 2\nfree /x\nfree /y /z\n}"
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(body)); err != nil {
		t.Fatal(err)
	}
	if len(h.Keys) != 2 || len(h.Rules) != 2 || len(h.Free) != 3 {
		t.Fatalf("repeatable subdirectives: %d keys, %d rules, %d free", len(h.Keys), len(h.Rules), len(h.Free))
	}
}

func TestValidateHostile(t *testing.T) {
	ok := func() Handler {
		return Handler{Vendor: "v", Agent: "https://bank.example", Redis: "redis://127.0.0.1:1/0",
			GrantKey: "{env.HW_GRANT_KEY}", Rules: []Rule{{Pattern: "/a/*", Price: 1}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Handler)
	}{
		{"bad vendor", func(h *Handler) { h.Vendor = "a b" }},
		{"no agent", func(h *Handler) { h.Agent = "" }},
		{"agent not http", func(h *Handler) { h.Agent = "ftp://x" }},
		{"no redis", func(h *Handler) { h.Redis = "" }},
		{"price too high", func(h *Handler) { h.Rules[0].Price = MaxPrice + 1 }},
		{"price zero", func(h *Handler) { h.Rules[0].Price = 0 }},
		{"relative pattern", func(h *Handler) { h.Rules[0].Pattern = "a/*" }},
		{"encoded pattern", func(h *Handler) { h.Rules[0].Pattern = "/a%2f/*" }},
		{"dot-dot pattern", func(h *Handler) { h.Rules[0].Pattern = "/a/../b" }},
		{"trailing-dot pattern", func(h *Handler) { h.Rules[0].Pattern = "/a./b" }},
		{"too many stars", func(h *Handler) { h.Rules[0].Pattern = "/" + strings.Repeat("*/", 9) }},
		{"long pattern", func(h *Handler) { h.Rules[0].Pattern = "/" + strings.Repeat("a", 300) }},
		{"scope without slash", func(h *Handler) { h.Rules[0].Scope = "/a/*" }},
		{"bad mode", func(h *Handler) { h.Rules[0].Mode = "never" }},
		{"bad default mode", func(h *Handler) { h.Mode = "never" }},
		{"bad crl", func(h *Handler) { h.CRL = "dns" }},
		{"bad free", func(h *Handler) { h.Free = []string{"x"} }},
		{"bad key", func(h *Handler) { h.Keys = map[string]string{"k": "not base64!"} }},
		{"short key", func(h *Handler) { h.Keys = map[string]string{"k": "AAAA"} }},
		{"batch interval past the agent's report window", func(h *Handler) { h.BatchInterval = 301e9 }},
		{"plain http agent on another host", func(h *Handler) { h.Agent = "http://bank.example" }},
		{"agent with userinfo", func(h *Handler) { h.Agent = "https://u:p@bank.example" }},
		{"no grant key", func(h *Handler) { h.GrantKey = "" }},
		{"short grant key", func(h *Handler) { h.GrantKey = "0123456789" }},
		{"dead rule", func(h *Handler) { h.Rules = append(h.Rules, Rule{Pattern: "/a/*", Price: 3}) }},
		{"token worth nothing", func(h *Handler) { h.TokenValue = &TokenValue{Currency: "EUR"} }},
		{"token worth too much", func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: maxMinorUnits + 1, Currency: "EUR"} }},
		{"lower-case currency", func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1, Currency: "eur"} }},
		{"no currency", func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1} }},
		{"long currency", func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1, Currency: "ABCDEFGHI"} }},
		{"markup currency", func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1, Currency: "<b>"} }},
	} {
		h := ok()
		tc.mod(&h)
		if err := h.validate(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	for _, mod := range []func(*Handler){
		func(*Handler) {},
		func(h *Handler) { h.Agent = "http://127.0.0.1:8480" },
		func(h *Handler) { h.Agent = "http://localhost:8480" },
		func(h *Handler) { h.Agent, h.InsecureAgent = "http://bank.internal", true },
		func(h *Handler) { h.GrantKey = strings.Repeat("k", minGrantKey) },
		func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1, Currency: "EUR"} },
		func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: maxMinorUnits, Currency: "XBT8"} },
		func(h *Handler) {
			h.Rules = []Rule{{Pattern: "/i/*/special", Price: 9, Scope: "/i/*/"}, {Pattern: "/i/*/*", Price: 2, Scope: "/i/*/"}}
		},
	} {
		h := ok()
		mod(&h)
		if err := h.validate(); err != nil {
			t.Errorf("valid config refused: %v", err)
		}
	}
}

// TestCaddyfileErrorsNameTheirLine: what Validate refuses, adapting the
// Caddyfile refuses, naming the line of the setting, or of the block for
// a missing one.
func TestCaddyfileErrorsNameTheirLine(t *testing.T) {
	base := []string{
		"vendor daily-planet",            // line 3
		"agent https://bank.example",     // 4
		"redis redis://127.0.0.1:6379/0", // 5
		"grant_key {env.HW_GRANT_KEY}",   // 6
		"price /articles/* 2",            // 7
	}
	adapt := func(lines []string) error {
		var kept []string
		for _, l := range lines {
			if l != "" {
				kept = append(kept, l)
			}
		}
		src := "news.example.com {\n\tpaywall {\n\t\t" + strings.Join(kept, "\n\t\t") + "\n\t}\n\trespond ok\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
		return err
	}
	for _, tc := range []struct {
		name, replace, with, want string
		line                      int
	}{
		{"misspelt mode", "", "mode almost-online", `unknown mode "almost-online"`, 8},
		{"misspelt rule mode", "price /articles/* 2", "price /articles/* 2 {\n\t\t\tmode onlin\n\t\t}", `unknown mode "onlin"`, 8},
		{"missing vendor", "vendor daily-planet", "", `vendor "" is not a valid id`, 2},
		{"missing agent", "agent https://bank.example", "", `agent "" must be an https URL`, 2},
		{"missing redis", "redis redis://127.0.0.1:6379/0", "", "redis required", 2},
		{"missing grant key", "grant_key {env.HW_GRANT_KEY}", "", "grant_key required", 2},
		{"relative pattern", "price /articles/* 2", "price articles/* 2", "articles/*", 7},
		{"relative free pattern", "", "free index.html", "index.html", 8},
		{"undecodable key", "", "key agent-2026 not!base64", "key agent-2026", 8},
		{"short grant key", "grant_key {env.HW_GRANT_KEY}", "grant_key tooshort", "grant_key must be at least 32 bytes", 6},
		{"short old grant key", "grant_key {env.HW_GRANT_KEY}", "grant_key {env.HW_GRANT_KEY} tooshort", "old grant_key must be at least 32 bytes", 6},
		{"plain http agent", "agent https://bank.example", "agent http://bank.example", "plain http only to a loopback address", 4},
		{"products collide", "", "price /articles/* 5", "price /articles/* is given twice", 8},
		{"crl source", "", "crl dns", `crl must be "agent" or "redis"`, 8},
		{"token worth nothing", "", "token_value 0 EUR", "token_value: 0 minor units", 8},
		{"lower-case currency", "", "token_value 1 eur", `token_value: currency "eur"`, 8},
	} {
		lines := slices.Clone(base)
		if tc.replace == "" {
			lines = append(lines, tc.with)
		} else {
			lines[slices.Index(lines, tc.replace)] = tc.with
		}
		err := adapt(lines)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("at Caddyfile:%d", tc.line)) {
			t.Errorf("%s: %v, want %q at line %d", tc.name, err, tc.want, tc.line)
		}
	}
	if err := adapt(base); err != nil {
		t.Errorf("valid block: %v", err)
	}
	// grant_key takes the signing key, then the old ones that still verify.
	h := new(Handler)
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("paywall {\n\tgrant_key {env.NEW} {env.OLD} {env.OLDER}\n}")); err != nil ||
		h.GrantKey != "{env.NEW}" || !slices.Equal(h.OldGrantKeys, []string{"{env.OLD}", "{env.OLDER}"}) {
		t.Errorf("grant_key with old keys: %v %q %q", err, h.GrantKey, h.OldGrantKeys)
	}
	// insecure_agent allows plain http to another host.
	lines := slices.Clone(base)
	lines[1] = "agent http://bank.internal"
	if err := adapt(append(lines, "insecure_agent")); err != nil {
		t.Errorf("insecure_agent: %v", err)
	}
}

func FuzzCaddyfile(f *testing.F) {
	src, _ := os.ReadFile("testdata/newspaper.caddyfile")
	f.Add(string(src))
	f.Add("paywall {\nprice /a/* 2 {\nscope /a/\n}\n}")
	f.Add("paywall {\nkey k v\nfree /x /y\ncrl redis 2s\n}")
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 1<<16 {
			return
		}
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(body)); err != nil {
			return
		}
		_ = h.validate()
		if _, err := json.Marshal(h); err != nil {
			t.Fatal(err)
		}
		for _, r := range h.Rules {
			if r.Price < 1 || r.Price > MaxPrice {
				t.Fatalf("price %d parsed", r.Price)
			}
		}
	})
}
