package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

// The batch pages, as HTML: the list, the batch view (counts, credits,
// every job's status) and the job page's link to its batch; tenants see
// only their own batches.
func TestBatchPages(t *testing.T) {
	t.Parallel()
	// A long lease: on a loaded machine a 2 s lease can expire during a
	// create, which (rightly) ends the job create_outcome_unknown.
	e := newEnvWith(t, 2000, func(c *gateway.Config) { c.LeaseDuration = 15 * time.Second })
	var lines []map[string]any
	for i, name := range []string{"first", "second", "third boom"} {
		p := catalog.Lookup("ai-image-generator").ExampleBody()
		p["name"] = name
		lines = append(lines, map[string]any{"line": i + 1, "tool": "ai-image-generator", "params": p})
	}
	var b struct {
		ID   string `json:"id"`
		Jobs []struct {
			JobID string `json:"job_id"`
		} `json:"jobs"`
	}
	if code := e.api("POST", "/api/batches", e.tenantKey, map[string]any{"name": "catalogue shots", "lines": lines}, &b); code != http.StatusCreated || len(b.Jobs) != 3 {
		t.Fatalf("POST /api/batches: %d %+v", code, b)
	}
	for i, j := range b.Jobs {
		want := gateway.StatusStored
		if i == 2 {
			want = gateway.StatusError
		}
		if got := e.wait(j.JobID); got.Status != want {
			t.Fatalf("line %d: job %s ended %s (%s), want %s", i+1, got.ID, got.Status, got.ErrorMessage, want)
		}
	}

	anon := e.client()
	if resp, _ := anon.get("/batches/" + b.ID); resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("batch page without a session: %d", resp.StatusCode)
	}

	c := e.client()
	c.login(e.tenantKey)
	resp, page := c.get("/batches")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `href="/batches/`+b.ID+`"`) || !strings.Contains(page, "catalogue shots") || !strings.Contains(page, "3/3") {
		t.Fatalf("batch list: %d\n%s", resp.StatusCode, page)
	}
	resp, page = c.get("/batches/" + b.ID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("batch view: %d", resp.StatusCode)
	}
	for _, want := range []string{"catalogue shots", `id="batch-done">3/3 (100%)`, `data-status="stored"`, `data-status="error"`, "unknown_error", `<progress max="3" value="3"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("batch view lacks %q:\n%s", want, page)
		}
	}
	for _, j := range b.Jobs {
		if !strings.Contains(page, `href="/jobs/`+j.JobID+`"`) {
			t.Fatalf("batch view lacks job %s", j.JobID)
		}
	}
	if strings.Index(page, b.Jobs[0].JobID) > strings.Index(page, b.Jobs[2].JobID) {
		t.Fatal("jobs not in line order")
	}
	_, page = c.get("/jobs/" + b.Jobs[1].JobID)
	if !strings.Contains(page, `Line 2 of batch <a href="/batches/`+b.ID+`"`) {
		t.Fatalf("job page does not show its batch:\n%s", page)
	}

	other := e.client()
	other.login(e.newTenant("other"))
	if resp, _ := other.get("/batches/" + b.ID); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other tenant's batch view: %d", resp.StatusCode)
	}
	if _, page := other.get("/batches"); strings.Contains(page, b.ID) || !strings.Contains(page, "No batches yet") {
		t.Fatalf("other tenant lists the batch:\n%s", page)
	}
	admin := e.client()
	admin.login(e.adminKey)
	if resp, page := admin.get("/batches/" + b.ID); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Tenant") {
		t.Fatalf("admin batch view: %d", resp.StatusCode)
	}
}
