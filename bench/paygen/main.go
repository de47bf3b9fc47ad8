// Command paygen writes PayWord payment headers for the gateway benchmark:
// a test certificate signed by a fixed agent key, and for each load
// generator lane (bench/loadgen's -payments) a file of payments that spend
// its own segments contiguously, one token each, so every request carries a
// new, valid token.
package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/hashwall/hashwall/payword"
)

func main() {
	dir := flag.String("dir", ".", "output directory")
	threads := flag.Int("threads", 4, "files to write, one per load generator lane")
	per := flag.Int("n", 20000, "payments per file")
	vendor := flag.String("vendor", "bench", "vendor id")
	product := flag.String("product", "/articles/bench", "product (path) paid for")
	flag.Parse()

	const m = payword.MaxSegmentLen
	segsPer := (*per + m - 1) / m
	segments := *threads*segsPer + 1 // the last one pays for the grant

	agent := payword.SigningKey{ID: "bench-agent", Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	user := ed25519.NewKeyFromSeed([]byte("hashwall-bench-user-key-seed-32b"))
	var k payword.Secret
	copy(k[:], "hashwall-bench-chain-secret-32by")
	now := time.Now()
	cert := &payword.Certificate{
		IssuedAt: now.Unix() - 60, ExpiresAt: now.Unix() + 24*3600, UnitValue: 1, Currency: "EUR",
		Scope: payword.GenericScope, UserID: "u:bench",
	}
	copy(cert.Serial[:], fmt.Sprintf("%016x", now.UnixNano()))
	copy(cert.UserKey[:], user.Public().(ed25519.PublicKey))
	tree := cert.Issue(k, segments, m)
	if _, err := cert.Sign(agent); err != nil {
		log.Fatal(err)
	}

	// pay writes the headers of tokens 1..n of segment g.
	pay := func(w *bufio.Writer, g uint32, n int) {
		bind, err := payword.Bind(cert, user, g, *vendor, now)
		if err != nil {
			log.Fatal(err)
		}
		chain := payword.Segment(k, g, m)
		for i := 1; i <= n; i++ {
			p := &payword.Payment{
				Cert: cert, Segment: g, Anchor: tree.Anchor(int(g)), Path: tree.Path(int(g)), Binding: bind,
				Index: uint32(i), Token: chain[i], Amount: 1, Vendor: *vendor, Product: *product,
			}
			fmt.Fprintln(w, p.Header())
		}
	}
	write := func(name string, fill func(*bufio.Writer)) {
		f, err := os.Create(filepath.Join(*dir, name))
		if err != nil {
			log.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		fill(w)
		if err := w.Flush(); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	for t := 0; t < *threads; t++ {
		write(fmt.Sprintf("payments-%d.txt", t+1), func(w *bufio.Writer) {
			for left, g := *per, t*segsPer; left > 0; left, g = left-m, g+1 {
				pay(w, uint32(g), min(left, m))
			}
		})
	}
	write("grant-payment.txt", func(w *bufio.Writer) { pay(w, uint32(segments-1), 1) })
	write("agent-key.txt", func(w *bufio.Writer) {
		fmt.Fprintln(w, agent.ID, base64.RawURLEncoding.EncodeToString(agent.Public()))
	})
}
