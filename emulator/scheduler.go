package emulator

import (
	"container/heap"
	"encoding/json"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

type eventKind int

const (
	evStarted eventKind = iota
	evEnded
)

type event struct {
	at   time.Time
	seq  uint64
	id   string
	kind eventKind
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (e *Emulator) pushLocked(ev event) {
	e.eventSeq++
	ev.seq = e.eventSeq
	heap.Push(&e.events, ev)
}

// schedule is the scheduler goroutine: it settles finished projects and
// hands webhook events to senders at the virtual time they happen.
func (e *Emulator) schedule() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		now := e.clock.Now()
		var hooks [][]byte
		for len(e.events) > 0 && !e.events[0].at.After(now) {
			ev := heap.Pop(&e.events).(event)
			if b := e.fireLocked(ev); b != nil {
				hooks = append(hooks, b)
			}
		}
		wait := time.Duration(-1)
		if len(e.events) > 0 {
			wait = e.events[0].at.Sub(now)
		}
		e.mu.Unlock()
		for _, b := range hooks {
			e.dispatch(b)
		}
		var timer Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = e.clock.NewTimer(wait)
			fire = timer.C()
		}
		select {
		case <-e.done:
			if timer != nil {
				timer.Stop()
			}
			return
		case <-e.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// fireLocked applies one event and returns the webhook body to send, if any.
func (e *Emulator) fireLocked(ev event) []byte {
	p := e.projects[ev.id]
	if p == nil {
		return nil // deleted or reset
	}
	if ev.kind == evEnded {
		e.settleLocked(p, ev.at)
	}
	st := p.statusAt(ev.at)
	var suffix string
	switch {
	case ev.kind == evStarted && st == "rendering":
		suffix = "started"
	case ev.kind == evEnded && st == "complete":
		suffix = "completed"
	case ev.kind == evEnded && st == "error":
		suffix = "errored"
	default:
		return nil // canceled: no webhook
	}
	if p.kind != catalog.KindVideo && p.kind != catalog.KindImage && p.kind != catalog.KindAudio {
		return nil
	}
	if len(e.cfg.webhookURLs) == 0 {
		return nil
	}
	payload, err := json.Marshal(e.bodyLocked(p, ev.at, false))
	if err != nil {
		return nil
	}
	b, err := json.Marshal(struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}{string(p.kind) + "." + suffix, payload})
	if err != nil {
		return nil
	}
	return b
}
