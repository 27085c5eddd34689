package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serveClient is a tenant's view of a started `hourglass serve`.
type serveClient struct {
	t         *testing.T
	base, key string
}

func tenantKeyOf(banner string) string {
	for _, line := range strings.Split(banner, "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "tenant key: "); ok {
			return k
		}
	}
	return ""
}

func (c serveClient) do(method, path, body string, v any) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	if v != nil {
		_ = json.Unmarshal(raw, v)
	}
	return resp.StatusCode, string(raw)
}

// Issue 11 item 14: with the embedded emulator, a loopback callback_url is
// accepted without --allow-private-callbacks.
func TestServeEmbeddedAllowsLoopbackCallbacks(t *testing.T) {
	t.Setenv("MAGIC_HOUR_API_KEY", "")
	t.Setenv("HOURGLASS_WEBHOOK_SECRET", "")
	t.Setenv("MAGIC_HOUR_WEBHOOK_SECRET", "")
	t.Setenv("HOURGLASS_ALLOW_PRIVATE_CALLBACKS", "")
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer recv.Close()
	base, out, stop := startServe(t, t.TempDir())
	defer stop()
	c := serveClient{t, base, tenantKeyOf(out.String())}
	code, raw := c.do("POST", "/api/jobs", `{"tool":"ai-image-generator","params":{"style":{"prompt":"a cat"},"image_count":1},"callback_url":"`+recv.URL+`/cb"}`, nil)
	if code != http.StatusAccepted {
		t.Fatalf("loopback callback with the embedded emulator: %d %s, want 202", code, raw)
	}
}
