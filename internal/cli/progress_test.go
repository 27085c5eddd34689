package cli

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/hourglasshq/hourglass/magichour"
)

// TestDisplayTTYRace drives the live display as Generate does, with
// callbacks from several goroutines, under the race detector.
func TestDisplayTTYRace(t *testing.T) {
	var buf syncBuffer
	d := &display{w: &buf, mode: modeTTY, kind: magichour.KindVideo, expected: time.Second, dlBars: map[int]*mpb.Bar{}}
	d.p = mpb.New(mpb.WithOutput(&buf), mpb.WithWidth(20), mpb.WithRefreshRate(5*time.Millisecond), mpb.ForceAutoRefresh())
	pr := d.progress()
	pr.Phase(magichour.PhaseUpload)
	pr.Uploading([]string{"a.png"})
	for i := int64(0); i <= 100; i += 10 {
		pr.UploadBytes(i, 100)
	}
	pr.Uploaded(map[string]string{"a.png": "api-assets/x/a.png"})
	pr.Created(&magichour.CreateResponse{ID: "p1", Kind: magichour.KindVideo, CreditsCharged: 3})
	pr.Phase(magichour.PhaseWait)
	for _, s := range []magichour.Status{magichour.StatusQueued, magichour.StatusRendering} {
		pr.Status(&magichour.Project{ID: "p1", Status: s})
		time.Sleep(15 * time.Millisecond)
	}
	pr.Status(&magichour.Project{ID: "p1", Status: magichour.StatusComplete})
	pr.Phase(magichour.PhaseDownload)
	pr.Downloading(&magichour.Project{Downloads: make([]magichour.Download, 2)})
	var wg sync.WaitGroup
	for f := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); i <= 1000; i += 100 {
				pr.DownloadBytes(f, i, 1000)
			}
		}()
	}
	wg.Wait()
	d.close()
	d.close() // idempotent
	out := buf.String()
	for _, want := range []string{"created video project p1", "✓ complete in", "upload", "output 0", "output 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("display output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlainDisplay(t *testing.T) {
	var buf syncBuffer
	d := &display{w: &buf, mode: modePlain, expected: 51 * time.Second, dlBars: map[int]*mpb.Bar{}}
	pr := d.progress()
	pr.Phase(magichour.PhaseWait)
	pr.Status(&magichour.Project{Status: magichour.StatusQueued})
	pr.Status(&magichour.Project{Status: magichour.StatusError})
	d.close()
	out := buf.String()
	if !strings.Contains(out, "status: queued (elapsed") || !strings.Contains(out, "expected ~51s") || !strings.Contains(out, "status: error after") {
		t.Fatalf("plain output:\n%s", out)
	}
	if strings.Contains(out, "\x1b") {
		t.Fatalf("escape codes in plain output: %q", out)
	}
}
