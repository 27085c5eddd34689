package cli

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1GiB": 1 << 30, "512MB": 512e6, "10K": 10 << 10, "77": 77} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseSize("lots"); err == nil {
		t.Error("bad size accepted")
	}
}

func TestEmulateCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	root := NewRoot()
	var out, errb syncBuffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"emulate", "--addr", "127.0.0.1:0", "--speed", "100", "--fault-rate-limit", "0"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var url string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s := out.String(); strings.Contains(s, "listening on ") {
			url = strings.Fields(strings.SplitN(s, "listening on ", 2)[1])[0]
			break
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("no banner: %q", out.String())
	}
	req, _ := http.NewRequest("GET", url+"/v1/video-projects/x", nil)
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("GET: %v %v", err, resp)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("emulate did not stop")
	}
	if !strings.Contains(errb.String(), "status=404") {
		t.Errorf("request not logged: %q", errb.String())
	}
}
