package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hourglasshq/hourglass/internal/media"
)

// chromium returns the browser to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOURGLASS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary found (apt-get install chromium, or set HOURGLASS_CHROMIUM): skipping the browser test")
	return ""
}

type browser struct {
	t   *testing.T
	ctx context.Context
	url string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	ctx, cancelT := context.WithTimeout(ctx, 150*time.Second)
	t.Cleanup(cancelT)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 860)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, url: base}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval runs JS and returns its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// until polls a JS condition in the page (across navigations).
func (b *browser) until(what, js string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.querySelector("main") || document.body).innerText.slice(0, 1500)`))
	b.t.Fatalf("%s: not true after %s (last error %v)\npage: %s", what, timeout, lastErr, text)
}

func (b *browser) screenshot(name string) { b.shot(name, false) }

// shot saves a screenshot when HOURGLASS_SCREENSHOTS names a folder; full
// captures the whole page.
func (b *browser) shot(name string, full bool) {
	dir := os.Getenv("HOURGLASS_SCREENSHOTS")
	if dir == "" {
		return
	}
	b.t.Helper()
	act := chromedp.CaptureScreenshot()
	if full {
		act = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(b.ctx, act)
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// The whole dashboard in a real browser: sign in, submit a job with a file
// through the generated form (an invalid value first: inline error, input
// kept), watch it reach stored without a reload, see its preview load; a
// failed job shows its error code; video and audio previews load; the list
// updates live and filters.
func TestBrowser(t *testing.T) {
	chromium(t)
	t.Parallel()
	e := newEnv(t, 10)
	b := newBrowser(t, e.srv.URL)

	// Jobs for the list: finished, failed, and long-running ones.
	video := e.submit(e.tenantKey, "lip-sync", nil)
	audio := e.submit(e.tenantKey, "ai-voice-generator", nil)
	failed := e.submit(e.tenantKey, "face-swap-photo", func(p map[string]any) { p["name"] = "noface portrait" })
	e.submit(e.tenantKey, "ai-image-generator", nil)
	e.submit(e.tenantKey, "text-to-video", nil) // minutes: stays rendering
	other := e.newTenant("studio-b")
	e.submit(other, "ai-headshot-generator", nil)

	// Sign in: the dashboard sends us to the sign-in page first.
	b.do("open", chromedp.Navigate(b.url+"/"))
	b.until("sign-in page", `location.pathname === "/login" && !!document.querySelector("#key")`, 10*time.Second)
	b.do("sign in", chromedp.SendKeys(chromedp.ID("key"), e.tenantKey), chromedp.Submit(chromedp.ID("key")))
	b.until("jobs list", `location.pathname === "/" && !!document.querySelector("#jobs")`, 10*time.Second)

	// Submit with a file. First an invalid file reference: the error shows
	// next to the field and what was typed is kept.
	png, err := media.Image("png", 160, 120, 7)
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(t.TempDir(), "portrait.png")
	if err := os.WriteFile(input, png, 0o644); err != nil {
		t.Fatal(err)
	}
	b.do("open the form", chromedp.Navigate(b.url+"/submit/ai-image-upscaler"))
	b.until("form", `!!document.querySelector("#submit-form")`, 10*time.Second)
	b.do("fill the form",
		chromedp.SendKeys(chromedp.CSS(`[name="name"]`), "upscale from the browser"),
		chromedp.SetValue(chromedp.CSS(`[name="scale_factor"]`), "2"),
		chromedp.SendKeys(chromedp.CSS(`input[type=text][name="assets.image_file_path"]`), "ftp://example.com/me.png"),
	)
	b.screenshot("dashboard-submit-filled.png")
	b.do("submit", chromedp.Click(chromedp.ID("submit-btn")))
	b.until("inline error", `!!document.querySelector(".field.has-error .error") && location.pathname === "/submit/ai-image-upscaler"`, 15*time.Second)
	errText := eval[string](b, `document.querySelector(".field.has-error .error").innerText`)
	kept := eval[string](b, `document.querySelector('[name="name"]').value + "|" + document.querySelector('input[type=text][name="assets.image_file_path"]').value`)
	focused := eval[string](b, `document.activeElement ? document.activeElement.id : ""`)
	if !strings.Contains(errText, "must be an http(s) URL") {
		t.Errorf("inline error %q", errText)
	}
	if kept != "upscale from the browser|ftp://example.com/me.png" {
		t.Errorf("form values not kept: %q", kept)
	}
	if focused != "form-errors" {
		t.Errorf("error summary not focused: %q", focused)
	}
	b.screenshot("dashboard-submit.png")
	b.do("fix the form: choose a file",
		chromedp.SetUploadFiles(chromedp.CSS(`input[type=file][name="file:assets.image_file_path"]`), []string{input}),
		chromedp.Click(chromedp.ID("submit-btn")),
	)
	b.until("job page", `location.pathname.startsWith("/jobs/job_")`, 30*time.Second)
	jobID := strings.TrimPrefix(eval[string](b, `location.pathname`), "/jobs/")
	// Watch it move to stored without a reload: a marker set now survives.
	b.do("mark", chromedp.Evaluate[chromedp.Void](`window.__noReload = 1`))
	first := eval[string](b, `document.querySelector("#job-summary .badge").innerText`)
	b.until("stored, live", `document.querySelector("#job-summary .badge").innerText === "stored"`, 60*time.Second)
	if eval[int](b, `window.__noReload || 0`) != 1 {
		t.Fatal("the page reloaded")
	}
	t.Logf("job %s went %s → stored without a reload", jobID, first)
	if first == "stored" {
		t.Log("note: the job was stored before the page loaded; the live path was not exercised for it")
	}
	b.until("preview image loaded", `(() => { const i = document.querySelector("#job-outputs img"); return !!i && i.complete && i.naturalWidth > 0 })()`, 15*time.Second)
	b.until("timeline", `document.querySelectorAll("#timeline li").length >= 5 && document.querySelector("#timeline").innerText.includes("Stored")`, 10*time.Second)
	if j := e.wait(jobID); !strings.Contains(string(j.Params), "api-assets/hourglass/upl_") {
		t.Errorf("the job does not reference the uploaded file: %s", j.Params)
	}
	b.until("stream ended", `document.querySelector("#live").hidden`, 10*time.Second)
	b.shot("dashboard-detail.png", true)

	// A failed job shows its error code and message.
	e.wait(failed)
	b.do("failed job", chromedp.Navigate(b.url+"/jobs/"+failed))
	b.until("error code", `!!document.querySelector(".alert-bad .ecode-big") && document.querySelector(".alert-bad .ecode-big").innerText === "no_source_face"`, 10*time.Second)

	// Video and audio previews load their media.
	e.wait(video)
	b.do("video job", chromedp.Navigate(b.url+"/jobs/"+video))
	b.until("video metadata", `(() => { const v = document.querySelector("#job-outputs video"); return !!v && v.readyState >= 1 && v.duration > 0 })()`, 20*time.Second)
	b.screenshot("dashboard-detail-video.png")
	e.wait(audio)
	b.do("audio job", chromedp.Navigate(b.url+"/jobs/"+audio))
	b.until("audio metadata", `(() => { const a = document.querySelector("#job-outputs audio"); return !!a && a.readyState >= 1 && a.duration > 0 })()`, 20*time.Second)

	// The list: another tenant's job is not there; a job submitted now
	// appears (after "show") and advances in place, without a reload.
	b.do("list", chromedp.Navigate(b.url+"/"))
	b.until("rows", `document.querySelectorAll("#rows tr").length >= 6`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll("#rows td.c-tenant").length`); n != 0 {
		t.Errorf("tenant column shown to a tenant: %d", n)
	}
	b.do("mark", chromedp.Evaluate[chromedp.Void](`window.__noReload = 1`))
	live := e.submit(e.tenantKey, "ai-qr-code-generator", nil)
	b.until("new-jobs button", `!document.querySelector("#newbar").hidden`, 15*time.Second)
	b.do("show new", chromedp.Click(chromedp.ID("show-new")))
	b.until("live row stored", fmt.Sprintf(`(() => { const r = document.getElementById("job-%s"); return !!r && r.dataset.status === "stored" })()`, live), 30*time.Second)
	if eval[int](b, `window.__noReload || 0`) != 1 {
		t.Fatal("the list reloaded")
	}
	// Rows keep their height as they update (no layout shift).
	heights := eval[[]float64](b, `Array.from(document.querySelectorAll("#rows tr")).map(r => r.getBoundingClientRect().height)`)
	for _, h := range heights {
		if h != heights[0] {
			t.Errorf("rows of different heights: %v", heights)
			break
		}
	}
	// Two more jobs, shown while they run, for the screenshot.
	e.submit(e.tenantKey, "image-to-video", nil)
	e.submit(other, "text-to-video", nil)
	e.submit(e.tenantKey, "animation", nil)
	b.until("new-jobs button again", `!document.querySelector("#newbar").hidden && document.querySelector("#new-count").innerText === "2"`, 15*time.Second)
	b.do("show new", chromedp.Click(chromedp.ID("show-new")), chromedp.Sleep(300*time.Millisecond))
	b.screenshot("dashboard-list.png")

	// Filter the list by status.
	b.do("filter", chromedp.SetValue(chromedp.ID("f-status"), "error"), chromedp.Click(chromedp.CSS(`.filters button[type=submit]`)))
	b.until("filtered", `location.search.includes("status=error") && document.querySelectorAll("#rows tr").length >= 1`, 10*time.Second)
	statuses := eval[[]string](b, `Array.from(document.querySelectorAll("#rows tr")).map(r => r.dataset.status)`)
	ids := eval[string](b, `document.querySelector("#rows").innerText`)
	for _, s := range statuses {
		if s != "error" {
			t.Errorf("filtered list has a %s job", s)
		}
	}
	if !strings.Contains(ids, failed) {
		t.Errorf("the failed job is not in the filtered list")
	}

	// The overview renders its charts.
	b.do("overview", chromedp.Navigate(b.url+"/overview"))
	b.until("charts", `document.querySelectorAll("main svg").length >= 4`, 10*time.Second)
	b.screenshot("dashboard-overview.png")

	// On a phone the list is readable: no horizontal scrolling.
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(b.url+"/"))
	b.until("phone list", `document.querySelectorAll("#rows tr").length >= 1`, 10*time.Second)
	if w := eval[float64](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 1 {
		t.Errorf("the list scrolls sideways on a phone by %vpx", w)
	}
	b.screenshot("dashboard-phone.png")
}
