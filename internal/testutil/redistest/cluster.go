package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of primaries only, each a Server of this
// package (so with the durable defaults: AOF, appendfsync always), on
// loopback, owned by one test.
type Cluster struct {
	Nodes []*Server
	buses []string // the nodes' cluster bus ports
}

// clusterReady bounds how long the nodes may take to agree on the slots.
// A new primary declares the cluster ok only 2 s after it started
// (CLUSTER_WRITABLE_DELAY), so a cluster takes a little over that.
const clusterReady = 20 * time.Second

// remeetAfter is how long a node may go without knowing every other node
// before it is introduced to them again.
const remeetAfter = 3 * time.Second

// StartCluster starts n primaries, gives each an even share of the 16384
// slots (node i the i-th range), joins them and waits until every node
// reports the cluster ok and knows all the others. opts apply to every
// node. The servers stop when the test ends.
func StartCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	return StartClusters(tb, 1, n, opts...)[0]
}

// StartClusters starts count separate clusters of n primaries each, as
// StartCluster does, waiting for all of them at once (a new primary
// declares its cluster ok no sooner than 2 s after it started).
func StartClusters(tb testing.TB, count, n int, opts ...Option) []*Cluster {
	tb.Helper()
	if n < 1 || count < 1 {
		tb.Fatalf("redistest: %d clusters of %d nodes", count, n)
	}
	out := make([]*Cluster, count)
	for i := range out {
		out[i] = startCluster(tb, n, opts)
	}
	deadline := time.Now().Add(clusterReady)
	for _, c := range out {
		for i, s := range c.Nodes {
			nextMeet := time.Now().Add(remeetAfter)
			for {
				info, err := send(s.Addr(), "CLUSTER", "INFO")
				if err == nil && strings.Contains(info, "cluster_state:ok") &&
					strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r\n") {
					break
				}
				if time.Now().After(deadline) {
					nodes, _ := send(s.Addr(), "CLUSTER", "NODES")
					tb.Fatalf("redistest: cluster not ready after %v: %s %v\nnode %d knows:\n%s", clusterReady, info, err, i, nodes)
				}
				// A handshake can be lost on a loaded machine (the node
				// forgets it after the node timeout); meeting again is
				// harmless for nodes already known.
				if time.Now().After(nextMeet) {
					c.meetAll(s)
					nextMeet = time.Now().Add(remeetAfter)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return out
}

// startCluster starts the nodes of one cluster, assigns the slots and
// introduces the nodes to the first.
func startCluster(tb testing.TB, n int, opts []Option) *Cluster {
	tb.Helper()
	c := &Cluster{}
	for range n {
		// The bus port is the node's own port + 10000 by default, which
		// may be taken; a free one is picked instead.
		bus, err := FreePort()
		if err != nil {
			tb.Fatalf("redistest: pick a cluster bus port: %v", err)
		}
		c.buses = append(c.buses, strconv.Itoa(bus))
		args := []string{"--cluster-enabled", "yes", "--cluster-port", c.buses[len(c.buses)-1], "--cluster-config-file", "nodes.conf"}
		c.Nodes = append(c.Nodes, Start(tb, append(opts, WithArgs(args...))...))
	}
	per := SlotCount / n
	for i, s := range c.Nodes {
		last := (i+1)*per - 1
		if i == n-1 {
			last = SlotCount - 1
		}
		if _, err := send(s.Addr(), "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(i*per), strconv.Itoa(last)); err != nil {
			tb.Fatalf("redistest: slots of node %d: %v", i, err)
		}
		if i == 0 {
			continue
		}
		host, port, _ := net.SplitHostPort(s.Addr())
		if _, err := send(c.Nodes[0].Addr(), "CLUSTER", "MEET", host, port, c.buses[i]); err != nil {
			tb.Fatalf("redistest: node %d meeting node 0: %v", i, err)
		}
	}
	return c
}

// meetAll sends s a CLUSTER MEET for every other node.
func (c *Cluster) meetAll(s *Server) {
	for i, o := range c.Nodes {
		if o == s {
			continue
		}
		host, port, _ := net.SplitHostPort(o.Addr())
		_, _ = send(s.Addr(), "CLUSTER", "MEET", host, port, c.buses[i])
	}
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// URL is a redis-cluster:// URL naming every node, the form Hashwall's
// `redis` settings take.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	u := "redis-cluster://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// SlotCount is the number of Redis Cluster hash slots.
const SlotCount = 16384

// Slot is Redis Cluster's hash slot of key: CRC16 (XMODEM) of its hash
// tag (the part between the first { and the next }, if not empty), else of
// the whole key, modulo 16384.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % SlotCount)
}

// send sends one command as a RESP array over a fresh connection and
// returns the reply: the payload for a bulk string, the line otherwise; an
// error reply is an error.
func send(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("%s", line[1:])
	}
	if !strings.HasPrefix(line, "$") || line == "$-1" {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 || n > 1<<20 {
		return "", fmt.Errorf("bad bulk header %q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
