package emulator_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
)

// BenchmarkGetProject measures loopback GETs of one project.
func BenchmarkGetProject(b *testing.B) {
	c := newClient(b, emulator.WithSpeed(5000))
	id := c.mustCreate("text-to-video", map[string]any{"end_seconds": 1, "style": map[string]any{"prompt": "x"}})
	url := c.s.URL + "/v1/video-projects/" + id
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+c.key)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func TestAdminStatsBalanceReset(t *testing.T) {
	c := newClient(t, emulator.WithSpeed(5000), emulator.WithCredits(500))
	id := c.mustCreate("text-to-video", map[string]any{"end_seconds": 1, "style": map[string]any{"prompt": "x"}})
	c.do("GET", "/v1/video-projects/"+id, nil)
	c.do("GET", "/v1/video-projects/"+id, nil)
	_, m, _ := c.do("GET", "/_emulator/stats", nil)
	if num(m["creates"]) != 1 || num(m["creates_by_tool"].(map[string]any)["text-to-video"]) != 1 ||
		num(m["polls"].(map[string]any)[id]) != 2 || num(m["requests"].(map[string]any)["GET /v1/video-projects/{id} 200"]) != 2 {
		t.Errorf("stats %v", m)
	}
	if code, m, _ := c.do("PUT", "/_emulator/balance", `{"balance": 77}`); code != 200 || num(m["balance"]) != 77 {
		t.Errorf("PUT balance: %d %v", code, m)
	}
	if _, m, _ := c.do("GET", "/_emulator/balance", nil); num(m["balance"]) != 77 {
		t.Errorf("GET balance %v", m)
	}
	if code, _, _ := c.do("POST", "/_emulator/reset", nil); code != 204 {
		t.Errorf("reset: %d", code)
	}
	if c.s.Emulator.Balance() != 500 || c.s.Emulator.Stats().Creates != 0 {
		t.Error("reset did not restore state")
	}
	if code, _, _ := c.do("GET", "/v1/video-projects/"+id, nil); code != 404 {
		t.Errorf("project survived reset: %d", code)
	}
}

func TestCloseIdempotent(t *testing.T) {
	e, err := emulator.New(emulator.WithWebhookURL("http://127.0.0.1:1/unreachable"), emulator.WithWebhookRetry(100, time.Hour), emulator.WithSpeed(1e6))
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: e}
	_ = s
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
