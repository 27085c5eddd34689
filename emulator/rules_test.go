package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

func TestValidation(t *testing.T) {
	c := newClient(t, emulator.WithSpeed(5000))
	faceEditor := func(style map[string]any) map[string]any {
		return map[string]any{"assets": map[string]any{"image_file_path": "https://x.example/a.png"}, "style": style}
	}
	mappings := []any{}
	for range 6 {
		mappings = append(mappings, map[string]any{"original_face": "api-assets/x/0-0.png", "new_face": "https://x.example/f.png"})
	}
	cases := []struct {
		name, tool string
		body       any
		want       string
	}{
		{"not json", "face-swap", `{"assets":`, "not valid JSON"},
		{"required", "face-swap", map[string]any{"start_seconds": 0, "end_seconds": 2}, "assets: is required"},
		{"type", "ai-image-generator", map[string]any{"image_count": "two", "style": map[string]any{"prompt": "x"}}, "image_count: must be a number"},
		{"enum", "ai-clothes-changer", map[string]any{"assets": map[string]any{"person_file_path": "https://x.example/a.png", "garment_file_path": "https://x.example/b.png", "garment_type": "hat"}}, "assets.garment_type: must be one of"},
		{"range", "ai-face-editor", faceEditor(map[string]any{"eyebrow_direction": 200}), "style.eyebrow_direction: must be at most 100"},
		{"multipleOf", "ai-face-editor", faceEditor(map[string]any{"eyebrow_direction": 3}), "style.eyebrow_direction: must be a multiple of 5"},
		{"maxItems", "face-swap-photo", map[string]any{"assets": map[string]any{"face_swap_mode": "individual-faces", "face_mappings": mappings, "target_file_path": "https://x.example/t.png"}}, "assets.face_mappings: must have at most 5 items"},
		{"start<end", "face-swap", map[string]any{"start_seconds": 5, "end_seconds": 1, "assets": map[string]any{"video_source": "file", "video_file_path": "https://x.example/v.mp4", "image_file_path": "https://x.example/f.png"}}, "end_seconds: must be greater than start_seconds"},
		{"conditional", "face-swap", map[string]any{"start_seconds": 0, "end_seconds": 1, "assets": map[string]any{"video_source": "file", "image_file_path": "https://x.example/f.png"}}, `assets.video_file_path: is required when video_source is "file"`},
		{"malformed file ref", "photo-colorizer", map[string]any{"assets": map[string]any{"image_file_path": "ftp://x/a.png"}}, "assets.image_file_path: must be an http(s) URL"},
		{"bad extension", "photo-colorizer", map[string]any{"assets": map[string]any{"image_file_path": "https://x.example/a.mp3"}}, "unsupported file extension"},
		{"unknown upload", "photo-colorizer", map[string]any{"assets": map[string]any{"image_file_path": "api-assets/nope/0.png"}}, "assets.image_file_path: file not found; upload it first"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, m, _ := c.do("POST", catalog.Lookup(tc.tool).Path, tc.body)
			msg, _ := m["message"].(string)
			if code != 400 || !strings.Contains(msg, tc.want) {
				t.Errorf("got %d %q, want 400 containing %q", code, msg, tc.want)
			}
		})
	}
	if n := c.s.Emulator.Stats().Creates; n != 0 {
		t.Errorf("invalid requests created %d jobs", n)
	}

	// Deprecated and unknown fields are accepted.
	body := map[string]any{"image_count": 1, "orientation": "landscape", "no_such_field": true,
		"style": map[string]any{"prompt": "a cat", "quality_mode": "pro"}}
	if code, m, _ := c.do("POST", "/v1/ai-image-generator", body); code != 200 {
		t.Errorf("deprecated fields: %d %v", code, m)
	}
}

