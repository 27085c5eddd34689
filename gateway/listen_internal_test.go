package gateway

import (
	"encoding/json"
	"testing"
)

// A tenant's listener gets only its own jobs' events, the admin's all of
// them (and webhooks no job knows); a full listener loses events, counted.
func TestListenHubScopes(t *testing.T) {
	t.Parallel()
	var h listenHub
	if h.active() {
		t.Fatal("active with nobody listening")
	}
	admin, a, b := h.add(""), h.add("ten_a"), h.add("ten_b")
	body := json.RawMessage(`{}`)
	h.publish(listenEvent{Kind: "webhook", TenantID: "ten_a", Type: "image.completed", Body: body})
	h.publish(listenEvent{Kind: "callback", TenantID: "ten_b", Type: "job.stored", Body: body})
	h.publish(listenEvent{Kind: "webhook", Type: "video.started", Body: body}) // no job known
	got := func(l *listener) []string {
		var out []string
		for {
			select {
			case ev := <-l.ch:
				out = append(out, ev.Type)
			default:
				return out
			}
		}
	}
	if g := got(admin); len(g) != 3 {
		t.Errorf("admin got %v", g)
	}
	if g := got(a); len(g) != 1 || g[0] != "image.completed" {
		t.Errorf("tenant a got %v", g)
	}
	if g := got(b); len(g) != 1 || g[0] != "job.stored" {
		t.Errorf("tenant b got %v", g)
	}
	for range listenBuffer + 5 {
		h.publish(listenEvent{Kind: "webhook", TenantID: "ten_a", Type: "x", Body: body})
	}
	if d := a.dropped.Load(); d != 5 {
		t.Errorf("dropped %d, want 5", d)
	}
	h.remove(admin)
	h.remove(a)
	h.remove(b)
	if h.active() {
		t.Fatal("still active")
	}
}
