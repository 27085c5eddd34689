package webhook

import (
	"container/list"
	"sync"
	"time"
)

// claim is the answer of dedupe.begin.
type claim int

const (
	claimNew  claim = iota // not seen: process it, then call finish
	claimDone              // delivered successfully within the window
	claimBusy              // being processed by another request right now
)

// dedupe remembers the keys of successful deliveries in a bounded LRU whose
// entries expire ttl after they were recorded, and tracks the keys being
// processed so that concurrent duplicates are not processed twice. It is
// safe for concurrent use.
type dedupe struct {
	ttl  time.Duration
	size int

	mu       sync.Mutex
	ll       *list.List // of *dedupeEntry, most recently used at the front
	m        map[[32]byte]*list.Element
	inflight map[[32]byte]struct{}
}

type dedupeEntry struct {
	key [32]byte
	at  time.Time // when recorded; expires at at+ttl
}

func newDedupe(ttl time.Duration, size int) *dedupe {
	return &dedupe{
		ttl:      ttl,
		size:     size,
		ll:       list.New(),
		m:        make(map[[32]byte]*list.Element),
		inflight: make(map[[32]byte]struct{}),
	}
}

// begin claims key at now. On claimNew the caller owns the key and must call
// finish exactly once.
func (d *dedupe) begin(key [32]byte, now time.Time) claim {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.m[key]; ok {
		e := el.Value.(*dedupeEntry)
		if d.expired(e, now) {
			d.remove(el)
		} else {
			d.ll.MoveToFront(el)
			return claimDone
		}
	}
	if _, ok := d.inflight[key]; ok {
		return claimBusy
	}
	d.inflight[key] = struct{}{}
	return claimNew
}

// finish releases key; if ok, it records key as delivered at now, so that
// repeats within the window are recognized. A failed delivery is not
// recorded: the sender's retry must be processed.
func (d *dedupe) finish(key [32]byte, now time.Time, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, key)
	if !ok {
		return
	}
	// Drop expired entries from the least recently used end.
	for el := d.ll.Back(); el != nil && d.expired(el.Value.(*dedupeEntry), now); el = d.ll.Back() {
		d.remove(el)
	}
	if el, found := d.m[key]; found {
		el.Value.(*dedupeEntry).at = now
		d.ll.MoveToFront(el)
		return
	}
	d.m[key] = d.ll.PushFront(&dedupeEntry{key: key, at: now})
	for d.ll.Len() > d.size {
		d.remove(d.ll.Back())
	}
}

func (d *dedupe) expired(e *dedupeEntry, now time.Time) bool {
	return now.Sub(e.at) >= d.ttl
}

func (d *dedupe) remove(el *list.Element) {
	delete(d.m, el.Value.(*dedupeEntry).key)
	d.ll.Remove(el)
}

// len returns the number of recorded entries, expired or not.
func (d *dedupe) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ll.Len()
}
