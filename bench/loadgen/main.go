// Command loadgen drives an HTTP server on loopback, either open loop at a
// fixed offered rate or closed loop at saturation, and prints latency
// percentiles, the achieved rate and the errors on one line of key=value
// pairs (read by bench/run.sh).
//
// Open loop (-rate R): request i is due at start + i/R, whatever happened
// to the others, and its latency runs from that due time to the end of its
// response. A slow answer therefore delays nothing but is charged to every
// request that had to wait for it: no coordinated omission. Requests are
// dealt round-robin to -conns lanes, each one keep-alive connection that
// sends its requests in order (a lane's payments spend one segment after
// another, so they must arrive in order). A lane that falls behind sends at
// once and its requests carry the wait. Closed loop (-rate 0): each lane
// sends its next request as soon as the previous one is answered; the rate
// is the saturation throughput and the latency is per request.
//
// Each request carries the -H headers and, with -payments DIR, the next
// line of DIR/payments-<lane>.txt (bench/paygen's files) as its
// Authorization header. A run ends after -duration or -n requests, or when
// a lane runs out of payments.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	target   string   // http://127.0.0.1:port/path
	headers  []string // "Name: value"
	payments string   // directory of payments-<lane>.txt, or empty
	rate     float64  // requests per second; 0: closed loop
	conns    int
	duration time.Duration
	n        int // bound on requests
	timeout  time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.target, "url", "", "target URL, on a loopback address")
	flag.Func("H", "header `Name: value` on every request (repeatable)", func(s string) error {
		cfg.headers = append(cfg.headers, s)
		return nil
	})
	flag.StringVar(&cfg.payments, "payments", "", "directory of bench/paygen payment files: each request carries the next payment of its lane")
	flag.Float64Var(&cfg.rate, "rate", 0, "offered rate in requests/s (open loop); 0 for closed-loop saturation")
	flag.IntVar(&cfg.conns, "conns", 64, "connections (lanes)")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long to send")
	flag.IntVar(&cfg.n, "n", 10_000_000, "at most this many requests")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "per request")
	flag.Parse()
	res, err := run(cfg)
	if err != nil {
		log.Fatalf("loadgen: %v", err)
	}
	res.print(os.Stdout, cfg)
}

// Bounds on the knobs, so that a typo cannot run away.
const (
	maxConns    = 4096
	maxDuration = 10 * time.Minute
	maxRequests = 100_000_000
)

func (cfg *config) check() (addr, path string, err error) {
	u, err := url.Parse(cfg.target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", "", fmt.Errorf("-url %q: want http://host:port/path", cfg.target)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", "", fmt.Errorf("-url %q: loopback addresses only", cfg.target)
	}
	for _, h := range cfg.headers {
		if name, _, ok := strings.Cut(h, ":"); !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(h, "\r\n") {
			return "", "", fmt.Errorf("-H %q: want one line, Name: value", h)
		}
	}
	switch {
	case cfg.conns < 1 || cfg.conns > maxConns:
		return "", "", fmt.Errorf("-conns %d: want 1..%d", cfg.conns, maxConns)
	case cfg.duration <= 0 || cfg.duration > maxDuration:
		return "", "", fmt.Errorf("-duration %v: want up to %v", cfg.duration, maxDuration)
	case cfg.n < 1 || cfg.n > maxRequests:
		return "", "", fmt.Errorf("-n %d: want 1..%d", cfg.n, maxRequests)
	case cfg.rate < 0 || cfg.timeout <= 0:
		return "", "", errors.New("-rate and -timeout must be positive")
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(host, port), u.RequestURI(), nil
}

// lane is one connection and what it measured.
type lane struct {
	id     int
	conn   conn
	pays   *bufio.Reader // payments, one per line; nil without -payments
	file   *os.File
	prefix []byte // request line and fixed headers
	req    []byte
	lat    hist
	lag    hist // due time to send (open loop): the generator's own delay
	ok     int
	codes  map[int]int // non-2xx answers by status
	failed int         // transport errors
	first  error
	late   int // due but not sent before the run ended (open loop)
}

// next builds the lane's next request; false when it is out of payments.
func (l *lane) next() (bool, error) {
	l.req = append(l.req[:0], l.prefix...)
	if l.pays != nil {
		line, err := l.pays.ReadSlice('\n')
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, err
		}
		l.req = append(l.req, "Authorization: "...)
		l.req = append(l.req, line...)
		l.req = append(l.req, "\r\n"...)
	}
	l.req = append(l.req, "\r\n"...)
	return true, nil
}

func (l *lane) send() {
	status, err := l.conn.do(l.req)
	switch {
	case err != nil:
		l.failed++
		if l.first == nil {
			l.first = err
		}
	case status >= 200 && status < 300:
		l.ok++
	default:
		l.codes[status]++
	}
}

type result struct {
	lanes    []*lane
	start    time.Time
	end      time.Time // the last response
	outOfPay bool
}

