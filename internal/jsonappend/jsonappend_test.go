package jsonappend

import (
	"encoding/json"
	"testing"
)

func check(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := String([]byte("x"), s); string(got) != "x"+string(want) {
		t.Fatalf("String(%q) = %s, want %s", s, got[1:], want)
	}
}

func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "/articles/a", "a\"b", `a\b`, "<script>", "a&b", "\x00\x1f\x7f", "é", "\u2028\u2029", "\xff\xfe", "tab\there", "~!@#$%^*()_+{}|:?`-=[];',./"} {
		check(t, s)
	}
}

func FuzzString(f *testing.F) {
	f.Add("/articles/a?x=1&y=<2>")
	f.Fuzz(check)
}

func BenchmarkString(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = String(buf[:0], "/articles/2026/12/02/the-bank-opens")
	}
}
