package emulator_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"image"
	_ "image/gif"
	_ "image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func fetch(t testing.TB, url string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestEveryOperation creates a job with every create operation, checks every
// response against the catalog's response schema plus the deprecated fields,
// downloads the outputs and deletes the project.
func TestEveryOperation(t *testing.T) {
	c := newClient(t, emulator.WithSpeed(5000))
	seen := map[string]bool{}
	for _, op := range catalog.Default().Operations() {
		if op.Role != catalog.RoleCreate {
			continue
		}
		seen[op.Name] = true
		body := sampleBody(op)
		if err := op.Validate(mustRoundTrip(t, body)); err != nil {
			t.Fatalf("%s: sample body invalid: %v", op.Name, err)
		}
		code, m, _ := c.do("POST", op.Path, body)
		if code != 200 {
			t.Fatalf("%s: %d %v", op.Name, code, m)
		}
		if errs := checkSchema(op.Response, m, op.Name); len(errs) > 0 {
			t.Errorf("%s create response: %v", op.Name, errs)
		}
		id := m["id"].(string)
		switch op.Kind {
		case catalog.KindVideo:
			if num(m["estimated_frame_cost"]) != num(m["credits_charged"]) {
				t.Errorf("%s: estimated_frame_cost %v != credits_charged %v", op.Name, m["estimated_frame_cost"], m["credits_charged"])
			}
		case catalog.KindImage:
			if num(m["frame_cost"]) != num(m["credits_charged"]) {
				t.Errorf("%s: frame_cost %v != credits_charged %v", op.Name, m["frame_cost"], m["credits_charged"])
			}
		case catalog.KindFaceDetection:
			get := catalog.Lookup("face-detection.get")
			var fd map[string]any
			for {
				_, fd, _ = c.do("GET", "/v1/face-detection/"+id, nil)
				if fd["status"] == "complete" {
					break
				}
			}
			if errs := checkSchema(get.Response, fd, get.Name); len(errs) > 0 {
				t.Errorf("face detection: %v", errs)
			}
			faces := fd["faces"].([]any)
			if len(faces) != 1 {
				t.Fatalf("faces = %d, want 1", len(faces))
			}
			f := faces[0].(map[string]any)
			if want := "api-assets/" + id + "/0-0.png"; f["path"] != want {
				t.Errorf("face path %v, want %s", f["path"], want)
			}
			checkImage(t, f["url"].(string), "png", 256, 256)
			continue
		}
		p := c.wait(op.Kind, id)
		get := catalog.Project(op.Kind, catalog.RoleGet)
		if errs := checkSchema(get.Response, p, op.Name); len(errs) > 0 {
			t.Errorf("%s GET: %v", op.Name, errs)
		}
		if p["status"] != "complete" {
			t.Fatalf("%s: status %v (%v)", op.Name, p["status"], p["error"])
		}
		if op.Kind != catalog.KindAudio {
			if _, ok := p["total_frame_cost"]; !ok || num(p["total_frame_cost"]) != num(p["credits_charged"]) {
				t.Errorf("%s: total_frame_cost %v", op.Name, p["total_frame_cost"])
			}
		}
		downloads := p["downloads"].([]any)
		if len(downloads) == 0 {
			t.Fatalf("%s: no downloads", op.Name)
		}
		if op.Kind == catalog.KindVideo {
			d, ok := p["download"].(map[string]any)
			if !ok || d["url"] != downloads[0].(map[string]any)["url"] {
				t.Errorf("%s: download = %v", op.Name, p["download"])
			}
		}
		for _, d := range downloads {
			url := d.(map[string]any)["url"].(string)
			resp, b, err := fetch(t, url)
			if err != nil || resp.StatusCode != 200 || len(b) == 0 {
				t.Fatalf("%s: download %s: %v %v", op.Name, url, err, resp)
			}
			if op.Kind == catalog.KindVideo && !bytes.Contains(b[:min(len(b), 64)], []byte("ftyp")) {
				t.Errorf("%s: output is not MP4", op.Name)
			}
		}
		path := strings.Replace(get.Path, "{id}", id, 1)
		if code, _, _ := c.do("DELETE", path, nil); code != 204 {
			t.Errorf("%s: delete = %d", op.Name, code)
		}
		if code, m, _ := c.do("GET", path, nil); code != 404 || m["message"] != "Not Found" {
			t.Errorf("%s: GET after delete = %d %v", op.Name, code, m)
		}
	}
	if len(seen) != 29 {
		t.Errorf("saw %d create operations, want 29", len(seen))
	}
}

func mustRoundTrip(t testing.TB, v any) any {
	t.Helper()
	var buf bytes.Buffer
	if err := jsonEncode(&buf, v); err != nil {
		t.Fatal(err)
	}
	var out any
	if err := jsonDecode(&buf, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkImage(t testing.TB, url, format string, w, h int) {
	t.Helper()
	resp, b, err := fetch(t, url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download %s: %v %v", url, err, resp)
	}
	cfg, f, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	if f != format || (w > 0 && (cfg.Width != w || cfg.Height != h)) {
		t.Errorf("%s: got %s %dx%d, want %s %dx%d", url, f, cfg.Width, cfg.Height, format, w, h)
	}
}
