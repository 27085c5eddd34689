package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/hourglasshq/hourglass/gateway"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"

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
