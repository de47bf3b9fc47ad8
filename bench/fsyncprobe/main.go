// Command fsyncprobe times synchronous appends in a directory, as Redis's
// AOF with appendfsync always makes them (write, then fdatasync), and
// prints the percentiles: no payment is acknowledged sooner than one of
// these, so their p99 is the floor of the payment path's p99.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory to probe")
	n := flag.Int("n", 1000, "appends (at most 100000)")
	size := flag.Int("size", 1024, "bytes per append")
	flag.Parse()
	if *n < 1 || *n > 100_000 || *size < 1 || *size > 1<<20 {
		log.Fatal("fsyncprobe: -n 1..100000, -size 1..1048576")
	}
	f, err := os.CreateTemp(*dir, "fsyncprobe-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	buf := make([]byte, *size)
	took := make([]time.Duration, *n)
	for i := range took {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			log.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			log.Fatal(err)
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	q := func(p float64) string {
		return fmt.Sprintf("%.3f", float64(took[min(len(took)-1, int(p*float64(len(took))))])/1e6)
	}
	fmt.Printf("fsync_p50_ms=%s fsync_p99_ms=%s fsync_max_ms=%s\n", q(0.5), q(0.99), q(1))
}
