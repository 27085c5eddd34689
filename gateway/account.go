package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// handleAccount answers GET /api/account: the calling tenant, its credit
// budget and what it has used, so agents and scripts can see what they may
// still spend before they submit.
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
	writeJSON(w, http.StatusOK, out)
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
	credits := EstimateCredits(job.Tool, job.Params)
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
