package wallet

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkUnlock opens a wallet with the production KDF. Target ≤ 500 ms.
func BenchmarkUnlock(b *testing.B) {
	saved := defaultKDF
	defaultKDF = kdfParams{Time: 1, Memory: 64 << 10, Threads: 2}
	defer func() { defaultKDF = saved }()
	path := filepath.Join(b.TempDir(), "w")
	w, err := Create(path, password, "", "u")
	if err != nil {
		b.Fatal(err)
	}
	w.Close()
	for b.Loop() {
		w, err := Open(path, password)
		if err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
}

// BenchmarkPay is one paid GET against a vendor on loopback: 402, journal
// record (fdatasync), payment, settle record (not flushed; see journal.go).
// Target ≤ 2 ms.
func BenchmarkPay(b *testing.B) {
	w, err := Create(filepath.Join(b.TempDir(), "w"), password, bank.URL, "u")
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	issue(b, w, 782, 128, "*")
	w.SetLimits(Limits{PerRequest: 10}) // no daily cap: every iteration pays the same site
	prices := map[string]uint32{}
	for i := range 100000 {
		prices[fmt.Sprintf("/a/%d", i)] = 1
	}
	v := newFakeVendor(b, "planet", prices)
	tr := &Transport{Wallet: w}
	n := 0
	for b.Loop() {
		if _, err := get(b, tr, fmt.Sprintf("%s/a/%d", v.URL, n)); err != nil {
			b.Fatal(err)
		}
		n++
	}
}
