package magichour

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hourglasshq/hourglass/emulator"
)

// finishedImage creates an image job and waits for it.
func finishedImage(t *testing.T, c *Client, count int) *Project {
	t.Helper()
	cr := createImage(t, c, "x", count)
	p, err := c.Wait(context.Background(), cr.Kind, cr.ID, WithTool(ToolAIImageGenerator), WithTimeScale(flowSpeed))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestDownloadParallelOutputs(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	p := finishedImage(t, c, 4)
	dir := t.TempDir()
	var mu sync.Mutex
	last := map[int]int64{}
	files, err := c.Download(context.Background(), p, dir, WithDownloadProgress(func(file int, done, total int64) {
		mu.Lock()
		last[file] = done
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("%d files, want 4", len(files))
	}
	for i, f := range files {
		want := filepath.Join(dir, fmt.Sprintf("%s-%d.png", p.ID, i))
		st, err := os.Stat(f.Path)
		if f.Index != i || f.Path != want || err != nil || st.Size() != f.Size || f.Size == 0 || last[i] != f.Size {
			t.Errorf("file %d = %+v (stat %v, progress %d), want %s", i, f, err, last[i], want)
		}
		b, _ := os.ReadFile(f.Path)
		if !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", f.Path)
		}
	}
	if names := dirNames(t, dir); len(names) != 4 {
		t.Errorf("folder holds %v, want exactly the 4 outputs", names)
	}
}

func TestDownloadNeverOverwrites(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	p := finishedImage(t, c, 1)
	dir := t.TempDir()
	taken := filepath.Join(dir, p.ID+"-0.png")
	if err := os.WriteFile(taken, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A different file holds the name: the output goes to " (2)"; the
	// same download again finds its identical copy there and writes
	// nothing.
	for i, want := range []string{p.ID + "-0 (2).png", p.ID + "-0 (2).png"} {
		files, err := c.Download(context.Background(), p, dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := filepath.Base(files[0].Path); got != want || files[0].Unchanged != (i == 1) {
			t.Errorf("download %d saved as %q (unchanged %v), want %q", i, got, files[0].Unchanged, want)
		}
	}
	if b, _ := os.ReadFile(taken); string(b) != "mine" {
		t.Fatal("existing file overwritten")
	}
	// Concurrent downloads into one folder never land on the same name
	// with different bytes: each saves its own name or finds the copy.
	other := finishedImage(t, c, 1)
	var wg sync.WaitGroup
	paths := make([]string, 6)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			files, err := c.Download(context.Background(), other, dir)
			if err != nil {
				t.Error(err)
				return
			}
			paths[i] = files[0].Path
		}()
	}
	wg.Wait()
	for _, p := range paths {
		if b, err := os.ReadFile(p); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s: %v", p, err)
		}
	}
	if n := len(dirNames(t, dir)); n < 3 || n > 8 {
		t.Errorf("%d files in folder, want 3 to 8", n)
	}
	for _, n := range dirNames(t, dir) {
		if strings.HasSuffix(n, ".part") {
			t.Errorf("temp file left: %s", n)
		}
	}
}

func TestDownloadIntoNewFolderAndOverwrite(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	p := finishedImage(t, c, 1)
	dir := filepath.Join(t.TempDir(), "out", "deeper")
	files, err := c.Download(context.Background(), p, dir)
	if err != nil {
		t.Fatalf("download into a missing folder: %v", err)
	}
	if err := os.WriteFile(files[0].Path, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := c.Download(context.Background(), p, dir, WithOverwrite())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(files[0].Path)
	if again[0].Path != files[0].Path || !bytes.HasPrefix(b, []byte("\x89PNG")) || len(dirNames(t, dir)) != 1 {
		t.Fatalf("overwrite: %+v, %d files", again[0], len(dirNames(t, dir)))
	}
	// Generate's WithOutputDir creates the folder too.
	res, err := c.Generate(context.Background(), ToolAIImageGenerator, AIImageGeneratorCreateParams{ImageCount: 1, Style: AIImageGeneratorCreateParamsStyle{Prompt: "x"}},
		WithOutputDir(filepath.Join(t.TempDir(), "fresh")), WithWaitOptions(WithTimeScale(flowSpeed)))
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("Generate into a new folder: %v", err)
	}
}

func TestDownloadResumesTruncated(t *testing.T) {
	t.Parallel()
	const size = 3<<20 + 17
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed), emulator.WithOutputSize(size))
	c := flowClient(t, srv)
	p := finishedImage(t, c, 1)
	clean := t.TempDir()
	ref, err := c.Download(context.Background(), p, clean)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Emulator.SetFaults(emulator.Faults{TruncateDownload: 1}); err != nil {
		t.Fatal(err)
	}
	var progressed atomic.Int64
	dir := t.TempDir()
	files, err := c.Download(context.Background(), p, dir, WithDownloadProgress(func(_ int, done, _ int64) {
		if done < progressed.Load() {
			t.Error("progress went back: the download restarted instead of resuming")
		}
		progressed.Store(done)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Size != size {
		t.Fatalf("size %d, want %d", files[0].Size, size)
	}
	a, _ := os.ReadFile(ref[0].Path)
	b, _ := os.ReadFile(files[0].Path)
	if !bytes.Equal(a, b) {
		t.Fatal("resumed file differs from a clean download")
	}
	st := srv.Emulator.Stats()
	// The clean download is the only 200: the faulty one was cut (each
	// request is cut after size/2 bytes) and resumed with 206s, never
	// restarted from zero.
	if st.Requests["GET /_emulator/download/{token}/{name} dropped"] < 1 || st.Requests["GET /_emulator/download/{token}/{name} 206"] < 1 ||
		st.Requests["GET /_emulator/download/{token}/{name} 200"] != 1 {
		t.Errorf("requests %v, want cut transfers resumed with 206", st.Requests)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("folder holds %v", names)
	}
}

func TestDownloadRefreshesExpiredURL(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed), emulator.WithFaults(emulator.Faults{ExpireURLs: 1}))
	c := flowClient(t, srv)
	p := finishedImage(t, c, 2)
	if err := srv.Emulator.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	before := srv.Emulator.Stats().Polls[p.ID]
	files, err := c.Download(context.Background(), p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	if polls := srv.Emulator.Stats().Polls[p.ID] - before; polls != 1 {
		t.Errorf("%d project refreshes, want 1 shared by both outputs", polls)
	}
	// URLs that stay expired give up with a clear error.
	if err := srv.Emulator.SetFaults(emulator.Faults{ExpireURLs: 1}); err != nil {
		t.Fatal(err)
	}
	p2 := finishedImage(t, c, 1)
	dir := t.TempDir()
	_, err = c.Download(context.Background(), p2, dir)
	var de *DownloadError
	if !errors.As(err, &de) || len(de.Failed) != 1 || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("left behind %v", names)
	}
}

