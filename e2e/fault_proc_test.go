package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultProc is a background process that a fault test kills with SIGKILL
// and starts again with the same arguments (same ports, same files), as a
// crash and a supervisor's restart would. Its output, across every run, goes
// to a bounded log shown when the test fails.
type faultProc struct {
	name string
	bin  string
	args []string
	env  []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  boundedLog
	runs int
}

// boundedLog keeps the first and the last bytes of a long output.
type boundedLog struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int
}

const faultLogHalf = 4 << 10

func (l *boundedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n0 := len(p)
	if room := faultLogHalf - len(l.head); room > 0 {
		n := min(room, len(p))
		l.head = append(l.head, p[:n]...)
		p = p[n:]
	}
	l.tail = append(l.tail, p...)
	if over := len(l.tail) - faultLogHalf; over > 0 {
		l.dropped += over
		l.tail = append(l.tail[:0], l.tail[over:]...)
	}
	return n0, nil
}

func (l *boundedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped == 0 {
		return string(l.head) + string(l.tail)
	}
	return fmt.Sprintf("%s\n[… %d bytes dropped …]\n%s", l.head, l.dropped, l.tail)
}

// startFaultProc starts a process and registers its stop and log dump.
func startFaultProc(t *testing.T, name string, env []string, bin string, args ...string) *faultProc {
	t.Helper()
	p := &faultProc{name: name, bin: bin, args: args, env: env}
	if err := p.start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s output (%d runs) ---\n%s", name, p.runs, p.log.String())
		}
	})
	return p
}

func (p *faultProc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	p.runs++
	fmt.Fprintf(&p.log, "=== run %d of %s at %s\n", p.runs, p.name, time.Now().Format("15:04:05.000"))
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// pid is the process id of the current run, 0 when not running.
func (p *faultProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill9 crashes the process: SIGKILL, no shutdown of any kind.
func (p *faultProc) kill9() {
	p.signal(syscall.SIGKILL, 0)
}

// stop ends the process gracefully, killing it after a bounded wait.
func (p *faultProc) stop() {
	p.signal(os.Interrupt, 5*time.Second)
}

func (p *faultProc) signal(sig os.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			cmd.Process.Kill()
		}
	}
	<-done
}

// waitStatus polls url until it answers want, within d.
func waitStatus(ctx context.Context, url string, want int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %d within %v (last: %s)", url, want, d, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
