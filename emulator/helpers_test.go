package emulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

// client is a tiny test client for the emulator.
type client struct {
	t   testing.TB
	s   *emulator.Server
	key string
}

func newClient(t testing.TB, opts ...emulator.Option) *client {
	t.Helper()
	s := emulator.NewServer(t, opts...)
	return &client{t: t, s: s, key: s.APIKey}
}

// do sends a request and decodes a JSON answer (nil for empty bodies).
func (c *client) do(method, path string, body any) (int, map[string]any, http.Header) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = c.s.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if len(raw) == 0 {
		return resp.StatusCode, nil, resp.Header
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		c.t.Fatalf("%s %s: status %d, body not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m, resp.Header
}

func (c *client) mustCreate(tool string, body any) string {
	c.t.Helper()
	op := catalog.Lookup(tool)
	code, m, _ := c.do("POST", op.Path, body)
	if code != 200 {
		c.t.Fatalf("create %s: %d %v", tool, code, m)
	}
	return m["id"].(string)
}

// wait polls a project until it is terminal.
func (c *client) wait(kind catalog.Kind, id string) map[string]any {
	c.t.Helper()
	op := catalog.Project(kind, catalog.RoleGet)
	path := strings.Replace(op.Path, "{id}", id, 1)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		code, m, _ := c.do("GET", path, nil)
		if code != 200 {
			c.t.Fatalf("GET %s: %d %v", path, code, m)
		}
		if st, _ := m["status"].(string); catalog.Terminal(st) {
			return m
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.t.Fatalf("project %s did not finish", id)
	return nil
}

func (c *client) upload(typ, ext string, data []byte) string {
	c.t.Helper()
	code, m, _ := c.do("POST", "/v1/files/upload-urls", map[string]any{"items": []any{map[string]any{"type": typ, "extension": ext}}})
	if code != 200 {
		c.t.Fatalf("upload-urls: %d %v", code, m)
	}
	item := m["items"].([]any)[0].(map[string]any)
	req, _ := http.NewRequest("PUT", item["upload_url"].(string), bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		c.t.Fatalf("PUT upload: %d", resp.StatusCode)
	}
	return item["file_path"].(string)
}

func num(v any) float64 {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case float64:
		return x
	}
	return math.NaN()
}

// sampleBody builds a valid request for op from its schema: every required
// member from its example (or a made-up value), input files as URLs, and the
// members cross-field rules need.
func sampleBody(op *catalog.Operation) map[string]any {
	body := sampleObject(op.Request, true).(map[string]any)
	if as := op.Request.Prop("assets"); as != nil {
		assets, _ := body["assets"].(map[string]any)
		if as.Prop("video_source") != nil {
			assets["video_source"] = "file"
			assets["video_file_path"] = "https://cdn.example.com/in.mp4"
		}
		if as.Prop("audio_source") != nil {
			assets["audio_source"] = "none"
		}
		if as.Prop("face_swap_mode") != nil {
			f := "image_file_path"
			if as.Prop("source_file_path") != nil {
				f = "source_file_path"
			}
			assets[f] = "https://cdn.example.com/face.png"
		}
	}
	if op.Request.Prop("start_seconds") != nil {
		body["start_seconds"] = 0
	}
	if op.Request.Prop("end_seconds") != nil {
		body["end_seconds"] = 3
	}
	if op.Name == "animation" {
		body["width"], body["height"] = 320, 240
	}
	return body
}

func sampleObject(s *catalog.Schema, onlyRequired bool) any {
	switch s.Type {
	case catalog.TypeObject:
		m := map[string]any{}
		for _, p := range s.Properties {
			if onlyRequired && !s.IsRequired(p.Name) {
				continue
			}
			m[p.Name] = sampleObject(p.Schema, true)
		}
		return m
	case catalog.TypeArray:
		return []any{sampleObject(s.Items, true)}
	}
	if s.File != nil {
		ext := map[string]string{"image": "png", "video": "mp4", "audio": "mp3"}[s.File.Media[0]]
		return "https://cdn.example.com/in." + ext
	}
	if len(s.Enum) > 0 {
		var v any
		if s.Type == catalog.TypeString {
			return s.Enum[0]
		}
		_ = json.Unmarshal([]byte(s.Enum[0]), &v)
		return v
	}
	if s.Example != "" {
		var v any
		if json.Unmarshal([]byte(s.Example), &v) == nil && v != nil {
			return v
		}
	}
	switch s.Type {
	case catalog.TypeString:
		return "sample"
	case catalog.TypeBoolean:
		return false
	}
	if s.Minimum != nil {
		return *s.Minimum
	}
	return 1
}

// checkSchema returns every way v departs from s: types, required members,
// enums, formats. Extra members are allowed.
func checkSchema(s *catalog.Schema, v any, at string) []string {
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, at+": "+fmt.Sprintf(f, a...)) }
	if v == nil {
		if !s.Nullable {
			add("null not allowed")
		}
		return errs
	}
	switch s.Type {
	case catalog.TypeObject:
		m, ok := v.(map[string]any)
		if !ok {
			add("want object, got %T", v)
			return errs
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				add("missing required %q", r)
			}
		}
		for _, p := range s.Properties {
			if x, ok := m[p.Name]; ok {
				errs = append(errs, checkSchema(p.Schema, x, at+"."+p.Name)...)
			}
		}
	case catalog.TypeArray:
		a, ok := v.([]any)
		if !ok {
			add("want array, got %T", v)
			return errs
		}
		for i, x := range a {
			errs = append(errs, checkSchema(s.Items, x, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case catalog.TypeString:
		str, ok := v.(string)
		if !ok {
			add("want string, got %T", v)
			return errs
		}
		if len(s.Enum) > 0 && !contains(s.Enum, str) {
			add("%q not in enum", str)
		}
		if s.Format == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				add("bad date-time %q", str)
			}
		}
		if s.Format == "uri" && !strings.HasPrefix(str, "http") {
			add("bad uri %q", str)
		}
	case catalog.TypeInteger, catalog.TypeNumber:
		f := num(v)
		if math.IsNaN(f) {
			add("want number, got %T", v)
		} else if s.Type == catalog.TypeInteger && f != math.Trunc(f) {
			add("want integer, got %v", f)
		}
	case catalog.TypeBoolean:
		if _, ok := v.(bool); !ok {
			add("want boolean, got %T", v)
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hookSink is a webhook receiver that checks signatures with its own
// implementation of the documented algorithm.
type hookSink struct {
	t      testing.TB
	secret string
	mu     sync.Mutex
	events []hookEvent
	fail   int // answer 500 to this many deliveries first
	ch     chan hookEvent
}

type hookEvent struct {
	Type    string         `json:"type"`
	Payload map[string]any `json:"payload"`
	raw     []byte
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("magic-hour-event-timestamp")
	sig := r.Header.Get("magic-hour-event-signature")
	if want := hmacHex(h.secret, ts+"."+string(raw)); sig != want {
		h.t.Errorf("bad webhook signature %q, want %q", sig, want)
	}
	var sec int64
	fmt.Sscan(ts, &sec)
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		h.t.Errorf("webhook timestamp %s too far off", ts)
	}
	h.mu.Lock()
	if h.fail > 0 {
		h.fail--
		h.mu.Unlock()
		w.WriteHeader(500)
		return
	}
	var ev hookEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		h.t.Errorf("webhook body: %v", err)
	}
	ev.raw = raw
	h.events = append(h.events, ev)
	h.mu.Unlock()
	if h.ch != nil {
		h.ch <- ev
	}
	w.WriteHeader(204)
}

func (h *hookSink) types() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Type)
	}
	sort.Strings(out)
	return out
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func jsonDecode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return dec.Decode(v)
}

func newHookServer(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
