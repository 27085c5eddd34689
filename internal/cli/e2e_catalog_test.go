package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// extraToolSpec writes the newest spec with one more tool, a copy of
// ai-gif-generator at /v1/ai-sticker-generator whose output_format also
// takes "apng", as a later spec could add.
func extraToolSpec(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "magichour", "openapi-latest.json"))
	if err != nil {
		t.Skipf("no shared spec: %v", err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	paths := spec["paths"].(map[string]any)
	raw, _ := json.Marshal(paths["/v1/ai-gif-generator"])
	var item map[string]any
	_ = json.Unmarshal(raw, &item)
	post := item["post"].(map[string]any)
	post["operationId"] = "aiStickerGenerator.createImage"
	post["summary"] = "AI Sticker Generator"
	schema := post["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	of := schema["properties"].(map[string]any)["output_format"].(map[string]any)
	of["enum"] = append(of["enum"].([]any), "apng")
	paths["/v1/ai-sticker-generator"] = item
	out, _ := json.Marshal(spec)
	p := filepath.Join(dir, "newer-spec.json")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeMagicHour answers creates of any tool, image-project reads (complete
// with one PNG output), the account and saved items, and records the
// create bodies. It stands in for an API that already has the new tool.
type fakeMagicHour struct {
	*httptest.Server
	mu      sync.Mutex
	creates map[string][]string
}

func newFakeMagicHour(t *testing.T) *fakeMagicHour {
	f := &fakeMagicHour{creates: map[string][]string{}}
	png := []byte("\x89PNG\r\n\x1a\nfake")
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/account":
			_, _ = io.WriteString(w, `{"id":"acc_1","email":"dev@example.com","tier":"business","credits":12345,"subscription":null}`)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/saved-items":
			if r.URL.Query().Get("cursor") == "" {
				_, _ = fmt.Fprintf(w, `{"items":[{"id":"si_1","type":"%s","name":"Morgan","assets":[{"file_path":"saved-items/si_1/voice.mp3","media_kind":"audio","is_primary":true,"url":"","url_expires_at":""}]}],"next_cursor":"c2"}`, r.URL.Query().Get("type"))
				return
			}
			_, _ = io.WriteString(w, `{"items":[{"id":"si_2","type":"voice","name":"Ada","assets":[{"file_path":"saved-items/si_2/voice.mp3","media_kind":"audio","is_primary":true,"url":"","url_expires_at":""}]}],"next_cursor":null}`)
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/"):
			b, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			f.creates[r.URL.Path] = append(f.creates[r.URL.Path], string(b))
			f.mu.Unlock()
			_, _ = io.WriteString(w, `{"id":"cm_sticker1","credits_charged":7,"frame_cost":7}`)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/image-projects/cm_sticker1":
			_, _ = fmt.Fprintf(w, `{"id":"cm_sticker1","name":"s","status":"complete","type":"AI_STICKER","created_at":"2026-12-08T00:00:00Z","image_count":1,"enabled":true,"credits_charged":7,"total_frame_cost":7,"error":null,"downloads":[{"url":"%s/out/cm_sticker1-0.png","expires_at":"2099-01-01T00:00:00Z"}]}`, "http://"+r.Host)
		case r.Method == http.MethodGet && r.URL.Path == "/out/cm_sticker1-0.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(png)
		default:
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMagicHour) bodies(path string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.creates[path]...)
}

// TestE2ESpecExtraTool: a tool that only a newer spec has works from the
// CLI with --spec, with no rebuild: its command, flags, checks (the new
// enum value accepted), the create, the wait and the download.
func TestE2ESpecExtraTool(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := extraToolSpec(t, dir)
	fake := newFakeMagicHour(t)
	if r := hourglass(t, runOpts{dir: dir}, "image", "sticker"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "sticker"`) {
		t.Fatalf("the built-in catalog should not know the tool: exit %d %s", r.code, r.stderr)
	}
	h := hourglass(t, runOpts{dir: dir}, "image", "sticker", "--help", "--spec", spec)
	if h.code != 0 || !strings.Contains(h.stdout, "ai-sticker-generator") || !strings.Contains(h.stdout, "apng") {
		t.Fatalf("help with --spec: exit %d\n%s%s", h.code, h.stdout, h.stderr)
	}
	r := hourglass(t, runOpts{dir: dir}, "image", "sticker", "--spec", spec, "--prompt", "a cat", "--output-format", "apng", "-o", "out", "--json", "--base-url", fake.URL, "--api-key", "k")
	res := parseResult(t, r)
	if r.code != 0 || res.Status != "complete" || res.Tool != "ai-sticker-generator" {
		t.Fatalf("exit %d %+v\n%s", r.code, res, r.stderr)
	}
	checkOutputs(t, dir, res)
	if b := fake.bodies("/v1/ai-sticker-generator"); len(b) != 1 || !strings.Contains(b[0], `"apng"`) {
		t.Fatalf("create bodies: %v", b)
	}
	// $HOURGLASS_SPEC does the same; a spec that does not load is refused.
	r = hourglass(t, runOpts{dir: dir, env: []string{"HOURGLASS_SPEC=" + spec}}, "image", "sticker", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "ai-sticker-generator") {
		t.Fatalf("HOURGLASS_SPEC: exit %d %s", r.code, r.stderr)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"swagger":"2.0"}`), 0o644)
	for _, ref := range []string{bad, filepath.Join(dir, "missing.json")} {
		r := hourglass(t, runOpts{dir: dir}, "image", "generate", "--spec", ref, "--prompt", "x", "--image-count", "1", "--emulator")
		if r.code != 2 || !strings.Contains(r.stderr, "--spec "+ref) {
			t.Errorf("--spec %s: exit %d %s", ref, r.code, r.stderr)
		}
	}
	if r := hourglass(t, runOpts{dir: dir}, "image", "generate", "--spec", bad, "--json"); r.code != 2 || !strings.Contains(r.stdout, "not OpenAPI 3") {
		t.Errorf("bad spec with --json: %d %s", r.code, r.stdout)
	}
}

func TestE2ECatalogUpdateAndShow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := extraToolSpec(t, dir)
	env := []string{"XDG_CONFIG_HOME=" + t.TempDir()}
	show := hourglass(t, runOpts{env: env}, "catalog", "show")
	if show.code != 0 || !strings.Contains(show.stdout, "catalog: ") || !strings.Contains(show.stdout, "ai-video-translator") || !strings.Contains(show.stdout, "hourglass video translate") {
		t.Fatalf("catalog show: %d\n%s", show.code, show.stdout)
	}
	up := hourglass(t, runOpts{env: env}, "catalog", "update", "--from", spec)
	if up.code != 0 || !strings.Contains(up.stdout, "new tools: ai-sticker-generator") {
		t.Fatalf("update: %d %s %s", up.code, up.stdout, up.stderr)
	}
	if r := hourglass(t, runOpts{env: env}, "image", "sticker", "--help"); r.code != 0 || !strings.Contains(r.stdout, "ai-sticker-generator") {
		t.Fatalf("the cached catalog is not used: %d %s", r.code, r.stderr)
	}
	show = hourglass(t, runOpts{env: env}, "catalog", "show", "--json")
	var v struct {
		Source     string `json:"source"`
		Operations []struct{ Name string }
	}
	if json.Unmarshal([]byte(show.stdout), &v) != nil || v.Source != spec || !strings.Contains(show.stdout, "ai-sticker-generator") {
		t.Fatalf("show after update: %s", show.stdout)
	}
	// A refused spec changes nothing.
	bad := filepath.Join(dir, "broken.json")
	_ = os.WriteFile(bad, []byte(`{"openapi":"3.0.0","info":{"title":"x","version":"1"},"paths":{}}`), 0o644)
	if r := hourglass(t, runOpts{env: env}, "catalog", "update", "--from", bad); r.code != 2 || !strings.Contains(r.stderr, "unchanged") {
		t.Fatalf("bad update: %d %s", r.code, r.stderr)
	}
	if r := hourglass(t, runOpts{env: env}, "image", "sticker", "--help"); r.code != 0 || !strings.Contains(r.stdout, "ai-sticker-generator") {
		t.Fatal("the last good catalog was lost")
	}
	if r := hourglass(t, runOpts{env: env}, "catalog", "update", "--from", "http://127.0.0.1:1/openapi.json"); r.code != 3 || !strings.Contains(r.stderr, "unchanged") {
		t.Fatalf("unreachable update: %d %s", r.code, r.stderr)
	}
}

func TestE2ENoValidateAndWarnings(t *testing.T) {
	t.Parallel()
	fake := newFakeMagicHour(t)
	api := []string{"--base-url", fake.URL, "--api-key", "k", "--no-wait"}
	base := []string{"image", "gif", "--prompt", "a cat"}
	r := hourglass(t, runOpts{dir: t.TempDir()}, args(base, []string{"--output-format", "apng"}, api)...)
	if r.code != 2 || !strings.Contains(r.stderr, "catalog of ") || !strings.Contains(r.stderr, "--no-validate") || !strings.Contains(r.stderr, "hourglass catalog update") {
		t.Fatalf("out-of-catalog value: exit %d %s", r.code, r.stderr)
	}
	if len(fake.bodies("/v1/ai-gif-generator")) != 0 {
		t.Fatal("a refused request was sent")
	}
	r = hourglass(t, runOpts{dir: t.TempDir()}, args(base, []string{"--output-format", "apng", "--no-validate"}, api)...)
	if r.code != 0 || len(fake.bodies("/v1/ai-gif-generator")) != 1 {
		t.Fatalf("--no-validate: exit %d %s", r.code, r.stderr)
	}
	r = hourglass(t, runOpts{dir: t.TempDir()}, args(base, []string{"--param", "style.sparkle=true"}, api)...)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: style.sparkle") {
		t.Fatalf("unknown field: exit %d %s", r.code, r.stderr)
	}
	if b := fake.bodies("/v1/ai-gif-generator"); len(b) != 2 || !strings.Contains(b[1], `"sparkle":true`) {
		t.Fatalf("the unknown field was not passed through: %v", b)
	}
}

