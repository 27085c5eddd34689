package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	body, ok := readLimited(w, r, webhook.DefaultMaxBodyBytes)
	if !ok {
		return
	}
	if err := webhook.VerifyAny(g.cfg.WebhookSecrets, r.Header, body, g.now()); err != nil {
		writeError(w, http.StatusUnauthorized, "bad_signature", err.Error(), nil)
		return
	}
	// Lag from the signed timestamp (whole seconds, so up to 1 s coarse):
	// the metric for Prometheus, the event for the dashboard, which must
	// see every replica's deliveries.
	var lag time.Duration
	var signedAt time.Time
	if ts, err := strconv.ParseInt(r.Header.Get(webhook.HeaderTimestamp), 10, 64); err == nil {
		signedAt = time.Unix(ts, 0)
		lag = max(0, g.now().Sub(signedAt))
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
	g.listenWebhook(j, ev.Payload.ID, string(ev.Type), body)
	if errors.Is(err, ErrNotFound) {
		// Not ours, or the create's answer is not recorded yet: keep it in
		// the inbox (durably, before answering), where recording the
		// upstream id finds it.
		if err := g.store.AddInbox(ctx, InboxEntry{Hash: hash, UpstreamID: ev.Payload.ID, Type: string(ev.Type),
			Body: body, ReceivedAt: g.now(), SignedAt: signedAt}); err != nil {
			g.log.Error("gateway: webhook inbox", "project", ev.Payload.ID, "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "could not record the delivery; retry", nil)
			return
		}
		g.metrics.webhooks.WithLabelValues("inbox").Inc()
		g.log.Debug("gateway: webhook for an unknown project kept in the inbox", "project", ev.Payload.ID, "type", ev.Type)
		// The id may have been recorded since the lookup, after its
		// recorder looked at the inbox: then apply it here.
		if j, err := g.store.JobByUpstreamID(ctx, ev.Payload.ID); err == nil {
			g.drainInbox(ctx, j.UpstreamID)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	err = g.applyWebhook(ctx, j, ev, hash, map[string]any{"lag_ms": lag.Milliseconds()})
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
	}
	w.WriteHeader(http.StatusNoContent)
}

// applyWebhook advances j with a verified delivery (hash: its body's
// sha256, the dedupe key), recording the delivery and a "webhook" event
// (with extra in its data) in the same transaction. ErrDuplicate: the
// delivery was processed before.
func (g *Gateway) applyWebhook(ctx context.Context, j *Job, ev *webhook.Event, hash string, extra map[string]any) error {
	st := stateFromWebhook(ev.Payload)
	data := map[string]any{"type": ev.Type, "upstream_status": ev.Payload.Status}
	for k, v := range extra {
		data[k] = v
	}
	received := g.event2(j.ID, "webhook", data)
	var err error
	for range 5 {
		c, changed := j.Apply(g.now(), st)
		u := update(c)
		if !changed {
			err = g.store.RecordDelivery(ctx, hash, []Event{received})
		} else {
			u.DeliveryHash = hash
			u.Events = append([]Event{received}, u.Events...)
			err = g.writeJob(ctx, u)
		}
		if !errors.Is(err, ErrConflict) {
			break
		}
		if j, err = g.store.Job(ctx, "", j.ID); err != nil {
			break
		}
	}
	if err == nil {
		g.nudge()
	}
	return err
}

// drainInbox applies the webhooks kept for an upstream project that now
// has a job. Both sides call it after their own write is committed: the
// worker after recording the upstream id, the webhook handler after
// keeping a delivery (when the job then exists). Whichever commits last
// sees the other's write, so a kept delivery is not missed; when both see
// it, the dedupe row makes the second application a no-op. A crash in
// between leaves the job to its fallback poll.
func (g *Gateway) drainInbox(ctx context.Context, upstreamID string) {
	entries, err := g.store.Inbox(ctx, upstreamID)
	if err != nil {
		g.log.Warn("gateway: read webhook inbox", "project", upstreamID, "err", err)
		return
	}
	for _, e := range entries {
		ev, err := webhook.Parse(e.Body)
		if err == nil {
			var j *Job
			if j, err = g.store.JobByUpstreamID(ctx, upstreamID); err == nil {
				now := g.now()
				extra := map[string]any{"held_ms": now.Sub(e.ReceivedAt).Milliseconds(), "inbox": true}
				// Lag runs from the signed timestamp to this application,
				// time held included (an entry from before signed_at was
				// kept counts from its receipt).
				from := e.SignedAt
				if from.IsZero() {
					from = e.ReceivedAt
				}
				extra["lag_ms"] = max(0, now.Sub(from)).Milliseconds()
				err = g.applyWebhook(ctx, j, ev, e.Hash, extra)
			}
		}
		switch {
		case err == nil:
			g.metrics.webhooks.WithLabelValues("applied").Inc()
		case errors.Is(err, ErrDuplicate):
		case errors.Is(err, ErrNotFound), errors.Is(err, webhook.ErrMalformedBody), errors.Is(err, webhook.ErrUnknownEvent):
		default:
			g.log.Warn("gateway: apply webhook from the inbox", "project", upstreamID, "err", err)
			continue // keep it for a later try (or the clean-up)
		}
		if err := g.store.DeleteInbox(ctx, e.Hash); err != nil {
			g.log.Warn("gateway: delete webhook inbox entry", "project", upstreamID, "err", err)
		}
	}
}
