package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// sdk returns the project's own Magic Hour client pointed at the gateway
// with the tenant key: the drop-in promise.
func (h *harness) sdk() *magichour.Client {
	h.t.Helper()
	c, err := magichour.NewClient(magichour.WithAPIKey(h.tenantKey), magichour.WithBaseURL(h.srv.URL))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// waitProject polls the drop-in project route until it is terminal.
func waitProject(t *testing.T, c *magichour.Client, kind magichour.Kind, id string) *magichour.Project {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		p, err := c.GetProject(context.Background(), kind, id)
		if err != nil {
			t.Fatalf("get %s %s: %v", kind, id, err)
		}
		if p.Status.Terminal() {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("project %s still %s", id, p.Status)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// An app using the Magic Hour SDK, pointed at the gateway, creates jobs of
// every kind, reads them back in Magic Hour's shape and downloads the
// gateway's stored copies from URLs that do not expire.
func TestDropInCreateGetDownload(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		c := h.sdk()
		ctx := context.Background()
		for _, tool := range []string{"text-to-video", "ai-image-generator", "ai-voice-generator"} {
			op := catalog.Lookup(tool)
			// The raw answer carries the deprecated cost fields.
			var created map[string]any
			code, raw := h.do("POST", "/v1/"+tool, h.tenantKey, op.ExampleBody(), &created)
			if code != http.StatusOK {
				t.Fatalf("create %s: %d %s", tool, code, raw)
			}
			id, _ := created["id"].(string)
			if !strings.HasPrefix(id, "job_") || created["credits_charged"] == nil {
				t.Fatalf("create %s: %s", tool, raw)
			}
			switch op.Kind {
			case catalog.KindVideo:
				if created["estimated_frame_cost"] == nil {
					t.Fatalf("video create lacks estimated_frame_cost: %s", raw)
				}
			case catalog.KindImage:
				if created["frame_cost"] == nil {
					t.Fatalf("image create lacks frame_cost: %s", raw)
				}
			}
			// The SDK reads it in Magic Hour's shape.
			p := waitProject(t, c, magichour.Kind(op.Kind), id)
			if p.Status != magichour.StatusComplete || len(p.Downloads) == 0 {
				t.Fatalf("%s: %s with %d downloads", tool, p.Status, len(p.Downloads))
			}
			for _, d := range p.Downloads {
				if !strings.HasPrefix(d.URL, h.srv.URL+"/v1/downloads/") {
					t.Fatalf("download URL is not the gateway's: %s", d.URL)
				}
				if time.Until(d.ExpiresAt) < 5*365*24*time.Hour {
					t.Fatalf("download expires at %s", d.ExpiresAt)
				}
			}
			if op.Kind != catalog.KindAudio && p.TotalFrameCost == 0 {
				t.Fatalf("%s: total_frame_cost missing", tool)
			}
			files, err := c.Download(ctx, p, t.TempDir())
			if err != nil || len(files) != len(p.Downloads) {
				t.Fatalf("download %s: %v %+v", tool, err, files)
			}
			var j jobView
			h.do("GET", "/api/jobs/"+id, h.tenantKey, nil, &j)
			for i, f := range files {
				b, err := os.ReadFile(f.Path)
				if err != nil || sha(b) != j.Outputs[i].SHA256 {
					t.Fatalf("downloaded %s does not match the stored output: %v", f.Path, err)
				}
			}
			// A tampered signature is refused; another kind's route is 404.
			if resp, err := http.Get(strings.Replace(p.Downloads[0].URL, "/0/", "/0/0", 1)); err != nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("tampered download URL: %v %v", err, resp)
			} else {
				resp.Body.Close()
			}
			other := magichour.KindAudio
			if op.Kind == catalog.KindAudio {
				other = magichour.KindVideo
			}
			if _, err := c.GetProject(ctx, other, id); !errors.Is(err, magichour.ErrNotFound) {
				t.Fatalf("get as %s: %v", other, err)
			}
		}
		// Unknown tool and bad body answer like Magic Hour.
		if code, _ := h.do("POST", "/v1/make-magic", h.tenantKey, `{}`, nil); code != http.StatusNotFound {
			t.Fatalf("unknown tool: %d", code)
		}
		code, raw := h.do("POST", "/v1/ai-image-generator", h.tenantKey, `{"image_count":1}`, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(raw), "style") || strings.Contains(string(raw), "params.") {
			t.Fatalf("invalid body: %d %s", code, raw)
		}
		if code, _ := h.do("POST", "/v1/ai-image-generator", "", `{}`, nil); code != http.StatusUnauthorized {
			t.Fatalf("no key: %d", code)
		}
	})
}

