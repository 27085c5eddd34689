package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/hourglasshq/hourglass/gateway"
)

// Issue 11 item 13: 300 jobs of tenant A queued before tenant B's single
// job do not delay it: B's create is sent before at most a worker pool's
// worth of A's (asserted on the order of create_sent events, not on time).
func TestFairClaimAcrossTenants(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		// One worker claims one job at a time, so the order of claims (and
		// of creates) does not depend on how goroutines are scheduled.
		const workers = 1
		h := newHarness(t, dbURL, hopts{noStart: true, workers: workers})
		h.start()
		h.gw.Close() // accept only: jobs stay pending until the workers start
		h.front.set(h.gw.Handler())
		var aJobs []string
		for range 300 {
			aJobs = append(aJobs, h.submit("ai-image-generator", "", "").ID)
		}
		_, bKey, err := gateway.CreateTenant(context.Background(), h.store, "tenant-b", nil)
		if err != nil {
			t.Fatal(err)
		}
		var b jobView
		req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", "")}
		if code, raw := h.do("POST", "/api/jobs", bKey, req, &b); code != http.StatusAccepted {
			t.Fatalf("tenant B submit: %d %s", code, raw)
		}
		h.start()
		if got := h.waitAs(bKey, b.ID); got.Status != "stored" {
			t.Fatalf("tenant B's job: %s", got.Status)
		}
		createSent := func(id string) int64 {
			evs, err := h.store.Events(context.Background(), id, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.Type == "create_sent" {
					return e.ID
				}
			}
			return 0
		}
		bAt := createSent(b.ID)
		before := 0
		for _, id := range aJobs {
			if at := createSent(id); at != 0 && at < bAt {
				before++
			}
		}
		// Round-robin: at most A's first job and one step of it come first.
		if before > 2*workers {
			t.Fatalf("%d of tenant A's jobs were sent before tenant B's single job (want at most %d)", before, 2*workers)
		}
	})
}
