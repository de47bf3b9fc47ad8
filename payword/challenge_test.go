package payword

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestChallengeRoundTrip(t *testing.T) {
	c := Challenge{Realm: `The "Daily" Planet \ news`, Vendor: "daily-planet", Price: 2, Product: "/articles/moon", Agent: "https://bank.example.com"}
	h := c.String()
	want := `PayWord realm="The \"Daily\" Planet \\ news", vendor="daily-planet", price="2", product="/articles/moon", agent="https://bank.example.com"`
	if h != want {
		t.Fatalf("String() =\n%s\nwant\n%s", h, want)
	}
	got, err := ParseChallenge(h)
	if err != nil || got != c {
		t.Fatalf("ParseChallenge = %+v, %v", got, err)
	}
	// A control character can never break the header.
	if h := (Challenge{Realm: "a\r\nSet-Cookie: x", Vendor: "v", Price: 1, Product: "/a"}).String(); strings.ContainsAny(h, "\r\n") {
		t.Fatalf("control characters in %q", h)
	}
	// Token values, odd spacing, case and unknown parameters are accepted.
	got, err = ParseChallenge(`payword  Vendor=daily-planet ,price=2,product="/a", future="x"`)
	if err != nil || got.Vendor != "daily-planet" || got.Price != 2 || got.Product != "/a" {
		t.Fatalf("lenient parse = %+v, %v", got, err)
	}
}

func TestParseChallengeHostile(t *testing.T) {
	ok := `vendor="v", price="2", product="/a"`
	tests := []struct {
		name, h string
		want    error
	}{
		{"empty", "", ErrMalformed},
		{"other scheme", `Basic realm="x"`, ErrMalformed},
		{"oversized", "PayWord " + ok + `, realm="` + strings.Repeat("x", MaxChallengeHeader) + `"`, ErrTooLarge},
		{"too many parameters", "PayWord " + ok + manyParams(maxChallengeParams), ErrTooLarge},
		{"no price", `PayWord vendor="v", product="/a"`, ErrMalformed},
		{"price 0", `PayWord vendor="v", price="0", product="/a"`, ErrMalformed},
		{"negative price", `PayWord vendor="v", price="-2", product="/a"`, ErrMalformed},
		{"price above m", `PayWord vendor="v", price="1025", product="/a"`, ErrMalformed},
		{"price not a number", `PayWord vendor="v", price="two", product="/a"`, ErrMalformed},
		{"duplicate parameter", "PayWord " + ok + `, price="1"`, ErrMalformed},
		{"duplicate in another case", "PayWord " + ok + `, PRICE="1"`, ErrMalformed},
		{"unterminated quote", `PayWord vendor="v, price="2", product="/a`, ErrMalformed},
		{"missing comma", `PayWord vendor="v" price="2" product="/a"`, ErrMalformed},
		{"missing equals", `PayWord vendor "v"`, ErrMalformed},
		{"empty token value", `PayWord vendor=, price=2, product=/a`, ErrMalformed},
		{"control character", "PayWord vendor=\"v\x01\", price=2, product=/a", ErrMalformed},
		{"bad vendor", `PayWord vendor="a b", price="2", product="/a"`, ErrMalformed},
		{"bad product", `PayWord vendor="v", price="2", product="/a b"`, ErrMalformed},
		{"trailing backslash", `PayWord vendor="v\`, ErrMalformed},
		{"escaped control character", "PayWord realm=\"\\\x12\", vendor=v, price=2, product=/a", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseChallenge(tt.h); !errors.Is(err, tt.want) {
				t.Fatalf("ParseChallenge = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ", x%d=1", i)
	}
	return b.String()
}
