package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog/catalogtest"
)

// TestEmulateSpecTierSavedItems runs emulate on a spec fetched from a
// (loopback) URL, with a tier and saved items from a file.
func TestEmulateSpecTierSavedItems(t *testing.T) {
	spec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(catalogtest.ExtraSpec()) }))
	defer spec.Close()
	items := filepath.Join(t.TempDir(), "items.json")
	if err := os.WriteFile(items, []byte(`[{"id":"v1","type":"voice","name":"Me","assets":[{"file_path":"saved-items/u/v1/a.mp3","media_kind":"AUDIO","is_primary":true}]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := NewRoot()
	var out, errb syncBuffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"emulate", "--addr", "127.0.0.1:0", "--speed", "1000", "--spec", spec.URL + "/openapi.json", "--tier", "free", "--saved-items", items})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var url string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && url == ""; time.Sleep(10 * time.Millisecond) {
		if s := out.String(); strings.Contains(s, "listening on ") {
			url = strings.Fields(strings.SplitN(s, "listening on ", 2)[1])[0]
		}
	}
	if url == "" {
		t.Fatalf("no banner: %q %q", out.String(), errb.String())
	}
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := call("POST", "/v1/"+catalogtest.ExtraTool, `{"style":{"prompt":"piano"},"assets":{"audio_file_path":"saved-items/u/v1/a.mp3"}}`); code != 200 || m["id"] == nil {
		t.Errorf("extra tool: %d %v", code, m)
	}
	if code, m := call("POST", "/v1/ai-image-generator", `{"model":"`+catalogtest.ExtraModel+`","style":{"prompt":"x"}}`); code != 402 || m["code"] != "plan_upgrade_required" {
		t.Errorf("pro-only model on free: %d %v", code, m)
	}
	if code, m := call("GET", "/v1/account", ""); code != 200 || m["tier"] != "free" {
		t.Errorf("account: %d %v", code, m)
	}
	if code, m := call("GET", "/v1/saved-items?type=voice", ""); code != 200 || len(m["items"].([]any)) != 1 {
		t.Errorf("saved items: %d %v", code, m)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("emulate did not stop")
	}

	root = NewRoot()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"emulate", "--addr", "127.0.0.1:0", "--spec", spec.URL + "/x", "--tier", "gold"})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "tier") {
		t.Errorf("bad tier: %v", err)
	}
}
