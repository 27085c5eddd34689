package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// handleWebhook receives Magic Hour deliveries: it verifies the signature
// and timestamp on the raw body, drops deliveries already processed (by
// body hash, in the database, so across replicas), and advances the job.
// Late or reordered deliveries never move a job backwards.
func (g *Gateway) handleWebhook(w http.ResponseWriter, r *http.Request) {
	if len(g.cfg.WebhookSecrets) == 0 {
		writeError(w, http.StatusServiceUnavailable, "webhooks_disabled", "no webhook secret is configured (--webhook-secret); jobs are tracked by polling", nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.DefaultMaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "webhook body too large", nil)
			return
		}
		writeError(w, http.StatusBadRequest, "bad_body", "could not read the body", nil)
		return
	}
	if err := webhook.VerifyAny(g.cfg.WebhookSecrets, r.Header, body, time.Now()); err != nil {
		writeError(w, http.StatusUnauthorized, "bad_signature", err.Error(), nil)
		return
	}
	// Lag from the signed timestamp (whole seconds, so up to 1 s coarse):
	// the metric for Prometheus, the event for the dashboard, which must
	// see every replica's deliveries.
	var lag time.Duration
	if ts, err := strconv.ParseInt(r.Header.Get(webhook.HeaderTimestamp), 10, 64); err == nil {
		lag = max(0, time.Since(time.Unix(ts, 0)))
		g.metrics.webhookLag.Observe(lag.Seconds())
	}
	ev, err := webhook.Parse(body)
	if err != nil {
		if errors.Is(err, webhook.ErrUnknownEvent) {
			g.log.Info("gateway: webhook of unknown type ignored", "type", ev.Type)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeError(w, http.StatusBadRequest, "bad_webhook", err.Error(), nil)
		return
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	ctx := r.Context()
	j, err := g.store.JobByUpstreamID(ctx, ev.Payload.ID)
	if errors.Is(err, ErrNotFound) {
		// Not ours, or the create's answer is not recorded yet: polling
		// catches up with the latter.
		g.log.Debug("gateway: webhook for an unknown project", "project", ev.Payload.ID, "type", ev.Type)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	st := stateFromWebhook(ev.Payload)
	received := event2(j.ID, "webhook", map[string]any{"type": ev.Type, "upstream_status": ev.Payload.Status, "lag_ms": lag.Milliseconds()})
	for range 5 {
		u, changed := g.apply(j, st, g.now())
		if !changed {
			err = g.store.RecordDelivery(ctx, hash, []Event{received})
		} else {
			u.DeliveryHash = hash
			u.Events = append([]Event{received}, u.Events...)
			g.prepare(ctx, &u)
			err = g.store.UpdateJob(ctx, u)
			if err == nil && len(u.Callbacks) > 0 {
				g.nudgeCallbacks()
			}
		}
		if !errors.Is(err, ErrConflict) {
			break
		}
		if j, err = g.store.Job(ctx, "", j.ID); err != nil {
			break
		}
	}
	switch {
	case errors.Is(err, ErrDuplicate):
		g.metrics.webhooks.WithLabelValues("duplicate").Inc()
		g.log.Debug("gateway: duplicate webhook ignored", "job", j.ID, "type", ev.Type)
	case err != nil:
		g.log.Error("gateway: webhook", "job", j.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not record the delivery; retry", nil)
		return
	default:
		g.metrics.webhooks.WithLabelValues("applied").Inc()
		g.nudge()
	}
	w.WriteHeader(http.StatusNoContent)
}