func run(cfg config) (*result, error) {
	addr, path, err := cfg.check()
	if err != nil {
		return nil, err
	}
	prefix := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	for _, h := range cfg.headers {
		prefix += h + "\r\n"
	}
	res := &result{lanes: make([]*lane, cfg.conns)}
	defer func() {
		for _, l := range res.lanes {
			if l != nil {
				l.conn.close()
				if l.file != nil {
					l.file.Close()
				}
			}
		}
	}()
	for i := range res.lanes {
		l := &lane{id: i, prefix: []byte(prefix), codes: map[int]int{}, conn: conn{addr: addr, timeout: cfg.timeout}}
		res.lanes[i] = l
		if cfg.payments != "" {
			if l.file, err = os.Open(filepath.Join(cfg.payments, fmt.Sprintf("payments-%d.txt", i+1))); err != nil {
				return nil, err
			}
			l.pays = bufio.NewReaderSize(l.file, 64<<10)
		}
		// Connections open before the clock starts.
		if err := l.conn.dial(); err != nil {
			return nil, err
		}
	}
	total := cfg.n
	if cfg.rate > 0 {
		total = min(total, int(cfg.rate*cfg.duration.Seconds()))
	}
	res.start = time.Now().Add(5 * time.Millisecond)
	var (
		wg    sync.WaitGroup
		taken atomic.Int64 // closed loop: requests claimed
		stop  atomic.Bool  // a lane ran out of payments
		mu    sync.Mutex
	)
	for _, l := range res.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if cfg.rate > 0 {
				err = l.open(res.start, cfg.rate, cfg.conns, total, cfg.duration+cfg.timeout)
			} else {
				err = l.closed(res.start, cfg.duration, total, &taken, &stop)
			}
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if now.After(res.end) {
				res.end = now
			}
			if errors.Is(err, errOutOfPayments) {
				res.outOfPay = true
			} else if err != nil && l.first == nil {
				l.first = err
			}
		}()
	}
	wg.Wait()
	return res, nil
}

var errOutOfPayments = errors.New("out of payments")

// open sends requests id, id+lanes, id+2·lanes, … below total, each at its
// due time, until grace after the schedule's start.
func (l *lane) open(start time.Time, rate float64, lanes, total int, grace time.Duration) error {
	interval := float64(time.Second) / rate
	for i := l.id; i < total; i += lanes {
		ok, err := l.next()
		if err != nil || !ok {
			l.late += (total - i + lanes - 1) / lanes
			if err == nil {
				err = errOutOfPayments
			}
			return err
		}
		due := start.Add(time.Duration(float64(i) * interval))
		if time.Since(start) > grace {
			l.late += (total - i + lanes - 1) / lanes
			return nil
		}
		time.Sleep(time.Until(due))
		sent := time.Now()
		l.send()
		l.lat.record(time.Since(due))
		l.lag.record(sent.Sub(due))
	}
	return nil
}

// closed sends one request after another until the run's end.
func (l *lane) closed(start time.Time, d time.Duration, total int, taken *atomic.Int64, stop *atomic.Bool) error {
	time.Sleep(time.Until(start))
	for time.Since(start) < d && !stop.Load() && taken.Add(1) <= int64(total) {
		ok, err := l.next()
		if err != nil || !ok {
			stop.Store(true)
			if err == nil {
				err = errOutOfPayments
			}
			return err
		}
		sent := time.Now()
		l.send()
		l.lat.record(time.Since(sent))
	}
	return nil
}

// summary is the lanes' measurements put together.
type summary struct {
	lat, lag         hist
	ok, failed, late int
	codes            map[int]int
	first            error
	elapsed          time.Duration
}

func (r *result) summary() *summary {
	s := &summary{codes: map[int]int{}, elapsed: r.end.Sub(r.start)}
	for _, l := range r.lanes {
		s.lat.merge(&l.lat)
		s.lag.merge(&l.lag)
		s.ok, s.failed, s.late = s.ok+l.ok, s.failed+l.failed, s.late+l.late
		for c, n := range l.codes {
			s.codes[c] += n
		}
		if s.first == nil {
			s.first = l.first
		}
	}
	return s
}

func (s *summary) errors() int {
	n := s.failed + s.late
	for _, c := range s.codes {
		n += c
	}
	return n
}

func (r *result) print(w io.Writer, cfg config) {
	s := r.summary()
	mode := "closed"
	if cfg.rate > 0 {
		mode = "open"
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }
	fmt.Fprintf(w, "mode=%s offered=%.0f conns=%d elapsed_s=%.2f sent=%d ok=%d errors=%d rate=%.0f p50_ms=%s p90_ms=%s p99_ms=%s p99.9_ms=%s max_ms=%s",
		mode, cfg.rate, cfg.conns, s.elapsed.Seconds(), s.lat.n, s.ok, s.errors(),
		float64(s.ok)/s.elapsed.Seconds(), ms(s.lat.quantile(0.5)), ms(s.lat.quantile(0.9)),
		ms(s.lat.quantile(0.99)), ms(s.lat.quantile(0.999)), ms(s.lat.max))
	if cfg.rate > 0 {
		fmt.Fprintf(w, " lag_p99_ms=%s", ms(s.lag.quantile(0.99)))
	}
	fmt.Fprintln(w)
	if s.errors() > 0 || r.outOfPay {
		var parts []string
		for c, n := range s.codes {
			parts = append(parts, fmt.Sprintf("%d×%d", n, c))
		}
		sort.Strings(parts)
		if s.failed > 0 {
			parts = append(parts, fmt.Sprintf("%d transport (first: %v)", s.failed, s.first))
		}
		if s.late > 0 {
			parts = append(parts, fmt.Sprintf("%d not sent by the end", s.late))
		}
		if r.outOfPay {
			parts = append(parts, "a lane ran out of payments")
		}
		fmt.Fprintf(w, "loadgen: errors: %s\n", strings.Join(parts, ", "))
	}
}
