package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// handleAccount answers GET /api/account: the calling tenant, its credit
// budget and what it has used, so agents and scripts can see what they may
// still spend before they submit. ?upstream=true adds the Magic Hour
// account's tier and credits (only those: the email and subscription are
// the operator's), or why they could not be read.
func (g *Gateway) handleAccount(w http.ResponseWriter, r *http.Request, c caller) {
	if !needTenant(w, c) {
		return
	}
	t, err := g.store.Tenant(r.Context(), c.Tenant.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	out := tenantJSON(t)
	out["credits_remaining"] = remaining(t)
	if r.URL.Query().Get("upstream") == "true" {
		out["upstream"] = g.upstreamAccount(r.Context())
	}
	writeJSON(w, http.StatusOK, out)
}

// upstreamAccount reads the Magic Hour account behind the gateway.
func (g *Gateway) upstreamAccount(ctx context.Context) map[string]any {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.upWait(ctx); err != nil {
		return map[string]any{"error": err.Error()}
	}
	start := time.Now()
	a, err := g.up.Account.Get(ctx)
	g.observe("GET /v1/account", err, start)
	if err != nil {
		return map[string]any{"error": "the Magic Hour account could not be read: " + err.Error()}
	}
	return map[string]any{"tier": a.Tier, "credits": a.Credits}
}

// handleEstimate answers POST /api/estimate with the body of a submit
// ({tool, params}): the request is validated exactly as a submit is and
// its estimated credits are compared with the tenant's budget. Nothing is
// recorded or sent upstream.
func (g *Gateway) handleEstimate(w http.ResponseWriter, r *http.Request, c caller) {
	if !needTenant(w, c) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body too large or unreadable", nil)
		return
	}
	var req submitRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_json", "malformed JSON: "+err.Error(), nil)
		return
	}
	job, status, apiErr := g.validateSubmit(&req)
	if apiErr != nil {
		writeError(w, status, apiErr.Code, apiErr.Message, apiErr.Fields)
		return
	}
	t, err := g.store.Tenant(r.Context(), c.Tenant.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	credits := g.estimateCredits(job.Tool, job.Params)
	rem := remaining(t)
	writeJSON(w, http.StatusOK, map[string]any{
		"tool": job.Tool, "credits": credits, "credit_budget": t.CreditBudget, "credits_used": t.CreditsUsed,
		"credits_remaining": rem, "within_budget": rem == nil || credits <= *rem,
	})
}

// remaining is what is left of t's budget (nil: no budget).
func remaining(t *Tenant) *int64 {
	if t.CreditBudget == nil {
		return nil
	}
	n := max(*t.CreditBudget-t.CreditsUsed, 0)
	return &n
}