// Upload URLs point at the gateway; the worker uploads the file to Magic
// Hour before the create (the emulator refuses unknown api-assets paths,
// so a job that completes proves the path was replaced).
func TestDropInUploadsAndFaceDetection(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		c := h.sdk()
		ctx := context.Background()
		png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("png!"), 2048)...)
		path, err := c.Files.UploadReader(ctx, bytes.NewReader(png), int64(len(png)), "png")
		if err != nil {
			t.Fatalf("upload through the gateway: %v", err)
		}
		if !strings.HasPrefix(path, "api-assets/hourglass/upl_") {
			t.Fatalf("file_path %q", path)
		}
		if n := h.emu.Emulator.Stats().Uploads; n != 0 {
			t.Fatalf("uploaded upstream before any job: %d", n)
		}
		res, err := c.Create(ctx, "face-swap-photo", map[string]any{"assets": map[string]any{
			"source_file_path": path, "target_file_path": path}})
		if err != nil {
			t.Fatal(err)
		}
		p := waitProject(t, c, magichour.KindImage, res.ID)
		if p.Status != magichour.StatusComplete {
			t.Fatalf("face swap with uploads: %s %+v", p.Status, p.Error)
		}
		if n := h.emu.Emulator.Stats().Uploads; n != 1 {
			t.Fatalf("upstream uploads = %d, want 1 (the same file used twice)", n)
		}
		// Native uploads return the same kind of reference.
		var up struct {
			FilePath string `json:"file_path"`
			Size     int64  `json:"size"`
		}
		if code, raw := h.do("POST", "/api/uploads?extension=png", h.tenantKey, png, &up); code != http.StatusCreated || up.Size != int64(len(png)) {
			t.Fatalf("api upload: %d %s", code, raw)
		}
		if code, raw := h.do("POST", "/api/uploads?extension=exe", h.tenantKey, png, nil); code != http.StatusBadRequest {
			t.Fatalf("bad extension: %d %s", code, raw)
		}
		j := h.submitParams("image-to-video", map[string]any{"end_seconds": 5, "assets": map[string]any{"image_file_path": up.FilePath}})
		if got := h.wait(j.ID); got.Status != "stored" {
			t.Fatalf("native job with upload: %s %+v", got.Status, got.Error)
		}
		// Another tenant cannot use the upload; an unknown one is refused.
		other := h.newTenant(map[string]any{"name": "other"})
		req := map[string]any{"tool": "image-to-video", "params": map[string]any{"end_seconds": 5, "assets": map[string]any{"image_file_path": up.FilePath}}}
		if code, raw := h.do("POST", "/api/jobs", other, req, nil); code != http.StatusBadRequest || !strings.Contains(string(raw), "image_file_path") {
			t.Fatalf("other tenant's upload: %d %s", code, raw)
		}
		// Face detection is proxied, and private to its tenant.
		fd, err := c.FaceDetection.Create(ctx, magichour.FaceDetectionCreateParams{Assets: magichour.FaceDetectionCreateParamsAssets{TargetFilePath: path}})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			d, err := c.FaceDetection.Get(ctx, fd.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status.Terminal() {
				if d.Status != magichour.FaceDetectionComplete {
					t.Fatalf("face detection: %s", d.Status)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("face detection did not finish")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if code, _ := h.do("GET", "/v1/face-detection/"+fd.ID, other, nil, nil); code != http.StatusNotFound {
			t.Fatalf("other tenant reads the detection: %d", code)
		}
	})
}

// DELETE removes the project: 404 afterwards, stored copies and the Magic
// Hour project deleted.
func TestDropInDelete(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		c := h.sdk()
		ctx := context.Background()
		res, err := c.Create(ctx, "ai-image-generator", catalog.Lookup("ai-image-generator").ExampleBody())
		if err != nil {
			t.Fatal(err)
		}
		p := waitProject(t, c, magichour.KindImage, res.ID)
		if err := c.DeleteProject(ctx, magichour.KindImage, res.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetProject(ctx, magichour.KindImage, res.ID); !errors.Is(err, magichour.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		if resp, err := http.Get(p.Downloads[0].URL); err != nil || resp.StatusCode != http.StatusGone {
			t.Fatalf("download after delete: %v %v", err, resp)
		} else {
			resp.Body.Close()
		}
		if n := h.emu.Emulator.Stats().Requests["DELETE /v1/image-projects/{id} 204"]; n != 1 {
			t.Fatalf("upstream deletes: %d", n)
		}
	})
}

// submitParams posts a native job with explicit params and expects 202.
func (h *harness) submitParams(tool string, p map[string]any) jobView {
	h.t.Helper()
	var j jobView
	code, raw := h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": tool, "params": p}, &j)
	if code != http.StatusAccepted {
		h.t.Fatalf("submit %s: %d %s", tool, code, raw)
	}
	return j
}

// newTenant creates a tenant through the admin API and returns its key.
func (h *harness) newTenant(req map[string]any) string {
	h.t.Helper()
	var out struct {
		APIKey string `json:"api_key"`
	}
	if code, raw := h.do("POST", "/api/admin/tenants", h.adminKey, req, &out); code != http.StatusCreated {
		h.t.Fatalf("create tenant: %d %s", code, raw)
	}
	return out.APIKey
}

var _ = json.Marshal
