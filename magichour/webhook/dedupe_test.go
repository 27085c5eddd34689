package webhook

import (
	"testing"
	"time"
)

func TestDedupeLRU(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := newDedupe(time.Minute, 2)
	k := func(b byte) [32]byte { return [32]byte{b} }
	record := func(b byte, at time.Time) {
		t.Helper()
		if c := d.begin(k(b), at); c != claimNew {
			t.Fatalf("begin(%d) = %v", b, c)
		}
		d.finish(k(b), at, true)
	}
	record(1, t0)
	record(2, t0)
	// Touch 1, so 2 is the least recently used and is evicted by 3.
	if d.begin(k(1), t0) != claimDone {
		t.Fatal("1 not remembered")
	}
	record(3, t0)
	if d.len() != 2 {
		t.Fatalf("len %d", d.len())
	}
	if d.begin(k(1), t0) != claimDone || d.begin(k(3), t0) != claimDone {
		t.Fatal("1 or 3 forgotten")
	}
	if c := d.begin(k(2), t0); c != claimNew {
		t.Fatalf("2 not evicted: %v", c)
	}
	// 2 is now in flight: a concurrent claim is busy; a failure forgets it.
	if c := d.begin(k(2), t0); c != claimBusy {
		t.Fatalf("in flight: %v", c)
	}
	d.finish(k(2), t0, false)
	if c := d.begin(k(2), t0); c != claimNew {
		t.Fatalf("after failure: %v", c)
	}
	d.finish(k(2), t0, false)
	// Entries expire after the TTL.
	if c := d.begin(k(1), t0.Add(time.Minute)); c != claimNew {
		t.Fatalf("expired entry: %v", c)
	}
	d.finish(k(1), t0.Add(time.Minute), true)
	if d.len() != 1 { // 3 expired and pruned, 1 re-recorded
		t.Fatalf("len after expiry %d", d.len())
	}
}
