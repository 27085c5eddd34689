package magichour

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

const flowSecret = "whsec_flowtest"

// hookRig is an emulator whose webhooks go to a WebhookWaiter's handler.
type hookRig struct {
	srv       *emulator.Server
	c         *Client
	w         *WebhookWaiter
	delivered atomic.Int32
}

func newHookRig(t *testing.T, wopts []WebhookWaiterOption, eopts ...emulator.Option) *hookRig {
	t.Helper()
	rig := &hookRig{}
	var h atomic.Value // http.Handler, set once the waiter exists
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Load().(http.Handler).ServeHTTP(w, r)
		rig.delivered.Add(1)
	}))
	t.Cleanup(hs.Close)
	rig.srv = emulator.NewServer(t, append([]emulator.Option{
		emulator.WithSpeed(flowSpeed), emulator.WithWebhookURL(hs.URL), emulator.WithWebhookSecret(flowSecret),
	}, eopts...)...)
	rig.c = flowClient(t, rig.srv)
	rig.w = NewWebhookWaiter(rig.c, wopts...)
	h.Store(rig.w.Handler(flowSecret))
	return rig
}

func TestWebhookWaiterNoPolling(t *testing.T) {
	t.Parallel()
	rig := newHookRig(t, nil)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		name := "fine"
		if i == 3 {
			name = "boom"
		}
		ids[i] = createImage(t, rig.c, name, 1).ID
	}
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var statuses []Status
			p, err := rig.w.Wait(context.Background(), KindImage, id, WithTool(ToolAIImageGenerator), WithTimeScale(flowSpeed),
				WithStatusCallback(func(p *Project) { statuses = append(statuses, p.Status) }))
			if i == 3 {
				var je *JobError
				if !errors.As(err, &je) || je.Code != "unknown_error" || p.Status != StatusError {
					t.Errorf("errored job: %v, %v", p, err)
				}
				return
			}
			if err != nil || p.Status != StatusComplete || len(p.Downloads) != 1 || p.Kind != KindImage {
				t.Errorf("job %s: %+v, %v", id, p, err)
			}
			if statuses[len(statuses)-1] != StatusComplete {
				t.Errorf("statuses %v", statuses)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if n := rig.srv.Emulator.Stats().Polls[id]; n != 0 {
			t.Errorf("project %s polled %d times, want 0", id, n)
		}
	}
}

func TestWebhookWaiterEventBeforeWait(t *testing.T) {
	t.Parallel()
	rig := newHookRig(t, nil)
	cr := createImage(t, rig.c, "early", 1)
	deadline := time.Now().Add(5 * time.Second)
	for rig.delivered.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no webhook delivered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let a possible completed event follow a started one
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	p, err := rig.w.Wait(ctx, cr.Kind, cr.ID, WithTool(ToolAIImageGenerator), WithTimeScale(flowSpeed))
	if err != nil || p.Status != StatusComplete {
		t.Fatalf("Wait = %v, %v", p, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Wait took %v for an event already received", d)
	}
	if n := rig.srv.Emulator.Stats().Polls[cr.ID]; n != 0 {
		t.Errorf("%d polls, want 0", n)
	}
}

func TestWebhookWaiterFallbackCatchesCancel(t *testing.T) {
	t.Parallel()
	rig := newHookRig(t, []WebhookWaiterOption{WithFallbackPoll(2 * time.Second)})
	cr := createImage(t, rig.c, "cancelme", 1)
	p, err := rig.w.Wait(context.Background(), cr.Kind, cr.ID, WithTool(ToolAIImageGenerator), WithTimeScale(flowSpeed))
	if !errors.Is(err, ErrCanceled) || p.Status != StatusCanceled {
		t.Fatalf("Wait = %v, %v; want canceled", p, err)
	}
	if n := rig.srv.Emulator.Stats().Polls[cr.ID]; n < 1 || n > 3 {
		t.Errorf("%d fallback polls, want 1..3", n)
	}
}

func TestWebhookWaiterLostWebhook(t *testing.T) {
	t.Parallel()
	rig := newHookRig(t, []WebhookWaiterOption{WithFallbackPoll(time.Second)},
		emulator.WithFaults(emulator.Faults{WebhookDrop: 1}))
	cr := createImage(t, rig.c, "x", 1)
	p, err := rig.w.Wait(context.Background(), cr.Kind, cr.ID, WithExpected(2*time.Second), WithTimeScale(flowSpeed))
	if err != nil || p.Status != StatusComplete {
		t.Fatalf("Wait = %v, %v", p, err)
	}
}

func TestWebhookWaiterContextAndNoLeak(t *testing.T) {
	t.Parallel()
	rig := newHookRig(t, []WebhookWaiterOption{WithFallbackPoll(-1)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := rig.w.Wait(ctx, KindVideo, "never", WithTimeScale(flowSpeed))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	rig.w.mu.Lock()
	defer rig.w.mu.Unlock()
	if len(rig.w.waiters) != 0 {
		t.Errorf("waiter registrations left behind: %d", len(rig.w.waiters))
	}
}

func hookEvent(id string, typ webhook.EventType, status Status) *webhook.Event {
	raw := fmt.Sprintf(`{"id":%q,"status":%q,"downloads":[]}`, id, status)
	e, err := webhook.Parse([]byte(fmt.Sprintf(`{"type":%q,"payload":%s}`, typ, raw)))
	if err != nil {
		panic(err)
	}
	return e
}

func TestWebhookWaiterRecentBounded(t *testing.T) {
	w := NewWebhookWaiter(nil, WithRecentEvents(2, time.Hour), WithFallbackPoll(-1))
	w.Deliver(hookEvent("a", webhook.EventImageCompleted, StatusComplete))
	w.Deliver(hookEvent("b", webhook.EventImageCompleted, StatusComplete))
	w.Deliver(hookEvent("c", webhook.EventImageCompleted, StatusComplete))
	w.Deliver(hookEvent("c", webhook.EventImageStarted, StatusRendering)) // late, ignored
	w.Deliver(nil)
	if _, ok := w.recent["a"]; ok || len(w.recent) != 2 || len(w.order) != 2 {
		t.Fatalf("recent = %v order = %v, want the 2 newest", w.recent, w.order)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, err := w.Wait(ctx, KindImage, "c")
	if err != nil || p.Status != StatusComplete {
		t.Fatalf("Wait(c) = %v, %v", p, err)
	}
	// Expiry by age.
	now := time.Now()
	w2 := NewWebhookWaiter(nil, WithRecentEvents(10, time.Minute))
	w2.now = func() time.Time { return now }
	w2.Deliver(hookEvent("old", webhook.EventVideoErrored, StatusError))
	now = now.Add(2 * time.Minute)
	w2.Deliver(hookEvent("new", webhook.EventVideoCompleted, StatusComplete))
	if _, ok := w2.recent["old"]; ok {
		t.Fatal("expired event kept")
	}
}
