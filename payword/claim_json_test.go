package payword

import (
	"encoding/json"
	"testing"
)

func checkClaimJSON(t *testing.T, c Claim) {
	t.Helper()
	want, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AppendJSON([]byte("x")); string(got[1:]) != string(want) || got[0] != 'x' {
		t.Fatalf("AppendJSON:\n got %s\nwant %s", got[1:], want)
	}
}

func TestClaimAppendJSONMatchesMarshal(t *testing.T) {
	base := Claim{Serial: Serial{1, 2, 3, 0xff}, Segment: 7, Index: 128, Token: Token{9, 8, 7}, Amount: 3,
		Product: "/articles/a", Auth: "0123abcd.1z", Time: 1764633600}
	cases := []Claim{base, {}}
	for _, f := range []func(*Claim){
		func(c *Claim) { c.Binding = Bytes{1, 2, 3, 4, 5} },
		func(c *Claim) { c.Binding = Bytes{} },
		func(c *Claim) { c.Void = true; c.Auth += VoidSuffix },
		func(c *Claim) { c.Product = "/a?x=1&y=<b>\"q\"\\é\u2028\x01" },
		func(c *Claim) { c.Time = -1; c.Segment, c.Index, c.Amount = ^uint32(0), ^uint32(0), ^uint32(0) },
	} {
		c := base
		f(&c)
		cases = append(cases, c)
	}
	for _, c := range cases {
		checkClaimJSON(t, c)
	}
}

func FuzzClaimAppendJSON(f *testing.F) {
	f.Add([]byte{1, 2}, uint32(1), uint32(2), uint32(3), "/articles/a", "ab.1", int64(5), false, []byte("tok"))
	f.Fuzz(func(t *testing.T, bind []byte, seg, i, p uint32, product, auth string, at int64, void bool, tok []byte) {
		c := Claim{Segment: seg, Binding: bind, Index: i, Amount: p, Product: product, Auth: auth, Time: at, Void: void}
		copy(c.Token[:], tok)
		copy(c.Serial[:], tok)
		checkClaimJSON(t, c)
	})
}

func BenchmarkClaimAppendJSON(b *testing.B) {
	c := Claim{Serial: Serial{1}, Segment: 7, Binding: make(Bytes, 120), Index: 3, Amount: 1, Product: "/articles/a", Auth: "0123456789abcdef.2bc", Time: 1764633600}
	buf := make([]byte, 0, 512)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = c.AppendJSON(buf[:0])
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = json.Marshal(c)
		}
	})
}
