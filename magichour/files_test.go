package magichour

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storage is a fake pre-signed storage endpoint plus a fake upload-urls API.
type storage struct {
	api, store *fake
	mu         sync.Mutex
	files      map[string][]byte // by URL path
	fail       atomic.Int32      // answer this many PUTs with 503 first
}

func newStorage(t *testing.T) *storage {
	s := &storage{files: map[string][]byte{}}
	s.store = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method != http.MethodPut {
			w.WriteHeader(405)
			return
		}
		if s.fail.Add(-1) >= 0 {
			w.WriteHeader(503)
			return
		}
		reqs := s.store.requests()
		s.mu.Lock()
		s.files[r.URL.Path] = reqs[len(reqs)-1].Body
		s.mu.Unlock()
		w.WriteHeader(200)
	})
	s.api = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		var req struct {
			Items []UploadItem `json:"items"`
		}
		reqs := s.api.requests()
		_ = json.Unmarshal(reqs[len(reqs)-1].Body, &req)
		var out []map[string]any
		for i, it := range req.Items {
			name := "/up/" + it.Type + "/" + string(rune('a'+i)) + "." + it.Extension
			out = append(out, map[string]any{
				"upload_url": s.store.URL + name + "?X-Amz-Signature=SIGNEDSECRET",
				"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
				"file_path":  "api-assets/id" + name,
			})
		}
		writeJSON(w, 200, map[string]any{"items": out})
	})
	return s
}

