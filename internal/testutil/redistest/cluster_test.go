package redistest

import (
	"strconv"
	"strings"
	"testing"
)

// TestStartCluster: three primaries sharing the slots, each answering for
// its own range and redirecting the others; the URL names every node. Two
// clusters started together are apart.
func TestStartCluster(t *testing.T) {
	t.Parallel()
	cs := StartClusters(t, 2, 3)
	for _, c := range cs {
		if len(c.Nodes) != 3 {
			t.Fatalf("%d nodes", len(c.Nodes))
		}
		if want := "redis-cluster://" + c.Nodes[0].Addr() + "?addr=" + c.Nodes[1].Addr() + "&addr=" + c.Nodes[2].Addr(); c.URL() != want {
			t.Fatalf("URL() = %q, want %q", c.URL(), want)
		}
	}
	c := cs[0]
	// Keys whose slots fall in each node's range: each node stores its own
	// and sends the others on (MOVED).
	for i, s := range c.Nodes {
		key := keyInRange(t, i*(SlotCount/3), (i+1)*(SlotCount/3)-1)
		if got := do(t, s.Addr(), "SET", key, "v"); got != "+OK" {
			t.Fatalf("node %d SET %s (slot %d): %q", i, key, Slot(key), got)
		}
		other := c.Nodes[(i+1)%3].Addr()
		if _, err := send(other, "GET", key); err == nil || !strings.HasPrefix(err.Error(), "MOVED "+strconv.Itoa(Slot(key))+" "+s.Addr()) {
			t.Fatalf("GET %s on another node: %v, want MOVED to %s", key, err, s.Addr())
		}
		if got := do(t, s.Addr(), "CLUSTER", "KEYSLOT", key); got != ":"+strconv.Itoa(Slot(key)) {
			t.Fatalf("CLUSTER KEYSLOT %s = %s, Slot = %d", key, got, Slot(key))
		}
		if got := do(t, cs[1].Nodes[i].Addr(), "GET", key); got != "$-1" {
			t.Fatalf("the other cluster has %s: %q", key, got)
		}
	}
}

func keyInRange(t *testing.T, lo, hi int) string {
	for i := range 100000 {
		k := "k" + strconv.Itoa(i)
		if s := Slot(k); s >= lo && s <= hi {
			return k
		}
	}
	t.Fatalf("no key in slots %d-%d", lo, hi)
	return ""
}

// TestSlotHashTag: the hash tag decides, as Redis documents.
func TestSlotHashTag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"{user1000}.following", "{user1000}.followers", true},
		{"foo{bar}{zap}", "bar", true},
		{"foo{{bar}}zap", "{bar", true},
		{"foo{}{bar}", "foo{}{bar}x", false}, // an empty first tag: the whole key counts
	} {
		if (Slot(c.a) == Slot(c.b)) != c.same {
			t.Errorf("slots of %q (%d) and %q (%d): same=%v wanted", c.a, Slot(c.a), c.b, Slot(c.b), c.same)
		}
	}
	if Slot("123456789") != 0x31C3%SlotCount { // CRC16/XMODEM check value
		t.Fatalf("Slot(123456789) = %d", Slot("123456789"))
	}
}