// fakeOutputs serves outputs with custom misbehaviour and returns a
// complete project pointing at them.
func fakeOutputs(t *testing.T, h http.HandlerFunc, n int) (*Client, *Project) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c, err := NewClient(WithAPIKey("k"), WithBaseURL(ts.URL), WithRetry(RetryPolicy{MaxAttempts: 2, BaseDelay: 1, MaxDelay: 1}))
	if err != nil {
		t.Fatal(err)
	}
	p := &Project{ID: "proj1", Kind: KindImage, Status: StatusComplete}
	for i := range n {
		p.Downloads = append(p.Downloads, Download{URL: fmt.Sprintf("%s/out/%d/file.png?sig=secret", ts.URL, i)})
	}
	return c, p
}

// cut sends the headers with Content-Length: full and only body, then
// drops the connection.
func cut(w http.ResponseWriter, full int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(full))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestDownloadContentLengthMismatch(t *testing.T) {
	t.Parallel()
	c, p := fakeOutputs(t, func(w http.ResponseWriter, r *http.Request) {
		cut(w, 100, bytes.Repeat([]byte("x"), 50)) // always short, ignores Range
	}, 1)
	dir := t.TempDir()
	files, err := c.Download(context.Background(), p, dir, WithDownloadResumes(2))
	var de *DownloadError
	if !errors.As(err, &de) || len(files) != 0 || len(de.Failed) != 1 {
		t.Fatalf("Download = %v, %v", files, err)
	}
	if !strings.Contains(err.Error(), "byte 50 of 100") || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q should give the byte count and hide the signed query", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("left behind %v", names)
	}
}

func TestDownloadRangeIgnoredRestarts(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 10000)
	var calls atomic.Int32
	c, p := fakeOutputs(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			cut(w, len(data), data[:4000])
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(data) // 200, Range ignored
	}, 1)
	files, err := c.Download(context.Background(), p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(files[0].Path)
	if !bytes.Equal(b, data) {
		t.Fatalf("got %d bytes, want the %d of a clean restart", len(b), len(data))
	}
}

func TestDownloadPartialFailure(t *testing.T) {
	t.Parallel()
	c, p := fakeOutputs(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/out/1/") {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		w.Write([]byte("ok"))
	}, 3)
	dir := t.TempDir()
	files, err := c.Download(context.Background(), p, dir)
	var de *DownloadError
	if !errors.As(err, &de) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if len(files) != 2 || files[0].Index != 0 || files[1].Index != 2 || de.Failed[0].Index != 1 {
		t.Fatalf("landed %v, failed %v", files, de.Failed)
	}
	if !strings.Contains(err.Error(), "1 of 3 outputs failed") || !strings.Contains(err.Error(), "proj1-0.png") {
		t.Errorf("error %q should say what failed and what was saved", err)
	}
	if names := dirNames(t, dir); len(names) != 2 {
		t.Errorf("folder holds %v", names)
	}
}

func TestDownloadRefusesUnfinished(t *testing.T) {
	c, _ := NewClient(WithAPIKey("k"))
	for _, p := range []*Project{
		{ID: "a", Status: StatusRendering},
		{ID: "b", Status: StatusError, Error: &ProjectError{Code: "no_source_face"}},
		{ID: "c", Status: StatusComplete},
	} {
		if _, err := c.Download(context.Background(), p, t.TempDir()); err == nil {
			t.Errorf("project %s: no error", p.ID)
		}
	}
	if _, err := c.Download(context.Background(), &Project{ID: "d", Status: StatusComplete, Downloads: []Download{{URL: "http://x/y.png"}}}, "/nonexistent/dir"); err == nil {
		t.Error("missing folder: no error")
	}
}

func TestExtFor(t *testing.T) {
	for _, tc := range []struct{ url, ctype, want string }{
		{"https://x/a/output.MP4?sig=1", "", "mp4"},
		{"https://x/a/output", "image/png", "png"},
		{"https://x/a/output", "audio/mpeg", "mp3"},
		{"https://x/a/output.weird-ext", "", "bin"},
		{"https://x/a/", "application/x-unknown-thing", "bin"},
	} {
		if got := extFor(tc.url, tc.ctype); got != tc.want {
			t.Errorf("extFor(%q, %q) = %q, want %q", tc.url, tc.ctype, got, tc.want)
		}
	}
}

func TestDownloadFileMode(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	p := finishedImage(t, c, 1)
	files, err := c.Download(context.Background(), p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("downloaded file mode = %v, want 0644 like curl -o", st.Mode().Perm())
	}
}
