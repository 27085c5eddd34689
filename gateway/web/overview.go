package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// The overview's charts are inline SVG computed here: bars with fixed
// geometry, so nothing moves as numbers change.

type bar struct {
	Label string
	Value string
	Note  string
	Pct   float64 // 0..100, of the bar's track
	Mark  float64 // a marker (budget) in % of the track, 0 for none
	Tone  string
	Y     int
	Link  string
}

type column struct {
	Label string
	Title string
	X     float64
	H     float64 // 0..100
	Tone  string
}

type overviewView struct {
	States      []bar
	StatesH     int
	Credits     []bar
	CreditsH    int
	ErrorCols   []column
	ErrorRate   string
	ErrorNote   string
	Retries     []bar
	RetriesH    int
	LagBuckets  []column
	LagSummary  string
	LagNote     string
	Tracking    string
	TotalJobs   int
	ActiveJobs  int
	Admin       bool
	GeneratedAt time.Time
	Replicas    []gateway.Replica // admin only: the gateway processes sharing the database
}

func (d *Dashboard) handleOverview(w http.ResponseWriter, r *http.Request, u *user) {
	ctx := r.Context()
	scope := u.Scope()
	now := d.gw.Now().UTC()
	ov := overviewView{Admin: u.Admin, GeneratedAt: now}

	counts, err := d.gw.JobCounts(ctx, scope)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	maxN := 1
	for _, st := range statuses {
		maxN = max(maxN, counts[st])
		ov.TotalJobs += counts[st]
		if !st.Terminal() {
			ov.ActiveJobs += counts[st]
		}
	}
	for i, st := range statuses {
		n := counts[st]
		ov.States = append(ov.States, bar{Label: statusLabel(string(st)), Value: fmt.Sprint(n), Pct: pct(n, maxN),
			Tone: statusTone(string(st)), Y: i * 28, Link: "/?status=" + string(st)})
	}
	ov.StatesH = len(ov.States) * 28

	// Credits per tenant against its budget.
	var tenants []*gateway.Tenant
	if u.Admin {
		tenants, err = d.gw.Store().ListTenants(ctx)
		if err != nil {
			d.fail(w, r, err)
			return
		}
	} else if t, err := d.gw.Store().Tenant(ctx, u.Tenant.ID); err == nil {
		tenants = []*gateway.Tenant{t}
	}
	var scale int64 = 1
	for _, t := range tenants {
		scale = max(scale, t.CreditsUsed)
		if t.CreditBudget != nil {
			scale = max(scale, *t.CreditBudget)
		}
	}
	for i, t := range tenants {
		b := bar{Label: t.Name, Value: fmt.Sprintf("%d", t.CreditsUsed), Pct: pct64(t.CreditsUsed, scale), Tone: "run", Y: i * 28}
		if t.CreditBudget != nil {
			b.Mark = pct64(*t.CreditBudget, scale)
			b.Value = fmt.Sprintf("%d / %d", t.CreditsUsed, *t.CreditBudget)
			if *t.CreditBudget > 0 && t.CreditsUsed*10 >= *t.CreditBudget*9 {
				b.Tone = "bad"
			}
		} else {
			b.Note = "no budget"
		}
		ov.Credits = append(ov.Credits, b)
	}
	ov.CreditsH = max(1, len(ov.Credits)) * 28

	// Upstream error rate: share of the jobs finished each hour that failed
	// because of Magic Hour or the way to it; content errors
	// (no_source_face, ...) are the input's, not the service's.
	since := now.Truncate(time.Hour).Add(-23 * time.Hour)
	buckets, err := d.gw.FinishedByHour(ctx, scope, since)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	byHour := map[int64]gateway.HourBucket{}
	fin, failed, content := 0, 0, 0
	for _, b := range buckets {
		byHour[b.Hour.Unix()] = b
		fin += b.Finished
		failed += b.UpstreamFailed
		content += b.Failed - b.UpstreamFailed
	}
	for i := range 24 {
		h := since.Add(time.Duration(i) * time.Hour)
		b := byHour[h.Unix()]
		c := column{Label: h.Format("15"), X: float64(i) * 100 / 24}
		if b.Finished > 0 {
			c.H = pct(b.UpstreamFailed, b.Finished)
			c.Title = fmt.Sprintf("%s: %d of %d failed upstream (%d content errors)", h.Format("Jan 2 15:00"), b.UpstreamFailed, b.Finished, b.Failed-b.UpstreamFailed)
		} else {
			c.Title = h.Format("Jan 2 15:00") + ": no finished jobs"
		}
		c.Tone = "bad"
		ov.ErrorCols = append(ov.ErrorCols, c)
	}
	if fin > 0 {
		ov.ErrorRate = fmt.Sprintf("%.1f%%", pct(failed, fin))
		ov.ErrorNote = fmt.Sprintf("%d of %d jobs finished in the last 24 h failed upstream or on the way to it; %d more ended in a content error (such as no_source_face), not counted", failed, fin, content)
	} else {
		ov.ErrorRate = "—"
		ov.ErrorNote = "no job finished in the last 24 h"
	}
	// Retried upstream calls (each one a 429/5xx/network error the gateway absorbed).
	day := now.Add(-24 * time.Hour)
	maxR := 1
	type rc struct {
		label string
		n     int
	}
	var rcs []rc
	for _, t := range []struct{ typ, label string }{{"create_failed", "create retried"}, {"poll_failed", "poll failed"}, {"store_failed", "download retried"}} {
		evs, err := d.gw.EventsOfType(ctx, scope, t.typ, day, 1000)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		rcs = append(rcs, rc{t.label, len(evs)})
		maxR = max(maxR, len(evs))
	}
	for i, x := range rcs {
		v := fmt.Sprint(x.n)
		if x.n == 1000 {
			v = "1000+"
		}
		ov.Retries = append(ov.Retries, bar{Label: x.label, Value: v, Pct: pct(x.n, maxR), Tone: "warn", Y: i * 28})
	}
	ov.RetriesH = len(ov.Retries) * 28

	// Webhook lag: from the delivery's signed timestamp to its receipt,
	// when the webhook events record it (lag_ms).
	hooks, err := d.gw.EventsOfType(ctx, scope, "webhook", now.Add(-time.Hour), 2000)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	polls, err := d.gw.EventsOfType(ctx, scope, "poll", now.Add(-time.Hour), 2000)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	ov.Tracking = fmt.Sprintf("Last hour: %d webhooks received, %d fallback polls.", len(hooks), len(polls))
	var lags []float64
	for _, ev := range hooks {
		var data map[string]any
		if json.Unmarshal(ev.Data, &data) != nil {
			continue
		}
		if v, ok := data["lag_ms"].(float64); ok {
			lags = append(lags, v)
		}
	}
	edges := []struct {
		ms    float64
		label string
	}{{100, "<100ms"}, {250, "<250ms"}, {500, "<500ms"}, {1000, "<1s"}, {2000, "<2s"}, {5000, "<5s"}, {0, "≥5s"}}
	hist := make([]int, len(edges))
	for _, l := range lags {
		i := len(edges) - 1
		for k, e := range edges[:len(edges)-1] {
			if l < e.ms {
				i = k
				break
			}
		}
		hist[i]++
	}
	maxH := 1
	for _, n := range hist {
		maxH = max(maxH, n)
	}
	for i, e := range edges {
		ov.LagBuckets = append(ov.LagBuckets, column{Label: e.label, X: float64(i) * 100 / float64(len(edges)),
			H: pct(hist[i], maxH), Title: fmt.Sprintf("%s: %d webhooks", e.label, hist[i]), Tone: "run"})
	}
	if len(lags) > 0 {
		sort.Float64s(lags)
		q := func(p float64) string {
			return fmtLag(lags[min(len(lags)-1, int(p*float64(len(lags))))])
		}
		ov.LagSummary = fmt.Sprintf("Lag p50 %s · p95 %s · max %s (of %d with a recorded lag).", q(0.5), q(0.95), q(1), len(lags))
	} else {
		ov.LagNote = "No webhook in the last hour recorded its lag (lag_ms)."
	}
	if u.Admin {
		if ov.Replicas, err = d.gw.Replicas(ctx); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	d.render(w, r, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Data: ov})
}

func pct(n, of int) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

func pct64(n, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

// fmtLag shows a webhook lag in milliseconds to the millisecond (the
// events record lag_ms), seconds above 10 s.
func fmtLag(ms float64) string {
	if ms < 10000 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmtDuration(time.Duration(ms * float64(time.Millisecond)))
}
