package main

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in the manner of HdrHistogram:
// values below 2^(subBits+1) ns are kept exactly, larger ones in buckets
// 2^-subBits wide relative to their value (under 0.8% error). Its size is
// fixed, whatever the number of samples.
type hist struct {
	counts [(64 - subBits + 1) << subBits]uint64
	n      uint64
	max    time.Duration
}

const subBits = 7

func bucket(v uint64) int {
	shift := bits.Len64(v) - (subBits + 1)
	if shift <= 0 {
		return int(v)
	}
	return shift<<subBits + int(v>>shift)
}

// ceiling is the largest value that falls in bucket i.
func ceiling(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	m := uint64(i - shift<<subBits)
	return (m+1)<<shift - 1
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the smallest bucket ceiling at or above a q fraction of
// the samples (0 < q <= 1), never above the largest sample.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(time.Duration(ceiling(i)), h.max)
		}
	}
	return h.max
}
