package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// A webhook that arrives before the create's answer is recorded is kept in
// the inbox and applied when the upstream id is recorded: the job does not
// wait for its fallback poll (here ~12 s away).
func TestWebhookBeforeCreateAnswerIsApplied(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{expect: 5000})
		inboxed := make(chan string, 4)
		gateway.SetAfterCreate(h.gw, func(upstreamID string) {
			// Hold the answer until the project's completed webhook has
			// been received (and kept: the job has no upstream id yet).
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				es, err := h.store.Inbox(context.Background(), upstreamID)
				if err != nil {
					t.Errorf("inbox: %v", err)
					return
				}
				for _, e := range es {
					if strings.HasSuffix(e.Type, ".completed") {
						inboxed <- upstreamID
						return
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Errorf("no completed webhook kept for %s", upstreamID)
		})
		start := time.Now()
		j := h.wait(h.submit("ai-image-generator", "", "").ID)
		took := time.Since(start)
		if j.Status != "stored" {
			t.Fatalf("status %s %+v", j.Status, j.Error)
		}
		select {
		case id := <-inboxed:
			if id != j.UpstreamID {
				t.Fatalf("inboxed %s, job's upstream id %s", id, j.UpstreamID)
			}
		default:
			t.Fatal("the completed webhook did not arrive before the create's answer was recorded")
		}
		if j.Polls != 0 || took > 8*time.Second {
			t.Fatalf("polls = %d after %v: want the inbox applied at once, not the fallback poll", j.Polls, took)
		}
		h.checkOutputs(j)
		evs := h.events(j.ID)
		if count(evs, "webhook") == 0 {
			t.Fatalf("no webhook in the timeline: %v", evs)
		}
		// An inbox-applied webhook event records its lag too (from the
		// signed timestamp, time held included).
		full, err := h.store.Events(context.Background(), j.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		fromInbox := 0
		for _, e := range full {
			if e.Type == "webhook" && strings.Contains(string(e.Data), `"inbox":true`) {
				fromInbox++
				if !strings.Contains(string(e.Data), `"lag_ms":`) {
					t.Fatalf("inbox-applied webhook event without lag_ms: %s", e.Data)
				}
			}
		}
		if fromInbox == 0 {
			t.Fatalf("no webhook event applied from the inbox: %v", evs)
		}
		if es, _ := h.store.Inbox(context.Background(), j.UpstreamID); len(es) != 0 {
			t.Fatalf("%d inbox entries left for an applied project", len(es))
		}

		// A webhook for a project no job has: 204, kept, and deleted by
		// the clean-up once older than the TTL.
		body := []byte(`{"type":"image.completed","payload":{"id":"cuid-not-ours","status":"complete","downloads":[]}}`)
		req, _ := http.NewRequest("POST", h.srv.URL+"/hooks/magichour", bytes.NewReader(body))
		req.Header = webhook.Headers("whsec_test_secret", time.Now(), body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("webhook for an unknown project: %d", resp.StatusCode)
		}
		if es, err := h.store.Inbox(context.Background(), "cuid-not-ours"); err != nil || len(es) != 1 {
			t.Fatalf("inbox for an unknown project: %d entries, %v", len(es), err)
		}
		if n, err := h.store.CleanupInbox(context.Background(), time.Now().Add(time.Minute)); err != nil || n != 1 {
			t.Fatalf("inbox clean-up deleted %d, %v", n, err)
		}
	})
}
