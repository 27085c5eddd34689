package gateway_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/internal/catalog/catalogtest"
	"github.com/hourglasshq/hourglass/magichour"
)

// specHarness is a gateway and an emulator on the catalog of a spec file
// that has a tool and a model value the built-in catalog lacks.
func specHarness(t *testing.T, dbURL string, cfg func(*gateway.Config)) (*harness, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(file, catalogtest.ExtraSpec(), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Fetch(context.Background(), nil, file)
	if err != nil {
		t.Fatal(err)
	}
	if catalog.Lookup(catalogtest.ExtraTool) != nil {
		t.Fatalf("the built-in catalog already has %s: pick another extra tool", catalogtest.ExtraTool)
	}
	h := newHarness(t, dbURL, hopts{emu: []emulator.Option{emulator.WithCatalog(cat)}, cfg: func(c *gateway.Config) {
		c.Catalog, c.SpecSource = cat, file
		if cfg != nil {
			cfg(c)
		}
	}})
	return h, file
}

// A tool only the spec file has runs end to end through /api/jobs and
// through the drop-in /v1 routes, to a stored, downloadable output; the
// extra model value is accepted.
func TestSpecExtraToolEndToEnd(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h, _ := specHarness(t, dbURL, nil)
		op := h.gw.Catalog().Lookup(catalogtest.ExtraTool)
		if op == nil || op.Kind != catalog.KindAudio {
			t.Fatalf("the gateway's catalog lacks %s: %+v", catalogtest.ExtraTool, op)
		}
		var j jobView
		code, raw := h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": catalogtest.ExtraTool, "params": op.ExampleBody()}, &j)
		if code != http.StatusAccepted {
			t.Fatalf("submit %s: %d %s", catalogtest.ExtraTool, code, raw)
		}
		if j = h.wait(j.ID); j.Status != "stored" || len(j.Outputs) == 0 {
			t.Fatalf("job: %+v", j)
		}
		h.checkOutputs(j)

		model := map[string]any{"tool": "ai-image-generator", "params": map[string]any{"model": catalogtest.ExtraModel,
			"image_count": 1, "style": map[string]any{"prompt": "a lighthouse"}}}
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, model, &j); code != http.StatusAccepted {
			t.Fatalf("submit with model %s: %d %s", catalogtest.ExtraModel, code, raw)
		}
		if j = h.wait(j.ID); j.Status != "stored" {
			t.Fatalf("model job: %+v", j)
		}

		var created struct{ ID string }
		if code, raw := h.do("POST", "/v1/"+catalogtest.ExtraTool, h.tenantKey, op.ExampleBody(), &created); code != http.StatusOK || created.ID == "" {
			t.Fatalf("drop-in create: %d %s", code, raw)
		}
		c := h.sdk()
		p := waitProject(t, c, magichour.KindAudio, created.ID)
		if p.Status != magichour.StatusComplete || len(p.Downloads) == 0 {
			t.Fatalf("drop-in project: %s, %d downloads", p.Status, len(p.Downloads))
		}
		if files, err := c.Download(context.Background(), p, t.TempDir()); err != nil || len(files) == 0 {
			t.Fatalf("download: %v %v", err, files)
		}
	})
}

// A refresh that fails (bad JSON, not OpenAPI 3, missing operations, an
// unreachable URL) keeps the last good catalog and is counted; a good one
// is swapped in, also on the SpecRefresh schedule.
func TestSpecRefreshKeepsLastGood(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h, file := specHarness(t, dbURL, nil)
		good := h.gw.Catalog()
		ctx := context.Background()
		for _, bad := range []string{`{"openapi": `, `{"swagger": "2.0", "info": {"title": "x", "version": "1"}, "paths": {}}`,
			`{"openapi": "3.0.2", "info": {"title": "x", "version": "1"}, "paths": {}}`} {
			if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := h.gw.RefreshCatalog(ctx); err == nil {
				t.Fatalf("refresh from %q: no error", bad)
			}
			if h.gw.Catalog() != good {
				t.Fatalf("a refused refresh (%q) replaced the catalog", bad)
			}
		}
		// The gateway still takes the extra tool.
		op := good.Lookup(catalogtest.ExtraTool)
		var j jobView
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": catalogtest.ExtraTool, "params": op.ExampleBody()}, &j); code != http.StatusAccepted {
			t.Fatalf("submit after refused refreshes: %d %s", code, raw)
		}
		if j = h.wait(j.ID); j.Status != "stored" {
			t.Fatalf("job after refused refreshes: %+v", j)
		}
		_, body := h.do("GET", "/metrics", "", nil, nil)
		if !strings.Contains(string(body), `hourglass_catalog_refreshes_total{result="refused"} 3`) {
			t.Fatalf("metrics lack 3 refused refreshes:\n%s", grepLines(string(body), "catalog"))
		}
		// Back to a good spec: the next refresh swaps it in.
		if err := os.WriteFile(file, catalogtest.ExtraSpec(), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := h.gw.RefreshCatalog(ctx); err != nil || h.gw.Catalog() == good {
			t.Fatalf("good refresh: %v (swapped: %v)", err, h.gw.Catalog() != good)
		}
	})
}

// An unreachable spec URL on a schedule: refused every time, nothing
// stops, the catalog stays.
func TestSpecRefreshScheduleUnreachable(t *testing.T) {
	t.Parallel()
	h, _ := specHarness(t, "sqlite://"+filepath.Join(t.TempDir(), "hg.db"), func(c *gateway.Config) {
		c.SpecSource, c.SpecRefresh = "http://127.0.0.1:1/openapi.json", 10*time.Millisecond
	})
	good := h.gw.Catalog()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := h.do("GET", "/metrics", "", nil, nil)
		if strings.Contains(string(body), `hourglass_catalog_refreshes_total{result="refused"} 2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled refreshes counted:\n%s", grepLines(string(body), "catalog"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.gw.Catalog() != good || h.gw.Catalog().Lookup(catalogtest.ExtraTool) == nil {
		t.Fatal("an unreachable spec replaced the catalog")
	}
	if j := h.wait(h.submit("ai-image-generator", "", "").ID); j.Status != "stored" {
		t.Fatalf("job during failing refreshes: %+v", j)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
