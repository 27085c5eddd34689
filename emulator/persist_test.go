package emulator_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Issue 11 item 10: with WithStateFile the emulator's projects, uploads,
// counters and links survive a restart on the same port.
func TestStateSurvivesRestart(t *testing.T) {
	clk := newFakeClock()
	state := filepath.Join(t.TempDir(), "emu", "state.json")
	opts := []emulator.Option{emulator.WithClock(clk), emulator.WithStateFile(state)}
	c1 := newClient(t, opts...)
	path := c1.upload("video", "mp4", append([]byte("....ftyp badvideo"), make([]byte, 100)...))
	id := c1.mustCreate("text-to-video", map[string]any{"end_seconds": 2, "style": map[string]any{"prompt": "x"}})
	c1.s.Close()

	addr := emulator.SavedAddr(state)
	if addr == "" || "http://"+addr != c1.s.URL {
		t.Fatalf("saved address %q, want the first server's %s", addr, c1.s.URL)
	}
	s2, err := emulator.Listen(context.Background(), addr, opts...)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	t.Cleanup(s2.Close)
	c2 := &client{t: t, s: s2, key: s2.APIKey}
	code, p, _ := c2.do("GET", "/v1/video-projects/"+id, nil)
	if code != http.StatusOK || p["status"] != "queued" {
		t.Fatalf("project after restart: %d %v, want 200 queued", code, p)
	}
	clk.Advance(time.Hour)
	p = c2.wait(catalog.KindVideo, id)
	if p["status"] != "complete" {
		t.Fatalf("project after restart: %v", p["status"])
	}
	dl := p["downloads"].([]any)[0].(map[string]any)["url"].(string)
	if !strings.HasPrefix(dl, s2.URL) {
		t.Fatalf("download URL %s not on %s", dl, s2.URL)
	}
	resp, err := http.Get(dl)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download after restart: %d", resp.StatusCode)
	}
	// The uploaded file survived (its content carries a failure marker).
	id2 := c2.mustCreate("video-to-video", map[string]any{"start_seconds": 0, "end_seconds": 1,
		"style": map[string]any{"art_style": "3D Render"}, "assets": map[string]any{"video_source": "file", "video_file_path": path}})
	if id2 == id {
		t.Fatal("an id was handed out again after the restart")
	}
	clk.Advance(time.Hour)
	if p := c2.wait(catalog.KindVideo, id2); p["error"] == nil || p["error"].(map[string]any)["code"] != "invalid_video_file" {
		t.Fatalf("job on the upload from before the restart: %v", p["error"])
	}
	if n := s2.Emulator.Stats().Creates; n != 2 {
		t.Fatalf("creates = %d, want 2 (one before the restart)", n)
	}
}