func TestE2EAccountAndSavedItems(t *testing.T) {
	t.Parallel()
	fake := newFakeMagicHour(t)
	api := []string{"--base-url", fake.URL, "--api-key", "k"}
	r := hourglass(t, runOpts{}, args([]string{"account"}, api)...)
	if r.code != 0 || !strings.Contains(r.stdout, "tier:    business") || !strings.Contains(r.stdout, "credits: 12345") {
		t.Fatalf("account: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = hourglass(t, runOpts{}, args([]string{"saved-items", "list", "--type", "voice"}, api)...)
	if r.code != 0 || !strings.Contains(r.stdout, "saved-items/si_1/voice.mp3") || !strings.Contains(r.stdout, "saved-items/si_2/voice.mp3") {
		t.Fatalf("saved-items (both pages): %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = hourglass(t, runOpts{}, args([]string{"saved-items", "list", "--json"}, api)...)
	var v struct{ Items []struct{ ID string } }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || len(v.Items) != 2 {
		t.Fatalf("saved-items --json: %s", r.stdout)
	}
	if r := hourglass(t, runOpts{}, args([]string{"saved-items", "list", "--type", "voices"}, api)...); r.code != 2 {
		t.Fatalf("bad --type: %d", r.code)
	}
}

// TestE2ESpecExtraToolAgainstEmulator: the same newer spec loaded by
// `hourglass emulate --spec` and by the CLI with --spec: the extra tool
// runs end to end (create, wait, download) with no rebuild; account and
// saved items come from the emulator.
func TestE2ESpecExtraToolAgainstEmulator(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := extraToolSpec(t, dir)
	items := filepath.Join(dir, "items.json")
	if err := os.WriteFile(items, []byte(`[{"id":"si_voice1","type":"voice","name":"Narrator","assets":[{"file_path":"saved-items/si_voice1/voice.mp3","media_kind":"audio","is_primary":true}]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errb := startProcess(t, nil, "emulate", "--spec", spec, "--addr", "127.0.0.1:0", "--speed", "100", "--saved-items", items, "--tier", "pro", "--credits", "5000")
	waitFor(t, "the emulator", 20*time.Second, func() bool { return strings.Contains(out.String(), "listening on http") })
	m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no URL: %s %s", out.String(), errb.String())
	}
	api := []string{"--base-url", m[1], "--api-key", "mhk_test_emulator"}
	r := hourglass(t, runOpts{dir: dir}, args([]string{"image", "sticker", "--spec", spec, "--prompt", "a cat", "--output-format", "apng", "-o", "stickers", "--json"}, api)...)
	res := parseResult(t, r)
	if r.code != 0 || res.Status != "complete" || res.Tool != "ai-sticker-generator" {
		t.Fatalf("extra tool against the emulator: exit %d %+v\n%s", r.code, res, r.stderr)
	}
	checkOutputs(t, dir, res)
	r = hourglass(t, runOpts{dir: dir}, args([]string{"account"}, api)...)
	if r.code != 0 || !strings.Contains(r.stdout, "tier:    pro") {
		t.Fatalf("account: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = hourglass(t, runOpts{dir: dir}, args([]string{"saved-items", "list", "--type", "voice"}, api)...)
	if r.code != 0 || !strings.Contains(r.stdout, "saved-items/si_voice1/voice.mp3") {
		t.Fatalf("saved-items: %d %s %s", r.code, r.stdout, r.stderr)
	}
}
