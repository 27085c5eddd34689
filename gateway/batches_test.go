package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/internal/batch"
)

type batchView struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"`
	Total   int            `json:"total"`
	Done    int            `json:"done"`
	Counts  map[string]int `json:"counts"`
	Credits int64          `json:"credits"`
	Jobs    []struct {
		Line    int    `json:"line"`
		Key     string `json:"key"`
		JobID   string `json:"job_id"`
		Status  string `json:"status"`
		Credits int64  `json:"credits"`
		Error   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"jobs"`
	Invalid []struct {
		Line  int    `json:"line"`
		Field string `json:"field"`
	} `json:"invalid"`
}

func batchLines(t *testing.T, names ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, n := range names {
		out = append(out, map[string]any{"line": i + 1, "tool": "ai-image-generator", "params": params(t, "ai-image-generator", n), "name": n})
	}
	return out
}

func TestBatchAPI(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		req := map[string]any{"idempotency_key": "shots-1", "name": "shots", "lines": batchLines(t, "a", "b", "c boom")}
		var b batchView
		if code, raw := h.do("POST", "/api/batches", h.tenantKey, req, &b); code != http.StatusCreated {
			t.Fatalf("POST: %d %s", code, raw)
		}
		if b.ID == "" || len(b.Jobs) != 3 || b.Total != 3 || b.Name != "shots" {
			t.Fatalf("batch %+v", b)
		}
		for i, j := range b.Jobs {
			if j.Line != i+1 || j.JobID == "" || j.Key == "" {
				t.Fatalf("job %d: %+v", i, j)
			}
		}
		// The same POST again (a lost answer, a resumed client): same batch, same jobs.
		var again batchView
		if code, raw := h.do("POST", "/api/batches", h.tenantKey, req, &again); code != http.StatusOK {
			t.Fatalf("repeat POST: %d %s", code, raw)
		}
		if again.ID != b.ID || again.Jobs[2].JobID != b.Jobs[2].JobID || again.Total != 3 {
			t.Fatalf("repeat: %+v vs %+v", again, b)
		}
		for _, j := range b.Jobs {
			h.wait(j.JobID)
		}
		var got batchView
		if code, raw := h.do("GET", "/api/batches/"+b.ID, h.tenantKey, nil, &got); code != http.StatusOK {
			t.Fatalf("GET: %d %s", code, raw)
		}
		if got.Counts["stored"] != 2 || got.Counts["error"] != 1 || got.Done != 3 || got.Credits <= 0 || len(got.Jobs) != 3 {
			t.Fatalf("batch view %+v", got)
		}
		if got.Jobs[2].Status != "error" || got.Jobs[2].Error == nil || got.Jobs[2].Error.Code != "unknown_error" || got.Jobs[0].Key != b.Jobs[0].Key {
			t.Fatalf("jobs %+v", got.Jobs)
		}
		// Jobs carry their batch.
		var jv struct {
			BatchID   string `json:"batch_id"`
			BatchLine int    `json:"batch_line"`
		}
		h.do("GET", "/api/jobs/"+b.Jobs[1].JobID, h.tenantKey, nil, &jv)
		if jv.BatchID != b.ID || jv.BatchLine != 2 {
			t.Fatalf("job's batch: %+v", jv)
		}
		// More lines with the same key grow the batch.
		more := map[string]any{"idempotency_key": "shots-1", "lines": batchLines(t, "d")}
		more["lines"].([]map[string]any)[0]["line"] = 4
		if code, raw := h.do("POST", "/api/batches", h.tenantKey, more, &again); code != http.StatusOK || again.Total != 4 {
			t.Fatalf("grow: %d %s", code, raw)
		}
		// Listing, and isolation.
		var list struct {
			Batches []batchView `json:"batches"`
		}
		h.do("GET", "/api/batches", h.tenantKey, nil, &list)
		if len(list.Batches) != 1 || list.Batches[0].ID != b.ID || list.Batches[0].Total != 4 {
			t.Fatalf("list %+v", list)
		}
		other := h.newTenant(map[string]any{"name": "other"})
		if code, _ := h.do("GET", "/api/batches/"+b.ID, other, nil, nil); code != http.StatusNotFound {
			t.Fatalf("other tenant sees the batch: %d", code)
		}
		h.do("GET", "/api/batches", other, nil, &list)
		if len(list.Batches) != 0 {
			t.Fatalf("other tenant lists %d batches", len(list.Batches))
		}
		if code, _ := h.do("GET", "/api/batches/"+b.ID, h.adminKey, nil, nil); code != http.StatusOK {
			t.Fatalf("admin GET: %d", code)
		}
		if code, _ := h.do("POST", "/api/batches", h.adminKey, req, nil); code != http.StatusForbidden {
			t.Fatalf("admin POST: %d", code)
		}
	})
}

func TestBatchAPIInvalidLines(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		lines := batchLines(t, "ok", "ok2", "ok3")
		lines[1]["tool"] = "no-such-tool"
		lines[2]["params"] = map[string]any{"image_count": 99, "style": map[string]any{"prompt": "x"}}
		req := map[string]any{"lines": lines}
		var out struct {
			Error struct {
				Code  string `json:"code"`
				Lines []struct {
					Line    int    `json:"line"`
					Field   string `json:"field"`
					Message string `json:"message"`
				} `json:"lines"`
			} `json:"error"`
		}
		code, raw := h.do("POST", "/api/batches", h.tenantKey, req, &out)
		if code != http.StatusBadRequest || out.Error.Code != "invalid_lines" || len(out.Error.Lines) != 2 {
			t.Fatalf("%d %s", code, raw)
		}
		if l := out.Error.Lines; l[0].Line != 2 || l[0].Field != "tool" || l[1].Line != 3 || l[1].Field != "params.image_count" {
			t.Fatalf("lines %+v", l)
		}
		var jobs struct {
			Jobs []jobView `json:"jobs"`
		}
		h.do("GET", "/api/jobs", h.tenantKey, nil, &jobs)
		var list struct {
			Batches []batchView `json:"batches"`
		}
		h.do("GET", "/api/batches", h.tenantKey, nil, &list)
		if len(jobs.Jobs) != 0 || len(list.Batches) != 0 {
			t.Fatalf("an invalid batch created %d jobs, %d batches", len(jobs.Jobs), len(list.Batches))
		}
		req["skip_invalid"] = true
		var b batchView
		if code, raw := h.do("POST", "/api/batches", h.tenantKey, req, &b); code != http.StatusCreated {
			t.Fatalf("skip_invalid: %d %s", code, raw)
		}
		if len(b.Jobs) != 1 || len(b.Invalid) != 2 || b.Invalid[0].Line != 2 {
			t.Fatalf("skip_invalid batch %+v", b)
		}
		if code, _ := h.do("POST", "/api/batches", h.tenantKey, map[string]any{"lines": []any{}}, nil); code != http.StatusBadRequest {
			t.Fatalf("empty batch: %d", code)
		}
		// A budget refusal is per line; the others go on.
		broke := h.newTenant(map[string]any{"name": "broke", "credit_budget": 0})
		if code, raw := h.do("POST", "/api/batches", broke, map[string]any{"lines": batchLines(t, "x")}, &b); code != http.StatusCreated ||
			b.Jobs[0].Status != "refused" || b.Jobs[0].Error == nil || b.Jobs[0].Error.Code != "budget_exceeded" {
			t.Fatalf("budget: %d %s", code, raw)
		}
	})
}

// The batch runner (hourglass batch run --gateway) against a gateway:
// every output downloaded and checked, a rerun creates nothing.
func TestBatchRunnerThroughGateway(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		var b strings.Builder
		for i := range 8 {
			fmt.Fprintf(&b, `{"tool":"ai-image-generator","name":"n%d","params":{"image_count":1,"style":{"prompt":"p %d"}}}`+"\n", i, i)
		}
		b.WriteString(`{"tool":"ai-image-generator","name":"bad boom","params":{"image_count":1,"style":{"prompt":"fails"}}}` + "\n")
		dir := t.TempDir()
		in := filepath.Join(dir, "b.jsonl")
		if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		run := func(retry bool) *batch.Summary {
			gb, err := batch.NewGatewayBackend(h.srv.URL, h.tenantKey, nil, testSpeed)
			if err != nil {
				t.Fatal(err)
			}
			gb.ChunkLines = 4 // several POSTs into one batch
			sum, err := batch.Execute(context.Background(), batch.Options{Input: in, OutDir: filepath.Join(dir, "out"), Backend: gb, TimeScale: testSpeed, RetryFailed: retry})
			if err != nil {
				t.Fatal(err)
			}
			return sum
		}
		sum := run(false)
		if sum.Counts[batch.StatusComplete] != 8 || sum.Counts[batch.StatusError] != 1 {
			t.Fatalf("%+v", sum.Counts)
		}
		es, _ := batch.ReadManifest(sum.Manifest)
		if len(es) != 9 || es[0].BatchID == "" || es[0].Via != "gateway" {
			t.Fatalf("manifest %+v", es)
		}
		for _, e := range es[:8] {
			if e.BatchID != es[0].BatchID || len(e.Outputs) != 1 || e.Outputs[0].SHA256 == "" {
				t.Fatalf("line %d: %+v", e.Line, e)
			}
			if st, err := os.Stat(e.Outputs[0].Path); err != nil || st.Size() != e.Outputs[0].Size {
				t.Fatalf("line %d output: %v", e.Line, err)
			}
		}
		creates := h.emu.Emulator.Stats().Creates
		if creates != 9 {
			t.Fatalf("%d upstream creates for 9 lines", creates)
		}
		run(false)
		if c := h.emu.Emulator.Stats().Creates; c != 9 {
			t.Fatalf("rerun: %d upstream creates", c)
		}
		// --retry-failed: a new attempt of the failed line, in the same batch.
		sum = run(true)
		if c := h.emu.Emulator.Stats().Creates; c != 10 || sum.Counts[batch.StatusError] != 1 {
			t.Fatalf("retry: %d creates, %+v", c, sum.Counts)
		}
		var bv batchView
		h.do("GET", "/api/batches/"+es[0].BatchID, h.tenantKey, nil, &bv)
		if bv.Total != 10 || bv.Counts["stored"] != 8 {
			t.Fatalf("batch %+v", bv)
		}
	})
}
