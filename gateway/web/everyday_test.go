package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/hourglasshq/hourglass/gateway"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// visibleText is the text of an HTML page without tags, scripts and styles.
var tagRE = regexp.MustCompile(`(?s)<style.*?</style>|<script.*?</script>|<[^>]*>`)

// TestNoMarkdownLeftInToolCardsOrHelp renders the submit index and the form
// of every tool of the catalog: no card or field help may show a spec
// heading as a summary or a Markdown mark.
func TestNoMarkdownLeftInToolCardsOrHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	c := e.client()
	c.login(e.tenantKey)
	pages := []string{"/submit"}
	for _, op := range catalog.Creates() {
		pages = append(pages, "/submit/"+op.Name)
	}
	bad := []string{"What this API does", "**", "`", "* ", "](", "##"}
	for _, p := range pages {
		resp, body := c.get(p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		text := tagRE.ReplaceAllString(body, "\n")
		for _, b := range bad {
			if strings.Contains(text, b) {
				i := strings.Index(text, b)
				t.Errorf("%s shows %q: …%s…", p, b, text[max(0, i-60):min(len(text), i+60)])
			}
		}
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "- ") {
				t.Errorf("%s: a Markdown bullet left as text: %q", p, l)
			}
		}
	}
}

// The submit form fills in video_source from the file given, as the CLI
// does: no "video_source is required" for a form with a video.
func TestSubmitInfersSourceFromFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	c := e.client()
	csrf := c.login(e.tenantKey)
	_, form := c.get("/submit/face-swap")
	if !strings.Contains(form, "from the file or URL given") {
		t.Errorf("the video_source select does not say it is inferred")
	}
	if regexp.MustCompile(`<select id="f-assets-video-source"[^>]*required`).MatchString(form) {
		t.Errorf("video_source is still required in the browser")
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range map[string]string{"csrf": csrf, "name": "infer", "start_seconds": "0", "end_seconds": "2",
		"assets.image_file_path": "https://127.0.0.1/face.png"} {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file:assets.video_file_path", "in.mp4")
	_, _ = fw.Write([]byte("\x00\x00\x00\x18ftypmp42 not really a video"))
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/submit/face-swap", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", resp.StatusCode, tagRE.ReplaceAllString(string(body), " "))
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/jobs/")
	var job struct {
		Params map[string]any `json:"params"`
	}
	if code := e.api("GET", "/api/jobs/"+id, e.tenantKey, nil, &job); code != http.StatusOK {
		t.Fatalf("get job %s: %d", id, code)
	}
	assets, _ := job.Params["assets"].(map[string]any)
	if assets["video_source"] != "file" {
		t.Errorf("video_source = %v, want file (params %v)", assets["video_source"], job.Params)
	}
}

// The overview's upstream error rate counts upstream and transport
// failures only: a no_source_face job is the input's fault.
func TestOverviewErrorRateExcludesContentErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	content := e.submit(e.tenantKey, "face-swap-photo", func(p map[string]any) { p["name"] = "noface portrait" })
	if j := e.wait(content); j.ErrorCode != "no_source_face" {
		t.Fatalf("noface job: %s %s", j.Status, j.ErrorCode)
	}
	tenants, err := e.store.ListTenants(context.Background())
	if err != nil || len(tenants) == 0 {
		t.Fatal(tenants, err)
	}
	now := e.gw.Now()
	up := &gateway.Job{ID: "job_upstreamfail", TenantID: tenants[0].ID, Tool: "ai-image-generator", Kind: "image",
		Params: json.RawMessage(`{}`), Status: gateway.StatusError, ErrorCode: "upstream_unavailable", ErrorMessage: "503",
		CreatedAt: now, UpdatedAt: now, FinishedAt: now}
	if _, _, err := e.store.CreateJob(context.Background(), up, gateway.Event{Type: "error", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login(e.tenantKey)
	_, page := c.get("/overview")
	text := strings.Join(strings.Fields(tagRE.ReplaceAllString(page, " ")), " ")
	for _, want := range []string{"Upstream error rate 50.0%", "1 of 2 jobs finished in the last 24 h failed upstream", "1 more ended in a content error"} {
		if !strings.Contains(text, want) {
			t.Errorf("overview lacks %q: %s", want, text)
		}
	}
	if strings.Count(text, "webhooks received") != 1 || strings.Contains(text, "last hour) last hour") {
		t.Errorf("the webhook sentence is repeated: %s", text)
	}
}

// /favicon.ico is served (no sign-in needed, no refusal logged).
func TestFavicon(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	resp, body := e.client().get("/favicon.ico")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<svg") {
		t.Fatalf("favicon: %d %.100s", resp.StatusCode, body)
	}
}

// syncBuf is a log sink safe for the gateway's goroutines.
type syncBuf struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // a write happened
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

// waitFor waits until cond holds for the log (the line is written just
// after the job is saved, so the job may read terminal first).
func (s *syncBuf) waitFor(t *testing.T, cond func(string) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond(s.String()) {
		select {
		case <-s.changed:
		case <-deadline:
			return
		}
	}
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A job that is stored or fails gets one INFO line.
func TestJobStoredAndFailedAreLogged(t *testing.T) {
	t.Parallel()
	logs := &syncBuf{changed: make(chan struct{}, 1)}
	e := newEnvWith(t, 2000, func(c *gateway.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	ok := e.submit(e.tenantKey, "ai-image-generator", nil)
	bad := e.submit(e.tenantKey, "face-swap-photo", func(p map[string]any) { p["name"] = "noface portrait" })
	e.wait(ok)
	e.wait(bad)
	logs.waitFor(t, func(s string) bool {
		return strings.Contains(s, "job stored\" job="+ok) && strings.Contains(s, "job failed\" job="+bad)
	})
	out := logs.String()
	if n := strings.Count(out, `msg="gateway: job stored" job=`+ok); n != 1 {
		t.Errorf("%d stored lines for %s:\n%s", n, ok, out)
	}
	if n := strings.Count(out, `msg="gateway: job failed" job=`+bad); n != 1 || !strings.Contains(out, "code=no_source_face") {
		t.Errorf("%d failed lines for %s:\n%s", n, bad, out)
	}
}

// The jobs list shows each job's name; a canceled row says canceled once.
func TestListShowsNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	e.submit(e.tenantKey, "ai-image-generator", func(p map[string]any) { p["name"] = "bulk 17" })
	c := e.client()
	c.login(e.tenantKey)
	_, page := c.get("/jobs")
	if !strings.Contains(page, `data-label="Name" title="bulk 17">bulk 17<`) || !strings.Contains(page, `<th scope="col">Name</th>`) {
		t.Errorf("the list has no name column with the job's name")
	}
}
