package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/hourglasshq/hourglass/gateway"
)

// The maintenance loop runs on the gateway's clock: with a fake clock, the
// webhook inbox's TTL clean-up happens when the clock is advanced past it,
// with no waiting in real time.
func TestInboxTTLOnFakeClock(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		h := newHarness(t, dbURL, hopts{noStart: true, cfg: func(c *gateway.Config) {
			c.Clock, c.Workers, c.CallbackWorkers = clock, -1, -1
			c.InboxTTL, c.CleanupInterval = time.Hour, time.Minute
		}})
		h.start()
		ctx := context.Background()
		if err := h.store.AddInbox(ctx, gateway.InboxEntry{Hash: "h1", UpstreamID: "p1", Type: "image.completed",
			Body: []byte(`{}`), ReceivedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := clock.BlockUntilContext(ctx, 1); err != nil { // the clean-up's ticker
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if es, _ := h.store.Inbox(ctx, "p1"); len(es) != 1 {
			t.Fatalf("entry younger than the TTL deleted: %d left", len(es))
		}
		clock.Advance(time.Hour)
		waitFor(t, "the inbox clean-up", func() bool {
			es, err := h.store.Inbox(ctx, "p1")
			return err == nil && len(es) == 0
		})
	})
}
