package job

import (
	"testing"
	"time"
)

// A callback attempt: 2xx delivers; anything else retries until the next
// try would be past the maximum age, then gives up.
func TestCallbackAttempt(t *testing.T) {
	t.Parallel()
	created := t0.Add(-time.Hour)
	cases := []struct {
		name   string
		code   int
		err    error
		retry  time.Time
		result string
		status string
	}{
		{"2xx delivers", 204, nil, t0.Add(time.Minute), "delivered", CallbackDelivered},
		{"5xx retries", 503, nil, t0.Add(time.Minute), "failed", CallbackPending},
		{"no answer retries", 0, errOops, t0.Add(time.Minute), "failed", CallbackPending},
		{"past max age gives up", 500, nil, created.Add(25 * time.Hour), "gave_up", CallbackFailed},
	}
	for _, tc := range cases {
		c := &Callback{Type: "job.stored", Status: CallbackPending, CreatedAt: created, Attempts: 2}
		a, data, result := c.Attempt(t0, t0.Add(-time.Second), tc.code, tc.err, tc.retry, 24*time.Hour)
		if result != tc.result || c.Status != tc.status || c.Attempts != 3 || a.Attempt != 3 || a.Duration != time.Second {
			t.Errorf("%s: %s %s attempts %d %+v", tc.name, result, c.Status, c.Attempts, a)
		}
		if (c.Status == CallbackPending) != !c.NextRunAt.IsZero() || (tc.result != "delivered") != (a.Error != "" && data["error"] != nil) {
			t.Errorf("%s: next %v error %q data %v", tc.name, c.NextRunAt, a.Error, data)
		}
	}
}
