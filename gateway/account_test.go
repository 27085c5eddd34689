package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// GET /api/account shows the caller's budget; POST /api/estimate validates
// like a submit and prices against it, recording and sending nothing.
func TestAccountAndEstimate(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		key := h.newTenant(map[string]any{"name": "budgeted", "credit_budget": 100})

		type account struct {
			Name             string          `json:"name"`
			CreditBudget     *int64          `json:"credit_budget"`
			CreditsUsed      int64           `json:"credits_used"`
			CreditsRemaining *int64          `json:"credits_remaining"`
			Upstream         json.RawMessage `json:"upstream"`
		}
		var a account
		if code, raw := h.do("GET", "/api/account", key, nil, &a); code != http.StatusOK || a.Name != "budgeted" ||
			a.CreditBudget == nil || *a.CreditBudget != 100 || a.CreditsRemaining == nil || *a.CreditsRemaining != 100 || a.Upstream != nil {
			t.Fatalf("account: %d %s", code, raw)
		}
		var d account
		if code, raw := h.do("GET", "/api/account?upstream=true", h.tenantKey, nil, &d); code != http.StatusOK || d.CreditBudget != nil ||
			d.CreditsRemaining != nil || len(d.Upstream) == 0 {
			t.Fatalf("account without budget, with upstream: %d %s", code, raw)
		}
		if code, _ := h.do("GET", "/api/account", "hgt_wrong", nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("wrong key: %d", code)
		}
		if code, _ := h.do("GET", "/api/account", h.adminKey, nil, nil); code != http.StatusForbidden {
			t.Fatalf("admin key: %d, want 403 (an account is a tenant's)", code)
		}

		type estimate struct {
			Credits          int64  `json:"credits"`
			CreditsRemaining *int64 `json:"credits_remaining"`
			WithinBudget     bool   `json:"within_budget"`
		}
		video := map[string]any{"end_seconds": 5, "style": map[string]any{"prompt": "x"}}
		var e estimate
		if code, raw := h.do("POST", "/api/estimate", key, map[string]any{"tool": "text-to-video", "params": video}, &e); code != http.StatusOK ||
			e.Credits != 150 || e.WithinBudget || e.CreditsRemaining == nil || *e.CreditsRemaining != 100 {
			t.Fatalf("estimate over budget: %d %s", code, raw)
		}
		video["end_seconds"] = 3
		if code, raw := h.do("POST", "/api/estimate", key, map[string]any{"tool": "text-to-video", "params": video}, &e); code != http.StatusOK ||
			e.Credits != 90 || !e.WithinBudget {
			t.Fatalf("estimate within budget: %d %s", code, raw)
		}
		var bad struct {
			Error struct {
				Code   string `json:"code"`
				Fields []struct {
					Field string `json:"field"`
				} `json:"fields"`
			} `json:"error"`
		}
		code, raw := h.do("POST", "/api/estimate", key, map[string]any{"tool": "text-to-video", "params": map[string]any{"end_seconds": 5}}, &bad)
		if code != http.StatusBadRequest || bad.Error.Code != "invalid_params" || len(bad.Error.Fields) == 0 || bad.Error.Fields[0].Field != "params.style" {
			t.Fatalf("invalid estimate: %d %s", code, raw)
		}
		if n := h.emu.Emulator.Stats().Creates; n != 0 {
			t.Fatalf("estimates created %d upstream jobs", n)
		}
		var l struct {
			Jobs []any `json:"jobs"`
		}
		if h.do("GET", "/api/jobs", key, nil, &l); len(l.Jobs) != 0 {
			t.Fatalf("estimates recorded jobs: %v", l.Jobs)
		}
	})
}