func writeFile(t *testing.T, name string, size int) (string, []byte) {
	t.Helper()
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func TestUploadStreams(t *testing.T) {
	t.Parallel()
	s := newStorage(t)
	c := newTestClient(t, s.api.URL)
	path, data := writeFile(t, "clip.MP4", 3<<20+7)
	var last, calls atomic.Int64
	var total atomic.Int64
	fp, err := c.Files.Upload(context.Background(), path, WithUploadProgress(func(done, tot int64) {
		last.Store(done)
		total.Store(tot)
		calls.Add(1)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if fp != "api-assets/id/up/video/a.mp4" {
		t.Errorf("file path %q", fp)
	}
	api := s.api.requests()
	if len(api) != 1 || api[0].Path != "/v1/files/upload-urls" || api[0].Method != "POST" ||
		string(api[0].Body) != `{"items":[{"type":"video","extension":"mp4"}]}` {
		t.Errorf("upload-urls request %+v %s", api, api[0].Body)
	}
	put := s.store.requests()
	if len(put) != 1 {
		t.Fatalf("%d PUTs", len(put))
	}
	if put[0].Header.Get("Authorization") != "" {
		t.Error("the API key was sent to the pre-signed URL")
	}
	if got := put[0].Header.Get("Content-Length"); got != "3145735" {
		t.Errorf("Content-Length %q (chunked or missing)", got)
	}
	if !bytes.Equal(put[0].Body, data) {
		t.Error("uploaded bytes differ")
	}
	if last.Load() != int64(len(data)) || total.Load() != int64(len(data)) || calls.Load() < 2 {
		t.Errorf("progress ended at %d/%d after %d calls", last.Load(), total.Load(), calls.Load())
	}
}

func TestUploadRetriesPut(t *testing.T) {
	t.Parallel()
	s := newStorage(t)
	s.fail.Store(2)
	c := newTestClient(t, s.api.URL)
	path, data := writeFile(t, "face.png", 1000)
	if _, err := c.Files.Upload(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	put := s.store.requests()
	if len(put) != 3 {
		t.Fatalf("%d PUTs, want 3", len(put))
	}
	if !bytes.Equal(s.files["/up/image/a.png"], data) {
		t.Error("retried upload sent different bytes")
	}

	// Exhausted: an APIError that names the URL without its signature.
	s.fail.Store(100)
	_, err := newTestClient(t, s.api.URL, fastRetry(2)).Files.Upload(context.Background(), path)
	if !errors.Is(err, ErrServer) || strings.Contains(err.Error(), "SIGNEDSECRET") || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v", err)
	}
}

func TestUploadMany(t *testing.T) {
	t.Parallel()
	s := newStorage(t)
	c := newTestClient(t, s.api.URL)
	p1, d1 := writeFile(t, "a.jpg", 100)
	p2, d2 := writeFile(t, "b.wav", 2000)
	p3, d3 := writeFile(t, "c.webm", 0)
	var last atomic.Int64
	fps, err := c.Files.UploadMany(context.Background(), []string{p1, p2, p3}, WithUploadProgress(func(done, total int64) {
		if total != 2100 {
			t.Errorf("total %d", total)
		}
		last.Store(done)
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"api-assets/id/up/image/a.jpg", "api-assets/id/up/audio/b.wav", "api-assets/id/up/video/c.webm"}
	if strings.Join(fps, ",") != strings.Join(want, ",") {
		t.Errorf("paths %v", fps)
	}
	if n := len(s.api.requests()); n != 1 {
		t.Errorf("%d upload-urls calls, want 1", n)
	}
	if n := len(s.store.requests()); n != 3 {
		t.Errorf("%d PUTs", n)
	}
	if !bytes.Equal(s.files["/up/image/a.jpg"], d1) || !bytes.Equal(s.files["/up/audio/b.wav"], d2) || len(s.files["/up/video/c.webm"]) != len(d3) {
		t.Error("contents differ")
	}
	if last.Load() != 2100 {
		t.Errorf("progress ended at %d", last.Load())
	}
}

func TestUploadRejectsBeforeAnyCall(t *testing.T) {
	t.Parallel()
	s := newStorage(t)
	c := newTestClient(t, s.api.URL)
	good, _ := writeFile(t, "ok.png", 10)
	bad, _ := writeFile(t, "doc.pdf", 10)
	noext, _ := writeFile(t, "README", 10)
	ctx := context.Background()

	_, err := c.Files.Upload(ctx, bad)
	if !errors.Is(err, ErrUnsupportedFile) || !strings.Contains(err.Error(), `"pdf"`) || !strings.Contains(err.Error(), "image (png, jpg") {
		t.Errorf("pdf: %v", err)
	}
	if _, err := c.Files.Upload(ctx, noext); !errors.Is(err, ErrUnsupportedFile) {
		t.Errorf("no extension: %v", err)
	}
	_, err = c.Files.UploadMany(ctx, []string{good, filepath.Join(t.TempDir(), "missing.mp4")})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.mp4") {
		t.Errorf("missing: %v", err)
	}
	if _, err := c.Files.Upload(ctx, t.TempDir()+"/dir.png"); err == nil {
		t.Error("missing dir.png accepted")
	}
	dir := filepath.Join(t.TempDir(), "folder.png")
	os.Mkdir(dir, 0o700)
	if _, err := c.Files.Upload(ctx, dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := c.Files.UploadReader(ctx, strings.NewReader("x"), 1, "exe"); !errors.Is(err, ErrUnsupportedFile) {
		t.Errorf("reader: %v", err)
	}
	if n := len(s.api.requests()) + len(s.store.requests()); n != 0 {
		t.Fatalf("%d requests made for rejected files", n)
	}
}

// onceReader is a reader that cannot seek.
type onceReader struct{ r io.Reader }

func (o onceReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestUploadReader(t *testing.T) {
	t.Parallel()
	s := newStorage(t)
	s.fail.Store(1)
	c := newTestClient(t, s.api.URL)
	data := []byte("RIFF....WAVEfmt ")
	r := bytes.NewReader(append([]byte("skip"), data...))
	r.Seek(4, io.SeekStart) // uploads from the current offset
	fp, err := c.Files.UploadReader(context.Background(), r, int64(len(data)), ".WAV")
	if err != nil {
		t.Fatal(err)
	}
	if fp != "api-assets/id/up/audio/a.wav" || !bytes.Equal(s.files["/up/audio/a.wav"], data) {
		t.Errorf("path %q content %q", fp, s.files["/up/audio/a.wav"])
	}
	// A non-seekable reader is sent once.
	s.fail.Store(1)
	_, err = c.Files.UploadReader(context.Background(), onceReader{bytes.NewReader(data)}, int64(len(data)), "wav")
	if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "rewound") {
		t.Errorf("err = %v", err)
	}
}

func TestUploadURLs(t *testing.T) {
	t.Parallel()
	s := newStorage(t)
	c := newTestClient(t, s.api.URL)
	urls, err := c.Files.UploadURLs(context.Background(), UploadItem{Type: "image", Extension: ".PNG"}, UploadItem{Type: "audio", Extension: "mp3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(urls) != 2 || urls[1].FilePath != "api-assets/id/up/audio/b.mp3" || urls[0].ExpiresAt.IsZero() {
		t.Errorf("urls %+v", urls)
	}
	if strings.Contains(urls[0].String(), "SIGNEDSECRET") {
		t.Error("UploadURL.String shows the signature")
	}
	if got := string(s.api.requests()[0].Body); got != `{"items":[{"type":"image","extension":"png"},{"type":"audio","extension":"mp3"}]}` {
		t.Errorf("body %s", got)
	}
	if _, err := c.Files.UploadURLs(context.Background(), UploadItem{Type: "pdf", Extension: "pdf"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("bad type: %v", err)
	}
}
