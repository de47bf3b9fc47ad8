package paywall

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/redisurl"
)

// scriptPipe runs the accept scripts of payments. While few are in flight
// each goes straight to Redis (lowest latency); beyond that they are sent in
// pipelines, so that under load a handful of payments share one write and
// one read on each side instead of a system call pair each. Nothing waits
// to fill a batch; a batch is whatever queued while the previous one ran.
//
// A payment is acknowledged only once rep's replicas hold it: one WAIT
// after a pipeline covers all its scripts, and the segment admission
// written before them. On a Cluster that WAIT must go to the one master
// of the scripts' slot, so with replicas each script goes alone there.
type scriptPipe struct {
	rdb       redis.UniversalClient
	rep       redisurl.Replication
	unbatched bool
	reqs      chan *scriptCall
	inflight  atomic.Int32
}

type scriptCall struct {
	ctx  context.Context
	keys []string
	args []any
	done chan scriptResult // buffered: the worker never blocks on a caller that left
}

type scriptResult struct {
	vals []any
	err  error
}

const (
	directMax    = 8  // payments in flight that go straight to Redis
	pipeWorkers  = 2  // pipelines in flight at once
	maxPipeBatch = 64 // scripts per pipeline
)

func newScriptPipe(ctx context.Context, rdb redis.UniversalClient, rep redisurl.Replication, start func(func(context.Context))) *scriptPipe {
	_, cluster := rdb.(*redis.ClusterClient)
	p := &scriptPipe{rdb: rdb, rep: rep, unbatched: cluster && rep.Replicas > 0, reqs: make(chan *scriptCall, maxPipeBatch*pipeWorkers)}
	for range pipeWorkers {
		start(p.work)
	}
	return p
}

// run executes the accept script with keys and args.
func (p *scriptPipe) run(ctx context.Context, keys []string, args ...any) ([]any, error) {
	n := p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if n <= directMax || p.unbatched {
		return p.rep.Run(ctx, p.rdb, acceptScript, keys, args...).Slice()
	}
	c := &scriptCall{ctx: ctx, keys: keys, args: args, done: make(chan scriptResult, 1)}
	select {
	case p.reqs <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-c.done:
		return r.vals, r.err
	case <-ctx.Done():
		// The script may still run: a retry of the same payment then finds
		// its authorization record and gets the same grant.
		return nil, ctx.Err()
	}
}

func (p *scriptPipe) work(ctx context.Context) {
	batch := make([]*scriptCall, 0, maxPipeBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case c := <-p.reqs:
			batch = append(batch, c)
		}
	fill:
		for len(batch) < maxPipeBatch {
			select {
			case c := <-p.reqs:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		p.exec(batch)
	}
}

func (p *scriptPipe) exec(batch []*scriptCall) {
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.done <- scriptResult{err: err} // gave up before it was sent: nothing ran
		} else {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(live))
	acked := p.rep.Pipelined(ctx, p.rdb, live[0].keys[0], func(pipe redis.Pipeliner) {
		for i, c := range live {
			cmds[i] = acceptScript.EvalSha(ctx, pipe, c.keys, c.args...)
		}
	})
	for i, c := range live {
		var r scriptResult
		r.vals, r.err = cmds[i].Slice()
		switch {
		case r.err != nil && redis.HasErrorPrefix(r.err, "NOSCRIPT"):
			// First use on this server (or after a restart): Run loads it.
			r.vals, r.err = p.rep.Run(ctx, p.rdb, acceptScript, c.keys, c.args...).Slice()
		case r.err == nil && acked != nil:
			r.vals, r.err = nil, acked
		}
		c.done <- r
	}
}