func TestAuthAndRoutes(t *testing.T) {
	c := newClient(t, emulator.WithAPIKeys("mhk_live_good"))
	for _, key := range []string{"", "mhk_live_bad"} {
		c.key = key
		code, m, _ := c.do("GET", "/v1/video-projects/x", nil)
		if code != 401 || m["message"] != "Unauthorized" {
			t.Errorf("key %q: %d %v", key, code, m)
		}
	}
	req, _ := http.NewRequest("GET", c.s.URL+"/v1/video-projects/x", nil)
	req.Header.Set("Authorization", "Basic mhk_live_good")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("malformed auth: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	c.key = "mhk_live_good"
	if code, m, _ := c.do("GET", "/v1/nope", nil); code != 404 || m["message"] != "Not Found" {
		t.Errorf("unknown route: %d %v", code, m)
	}
	if code, _, h := c.do("PUT", "/v1/face-swap", "{}"); code != 405 || h.Get("Allow") != "POST" {
		t.Errorf("wrong method: %d allow=%q", code, h.Get("Allow"))
	}
	if code, m, _ := c.do("GET", "/v1/video-projects/nope", nil); code != 404 || m["message"] != "Not Found" {
		t.Errorf("unknown id: %d %v", code, m)
	}
	id := c.mustCreate("ai-image-generator", map[string]any{"image_count": 1, "style": map[string]any{"prompt": "x"}})
	if code, _, _ := c.do("GET", "/v1/video-projects/"+id, nil); code != 404 {
		t.Errorf("image id on video route: %d", code)
	}
	if code, _, _ := c.do("GET", "/v1/image-projects/"+id, nil); code != 200 {
		t.Errorf("image id on image route: %d", code)
	}
}

func TestCredits(t *testing.T) {
	c := newClient(t, emulator.WithSpeed(5000), emulator.WithCredits(10_000))
	e := c.s.Emulator
	// Video: ceil(seconds) × fps (30 by default).
	id := c.mustCreate("text-to-video", map[string]any{"end_seconds": 4.5, "style": map[string]any{"prompt": "x"}})
	_, m, _ := c.do("GET", "/v1/video-projects/"+id, nil)
	if got := num(m["credits_charged"]); got != 150 && m["status"] != "complete" {
		t.Errorf("video estimate %v, want 150", got)
	}
	p := c.wait(catalog.KindVideo, id)
	final := int64(num(p["credits_charged"]))
	if final > 150 || final < 150*95/100 {
		t.Errorf("video final %d, want within 5%% below 150", final)
	}
	if b := e.Balance(); b != 10_000-final {
		t.Errorf("balance %d, want %d", b, 10_000-final)
	}
	// Image: the spec's per-image price × image_count.
	code, m, _ := c.do("POST", "/v1/ai-headshot-generator", map[string]any{"assets": map[string]any{"image_file_path": "https://x.example/a.png"}})
	if code != 200 || num(m["credits_charged"]) != 50 || num(m["frame_cost"]) != 50 {
		t.Errorf("headshot: %d %v", code, m)
	}
	c.wait(catalog.KindImage, m["id"].(string))
	// Error: refunded.
	before := e.Balance()
	id = c.mustCreate("text-to-video", map[string]any{"name": "boom", "end_seconds": 2, "style": map[string]any{"prompt": "x"}})
	if e.Balance() != before-60 {
		t.Errorf("not charged at create: %d", e.Balance())
	}
	p = c.wait(catalog.KindVideo, id)
	if p["status"] != "error" || num(p["credits_charged"]) != 0 || e.Balance() != before {
		t.Errorf("error refund: %v %v balance %d want %d", p["status"], p["credits_charged"], e.Balance(), before)
	}
	// 402: nothing created.
	e.SetBalance(59)
	creates := e.Stats().Creates
	code, m, _ = c.do("POST", "/v1/text-to-video", map[string]any{"end_seconds": 2, "style": map[string]any{"prompt": "x"}})
	if code != 402 || !strings.Contains(m["message"].(string), "credits") {
		t.Errorf("402: %d %v", code, m)
	}
	if e.Stats().Creates != creates || e.Balance() != 59 {
		t.Error("a 402 request created a job or charged")
	}
}

func TestFailureMarkers(t *testing.T) {
	hooks := &hookSink{t: t, secret: "s3cret"}
	srv := newHookServer(t, hooks)
	c := newClient(t, emulator.WithSpeed(5000), emulator.WithWebhookURL(srv), emulator.WithWebhookSecret("s3cret"))
	codes := map[string]string{"noface": "no_source_face", "badvideo": "invalid_video_file", "toolarge": "file_too_large",
		"badparams": "invalid_parameters", "timeout": "processing_timeout", "boom": "unknown_error", "nocredits": "insufficient_credits"}
	for tok, code := range codes {
		id := c.mustCreate("text-to-video", map[string]any{"name": "job " + tok, "end_seconds": 1, "style": map[string]any{"prompt": "x"}})
		p := c.wait(catalog.KindVideo, id)
		e, _ := p["error"].(map[string]any)
		if p["status"] != "error" || e["code"] != code || len(e["message"].(string)) < 20 {
			t.Errorf("%s: %v %v", tok, p["status"], p["error"])
		}
	}
	// In an input URL.
	id := c.mustCreate("photo-colorizer", map[string]any{"assets": map[string]any{"image_file_path": "https://x.example/badparams.png"}})
	if p := c.wait(catalog.KindImage, id); p["error"].(map[string]any)["code"] != "invalid_parameters" {
		t.Errorf("marker in URL: %v", p["error"])
	}
	// In the first bytes of an upload.
	path := c.upload("video", "mp4", append([]byte("....ftyp badvideo"), make([]byte, 100)...))
	id = c.mustCreate("video-to-video", map[string]any{"start_seconds": 0, "end_seconds": 1,
		"style": map[string]any{"art_style": "3D Render"}, "assets": map[string]any{"video_source": "file", "video_file_path": path}})
	if p := c.wait(catalog.KindVideo, id); p["error"].(map[string]any)["code"] != "invalid_video_file" {
		t.Errorf("marker in upload: %v", p["error"])
	}
	// cancelme: canceled, refunded, no completed/errored webhook.
	before := c.s.Emulator.Balance()
	id = c.mustCreate("text-to-video", map[string]any{"name": "cancelme", "end_seconds": 1, "style": map[string]any{"prompt": "x"}})
	if p := c.wait(catalog.KindVideo, id); p["status"] != "canceled" || num(p["credits_charged"]) != 0 {
		t.Errorf("cancelme: %v", p)
	}
	if c.s.Emulator.Balance() != before {
		t.Error("cancelme not refunded")
	}
	// Face detection: faces<N> and noface.
	for name, want := range map[string]int{"https://x.example/faces3.png": 3, "https://x.example/noface.png": 0} {
		fid := c.mustCreate("face-detection", map[string]any{"assets": map[string]any{"target_file_path": name}})
		var fd map[string]any
		for fd == nil || fd["status"] != "complete" {
			_, fd, _ = c.do("GET", "/v1/face-detection/"+fid, nil)
		}
		if got := len(fd["faces"].([]any)); got != want {
			t.Errorf("%s: %d faces, want %d", name, got, want)
		}
	}
	waitFor(t, func() bool { return len(hooks.types()) >= 7+1+1 })
	time.Sleep(50 * time.Millisecond)
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	for _, ev := range hooks.events {
		if ev.Payload["id"] == id && ev.Type != "video.started" {
			t.Errorf("canceled job sent %s", ev.Type)
		}
	}
}

func TestUploads(t *testing.T) {
	// The TTL leaves the checks before expiry room on a loaded machine; the
	// expiry check then sleeps until the URL's own expires_at.
	c := newClient(t, emulator.WithMaxUploadSize(1000), emulator.WithUploadURLTTL(1500*time.Millisecond))
	code, m, _ := c.do("POST", "/v1/files/upload-urls", map[string]any{"items": []any{
		map[string]any{"type": "image", "extension": "png"}, map[string]any{"type": "video", "extension": "png"}}})
	if code != 400 || !strings.Contains(m["message"].(string), "items[1].extension") {
		t.Errorf("wrong extension: %d %v", code, m)
	}
	code, m, _ = c.do("POST", "/v1/files/upload-urls", map[string]any{"items": []any{
		map[string]any{"type": "image", "extension": "png"}, map[string]any{"type": "audio", "extension": "mp3"}}})
	if code != 200 {
		t.Fatalf("upload-urls: %d %v", code, m)
	}
	if errs := checkSchema(catalog.Lookup("files.upload-urls").Response, m, "upload-urls"); len(errs) > 0 {
		t.Error(errs)
	}
	items := m["items"].([]any)
	put := func(url string, n int) int {
		req, _ := http.NewRequest("PUT", url, bytes.NewReader(make([]byte, n)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	u0 := items[0].(map[string]any)
	if fp := u0["file_path"].(string); !strings.HasPrefix(fp, "api-assets/") || !strings.HasSuffix(fp, "/0.png") {
		t.Errorf("file_path %s", fp)
	}
	if code := put(u0["upload_url"].(string), 1001); code != 413 {
		t.Errorf("too large: %d", code)
	}
	if code := put(u0["upload_url"].(string), 1000); code != 200 {
		t.Errorf("upload: %d", code)
	}
	if code := put(u0["upload_url"].(string)+"x", 10); code != 403 {
		t.Errorf("bad signature: %d", code)
	}
	if code, m, _ := c.do("POST", "/v1/photo-colorizer", map[string]any{"assets": map[string]any{"image_file_path": u0["file_path"]}}); code != 200 {
		t.Errorf("create with upload: %d %v", code, m)
	}
	sleepPast(t, items[1].(map[string]any)["expires_at"])
	if code := put(items[1].(map[string]any)["upload_url"].(string), 10); code != 403 {
		t.Errorf("expired upload URL: %d", code)
	}
}

func TestDownloads(t *testing.T) {
	c := newClient(t, emulator.WithSpeed(5000), emulator.WithURLTTL(1500*time.Millisecond))
	id := c.mustCreate("ai-image-generator", map[string]any{"image_count": 2, "aspect_ratio": "16:9", "resolution": "640px", "style": map[string]any{"prompt": "x"}})
	p := c.wait(catalog.KindImage, id)
	ds := p["downloads"].([]any)
	if len(ds) != 2 || num(p["image_count"]) != 2 {
		t.Fatalf("downloads %v", ds)
	}
	url := ds[0].(map[string]any)["url"].(string)
	checkImage(t, url, "png", 640, 360)
	resp, full, err := fetch(t, url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Accept-Ranges") != "bytes" || resp.ContentLength != int64(len(full)) || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("headers %v", resp.Header)
	}
	resp, part, err := fetch(t, url, "Range", "bytes=10-19")
	if err != nil || resp.StatusCode != 206 || !bytes.Equal(part, full[10:20]) || resp.Header.Get("Content-Range") == "" {
		t.Errorf("range: %v %v", err, resp)
	}
	sleepPast(t, ds[0].(map[string]any)["expires_at"])
	resp, b, _ := fetch(t, url)
	if resp.StatusCode != 403 || !strings.Contains(string(b), "expired") {
		t.Errorf("expired URL: %d %s", resp.StatusCode, b)
	}
	// A fresh GET gives fresh URLs.
	_, p, _ = c.do("GET", "/v1/image-projects/"+id, nil)
	if resp, _, _ := fetch(t, p["downloads"].([]any)[0].(map[string]any)["url"].(string)); resp.StatusCode != 200 {
		t.Errorf("fresh URL: %d", resp.StatusCode)
	}

	// Synthetic outputs of a fixed size.
	c2 := newClient(t, emulator.WithSpeed(5000), emulator.WithOutputSize(3<<20+7))
	id = c2.mustCreate("text-to-video", map[string]any{"end_seconds": 1, "style": map[string]any{"prompt": "x"}})
	p = c2.wait(catalog.KindVideo, id)
	resp, b, err = fetch(t, p["downloads"].([]any)[0].(map[string]any)["url"].(string))
	if err != nil || resp.StatusCode != 200 || len(b) != 3<<20+7 {
		t.Errorf("synthetic: %v %d", err, len(b))
	}
	resp, part, _ = fetch(t, p["downloads"].([]any)[0].(map[string]any)["url"].(string), "Range", "bytes=1000000-1000099")
	if resp.StatusCode != 206 || !bytes.Equal(part, b[1000000:1000100]) {
		t.Error("synthetic range differs from full download")
	}
}

func TestVideoDimensions(t *testing.T) {
	c := newClient(t, emulator.WithSpeed(5000))
	id := c.mustCreate("text-to-video", map[string]any{"end_seconds": 1, "aspect_ratio": "9:16", "resolution": "480p", "style": map[string]any{"prompt": "x"}})
	p := c.wait(catalog.KindVideo, id)
	if num(p["width"]) != 480 || num(p["height"]) != 854 {
		t.Errorf("dims %vx%v", p["width"], p["height"])
	}
}

// sleepPast sleeps until just after an RFC 3339 expires_at.
func sleepPast(t *testing.T, expiresAt any) {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, expiresAt.(string))
	if err != nil {
		t.Fatalf("expires_at %v: %v", expiresAt, err)
	}
	time.Sleep(time.Until(at) + 50*time.Millisecond)
}

// NewServer replays (seed 1); Listen picks a random seed, so a restarted
// emulator does not hand out ids a client may still hold; Reset starts a
// fresh id stream.
func TestSeedsAndIDs(t *testing.T) {
	if s := emulator.NewServer(t).Emulator.Seed(); s != 1 {
		t.Errorf("NewServer seed = %d, want 1", s)
	}
	a, err := emulator.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := emulator.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Emulator.Seed() == b.Emulator.Seed() {
		t.Errorf("two Listen emulators share seed %d", a.Emulator.Seed())
	}
	c := newClient(t)
	body := map[string]any{"image_count": 1, "style": map[string]any{"prompt": "x"}}
	first := c.mustCreate("ai-image-generator", body)
	c.s.Emulator.Reset()
	if again := c.mustCreate("ai-image-generator", body); again == first {
		t.Errorf("id %s handed out again after Reset", first)
	}
}

// TestErrorShape checks that errors carry the spec's code beside the
// message old clients read.
func TestErrorShape(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t)
	for _, tt := range []struct {
		key, path string
		status    int
		code, msg string
	}{
		{"", "/v1/video-projects/x", 401, "unauthorized", "Unauthorized"},
		{"k", "/v1/video-projects/x", 404, "not_found", "Not Found"},
		{"k", "/v1/nope", 404, "not_found", "Not Found"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
		if tt.key != "" {
			req.Header.Set("Authorization", "Bearer "+tt.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != tt.status || m["code"] != tt.code || m["message"] != tt.msg {
			t.Errorf("%s: %d %v, want %d %s %q", tt.path, resp.StatusCode, m, tt.status, tt.code, tt.msg)
		}
	}
}
