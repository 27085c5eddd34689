package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

// The batch pages in a real browser: the nav link, the list, the batch
// view with its counts and progress, and from a job back to its batch.
func TestBrowserBatch(t *testing.T) {
	chromium(t)
	t.Parallel()
	// A long lease: on a loaded machine a 2 s lease can expire during a
	// create, which (rightly) ends the job create_outcome_unknown.
	e := newEnvWith(t, 500, func(c *gateway.Config) { c.LeaseDuration = 15 * time.Second })
	var lines []map[string]any
	for i := range 12 {
		p := catalog.Lookup("ai-image-generator").ExampleBody()
		p["name"] = "product shot " + string(rune('A'+i))
		if i == 4 {
			p["name"] = "product shot boom"
		}
		lines = append(lines, map[string]any{"line": i + 1, "tool": "ai-image-generator", "params": p})
	}
	var bt struct {
		ID   string `json:"id"`
		Jobs []struct {
			JobID string `json:"job_id"`
		} `json:"jobs"`
	}
	if code := e.api("POST", "/api/batches", e.tenantKey, map[string]any{"name": "spring catalogue", "lines": lines}, &bt); code != http.StatusCreated {
		t.Fatalf("POST /api/batches: %d", code)
	}
	for _, j := range bt.Jobs {
		e.wait(j.JobID)
	}
	b := newBrowser(t, e.srv.URL)
	b.do("open", chromedp.Navigate(b.url+"/login"))
	b.until("sign-in page", `!!document.querySelector("#key")`, 10*time.Second)
	b.do("sign in", chromedp.SendKeys(chromedp.ID("key"), e.tenantKey), chromedp.Submit(chromedp.ID("key")))
	b.until("jobs list", `location.pathname === "/" && !!document.querySelector("#jobs")`, 10*time.Second)
	b.follow("nav to batches", `nav a[href="/batches"]`)
	b.until("batch list", `location.pathname === "/batches" && !!document.querySelector("#batch-`+bt.ID+`")`, 10*time.Second)
	b.follow("open the batch", `#batch-`+bt.ID+` a`)
	b.until("batch view", `location.pathname === "/batches/`+bt.ID+`" && !!document.querySelector("#batch-jobs")`, 10*time.Second)
	got := eval[string](b, `document.querySelector("#batch-done").innerText + "|" + document.querySelectorAll("#batch-jobs tbody tr").length + "|" + document.querySelector("progress").value`)
	if got != "12/12 (100%)|12|12" {
		t.Fatalf("batch view: %q", got)
	}
	counts := eval[string](b, `document.querySelector("#batch-counts").innerText`)
	if !strings.Contains(counts, "11") || !strings.Contains(counts, "1") {
		t.Fatalf("counts %q", counts)
	}
	b.shot("dashboard-batch.png", false)
	b.follow("open a job", `#job-`+bt.Jobs[4].JobID+` a`)
	b.until("job page with its batch", `location.pathname === "/jobs/`+bt.Jobs[4].JobID+`" && document.querySelector("#job-batch").innerText.includes("Line 5 of batch")`, 10*time.Second)
	b.follow("back to the batch", `#job-batch a`)
	b.until("batch view again", `location.pathname === "/batches/`+bt.ID+`"`, 10*time.Second)
}

// follow opens the link a CSS selector finds, by its href: a click can race
// the live pages' DOM updates.
func (b *browser) follow(what, sel string) {
	b.t.Helper()
	b.until(what+": link", `!!document.querySelector(`+"`"+sel+"`"+`)`, 10*time.Second)
	href := eval[string](b, `document.querySelector(`+"`"+sel+"`"+`).href`)
	b.do(what, chromedp.Navigate(href))
}
