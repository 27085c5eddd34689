package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// "validate": false skips the catalog's checks (not the hardening ones);
// a refusal names the catalog's date and the ways out; warnings become
// validation_warning events.
func TestSubmitValidateFalseAndWarnings(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		newModel := map[string]any{"model": "model-of-next-week", "image_count": 1, "style": map[string]any{"prompt": "a cat"}}
		code, raw := h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-generator", "params": newModel}, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(raw), "checked against the catalog of") ||
			!strings.Contains(string(raw), `\"validate\": false`) {
			t.Fatalf("out-of-catalog model: %d %s", code, raw)
		}
		var j jobView
		code, raw = h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-generator", "params": newModel, "validate": false}, &j)
		if code != http.StatusAccepted {
			t.Fatalf(`"validate": false: %d %s`, code, raw)
		}
		h.wait(j.ID) // the emulator (on the same catalog) has the last word
		// Hardening still applies without validation.
		for _, c := range []struct {
			body string
			want int
		}{
			{`{"tool":"ai-image-generator","validate":false,"params":[1]}`, http.StatusBadRequest},
			{`{"tool":"ai-image-generator","validate":false,"params":{"a":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`, http.StatusBadRequest},
			{`{"tool":"ai-image-generator","validate":false,"params":{"a":"` + strings.Repeat("x", 2<<20) + `"}}`, http.StatusRequestEntityTooLarge},
			{`{"tool":"no-such-tool","validate":false,"params":{}}`, http.StatusBadRequest},
		} {
			if code, raw := h.do("POST", "/api/jobs", h.tenantKey, c.body, nil); code != c.want {
				t.Errorf("%.80s: %d %.200s, want %d", c.body, code, raw, c.want)
			}
		}
		// An unknown member is passed on, with a warning kept as an event.
		extra := map[string]any{"image_count": 1, "style": map[string]any{"prompt": "a cat"}, "brand_new_option": true}
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-generator", "params": extra}, &j); code != http.StatusAccepted {
			t.Fatalf("unknown member: %d %s", code, raw)
		}
		if evs := h.events(j.ID); count(evs, "validation_warning") != 1 {
			t.Fatalf("events: %v", evs)
		}
		var got struct{ Params map[string]any }
		h.do("GET", "/api/jobs/"+j.ID, h.tenantKey, nil, &got)
		if got.Params["brand_new_option"] != true {
			t.Fatalf("the unknown member was not kept: %v", got.Params)
		}
		h.wait(j.ID)
	})
}
