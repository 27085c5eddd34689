package job

import (
	"fmt"
	"time"
)

// Attempt records one delivery attempt of c (HTTP status code, or the
// error that prevented one) and moves c on: delivered on a 2xx; else
// pending again at retryAt, or failed for good when retryAt is past
// maxAge from the callback's creation. It returns the attempt to record,
// the timeline event's data and the outcome (delivered, failed, gave_up).
func (c *Callback) Attempt(now, start time.Time, code int, err error, retryAt time.Time, maxAge time.Duration) (CallbackAttempt, map[string]any, string) {
	c.Attempts++
	a := CallbackAttempt{Attempt: c.Attempts, StatusCode: code, Duration: now.Sub(start), CreatedAt: start}
	c.LastCode, c.LastError = code, ""
	data := map[string]any{"type": c.Type, "attempt": c.Attempts, "status_code": code}
	if err == nil && code >= 200 && code < 300 {
		c.Status, c.NextRunAt, c.DeliveredAt = CallbackDelivered, time.Time{}, now
		return a, data, "delivered"
	}
	msg := fmt.Sprintf("answered %d", code)
	if err != nil {
		msg = err.Error()
	}
	a.Error, c.LastError, data["error"] = msg, msg, msg
	if retryAt.Sub(c.CreatedAt) > maxAge {
		c.Status, c.NextRunAt = CallbackFailed, time.Time{}
		data["gave_up"] = true
		return a, data, "gave_up"
	}
	c.Status, c.NextRunAt = CallbackPending, retryAt
	data["next_attempt_at"] = retryAt
	return a, data, "failed"
}
