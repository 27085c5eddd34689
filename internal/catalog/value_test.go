package catalog_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/internal/catalog/catalogtest"
)

func TestLoadRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, spec, want string }{
		{"not JSON", "openapi: 3.0.0\n", "not JSON"},
		{"swagger 2", `{"swagger":"2.0","paths":{}}`, "not OpenAPI 3 (swagger 2.0)"},
		{"no version", `{"paths":{}}`, "not OpenAPI 3 (no openapi field)"},
		{"invalid", `{"openapi":"3.0.2","info":{"title":"x","version":"1"},"paths":{"/v1/x":{"post":{"responses":"nope"}}}}`, "not a readable OpenAPI document"},
		{"missing operations", `{"openapi":"3.0.2","info":{"title":"x","version":"1"},"paths":{}}`, "missing operations hourglass needs: POST /v1/files/upload-urls, GET /v1/video-projects/{id}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := catalog.Load([]byte(tt.spec), catalog.WithSource("test.json"))
			var le *catalog.LoadError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "test.json") {
				t.Fatalf("err = %v, want a LoadError naming %q", err, tt.want)
			}
		})
	}
}

func TestLoadExtraTool(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(catalogtest.ExtraSpec(), catalog.WithSource("extra.json"))
	if err != nil {
		t.Fatal(err)
	}
	op := c.Lookup(catalogtest.ExtraTool)
	if op == nil || !op.IsTool() || op.Kind != catalog.KindAudio {
		t.Fatalf("extra tool = %+v", op)
	}
	if !op.P50Estimated || op.P50 != c.MedianP50(catalog.KindAudio) || op.P50 <= 0 {
		t.Errorf("p50 = %v (estimated %v), want the audio median %v", op.P50, op.P50Estimated, c.MedianP50(catalog.KindAudio))
	}
	if len(op.Files) != 1 || op.Files[0].Media[0] != "audio" {
		t.Errorf("files = %+v", op.Files)
	}
	if catalog.Lookup(catalogtest.ExtraTool) != nil {
		t.Error("the default catalog knows the extra tool")
	}
	img := c.Lookup("ai-image-generator")
	body := map[string]any{"model": catalogtest.ExtraModel, "image_count": 2, "style": map[string]any{"prompt": "x"}}
	if _, err := img.Check(body); err != nil {
		t.Errorf("extra model refused by the newer catalog: %v", err)
	}
	if err := catalog.Lookup("ai-image-generator").Validate(body); err == nil || !strings.Contains(err.Error(), "catalog of 2026-12-08") ||
		!strings.Contains(err.Error(), "--no-validate") || !strings.Contains(err.Error(), "WithoutValidation()") {
		t.Errorf("default catalog refusal = %v, want the catalog date and the ways out", err)
	}
	if e := img.EstimateCredits(body); e.Credits != 60 || !strings.Contains(e.Source, "from 30 credits") && !strings.Contains(e.Source, "30 credits/image") {
		t.Errorf("estimate = %+v, want 60 from the stated price", e)
	}
	if r, _ := img.TierRefusal("creator", body); r == nil {
		t.Error("creator tier allowed a pro-only model")
	}
}

func TestFileReferenceForms(t *testing.T) {
	t.Parallel()
	op := catalog.Lookup("photo-colorizer")
	for _, ref := range []string{
		"api-assets/id/a.png", "saved-items/user/item/image.png", "image/id/a.png", "video/x/y.png", "audio/x/y.png",
		"https://cdn.example.com/a.png", "http://cdn.example.com/a.jpeg?sig=1",
	} {
		w, err := op.Check(map[string]any{"assets": map[string]any{"image_file_path": ref}})
		if err != nil || len(w) != 0 {
			t.Errorf("%s: warnings %v, err %v", ref, w, err)
		}
	}
	w, err := op.Check(map[string]any{"assets": map[string]any{"image_file_path": "https://cdn.example.com/media/123"}})
	if err != nil || len(w) != 1 || !strings.Contains(w[0].Message, "no file extension") {
		t.Errorf("extension-less URL: warnings %v, err %v; want one warning", w, err)
	}
	for _, bad := range []string{"/home/me/a.png", "ftp://h/a.png", "api-assets/../x.png", "saved-items/", "https://x.test/a.mp3"} {
		if _, err := op.Check(map[string]any{"assets": map[string]any{"image_file_path": bad}}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestUnknownFieldsWarn(t *testing.T) {
	t.Parallel()
	op := catalog.Lookup("ai-image-generator")
	body := map[string]any{"image_count": 1, "style": map[string]any{"prompt": "x", "futur": 1}, "brand_new": true}
	w, err := op.Check(body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range w {
		got = append(got, x.Field)
	}
	if strings.Join(got, ",") != "brand_new,style.futur" {
		t.Errorf("warnings on %v, want brand_new and style.futur", got)
	}
	if _, ok := body["brand_new"]; !ok {
		t.Error("unknown field dropped")
	}
}

func TestPricesAndTiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op   string
		body map[string]any
		want int64
	}{
		{"ai-image-generator", map[string]any{"model": "gpt-image-2", "image_count": 2, "style": map[string]any{"prompt": "x"}}, 100},
		{"face-swap-photo", map[string]any{}, 10},
		{"ai-voice-generator", map[string]any{"style": map[string]any{"prompt": strings.Repeat("a", 25)}}, 3},
		{"lip-sync", map[string]any{"start_seconds": 0, "end_seconds": 2, "style": map[string]any{"generation_mode": "pro"}}, 120},
		{"text-to-video", map[string]any{"end_seconds": 5}, 150},
	}
	for _, tt := range tests {
		if e := catalog.Lookup(tt.op).EstimateCredits(tt.body); e.Credits != tt.want || e.Source == "" {
			t.Errorf("%s: estimate %+v, want %d", tt.op, e, tt.want)
		}
	}
	tr := catalog.Lookup("ai-video-translator")
	if r, msg := tr.TierRefusal("free", map[string]any{"resolution": "720p"}); r == nil || !strings.Contains(msg, "resolution") {
		t.Errorf("free 720p translator: %v %q", r, msg)
	}
	if r, _ := tr.TierRefusal("creator", map[string]any{"resolution": "720p"}); r != nil {
		t.Errorf("creator refused: %+v", r)
	}
	if r, _ := catalog.Lookup("ai-image-upscaler").TierRefusal("free", map[string]any{"scale_factor": 4}); r == nil {
		t.Error("free 4x upscale allowed")
	}
}

func TestPaths(t *testing.T) {
	t.Parallel()
	body := map[string]any{"assets": map[string]any{"face_mappings": []any{map[string]any{"new_face": "a.png"}}}}
	if err := catalog.Set(body, "assets.face_mappings[0].new_face", "api-assets/x.png"); err != nil {
		t.Fatal(err)
	}
	if v, _ := catalog.Get(body, "assets.face_mappings[0].new_face"); v != "api-assets/x.png" {
		t.Errorf("get = %v", v)
	}
	if err := catalog.Set(body, "style.prompt", "p"); err != nil || catalog.String(body, "style.prompt") != "p" {
		t.Errorf("set new = %v %v", err, body)
	}
	if err := catalog.Set(body, "assets.face_mappings[3].new_face", "x"); err == nil {
		t.Error("set past the array end")
	}
	refs := catalog.Lookup("face-swap").FileRefs(map[string]any{"assets": map[string]any{"image_file_path": "a.png",
		"face_mappings": []any{map[string]any{"new_face": "b.png"}, map[string]any{"new_face": "c.png"}}}})
	if len(refs) != 3 || refs[2].Field != "assets.face_mappings[1].new_face" || refs[2].Pattern != "assets.face_mappings[].new_face" {
		t.Errorf("refs = %+v", refs)
	}
}

func TestPlainText(t *testing.T) {
	t.Parallel()
	in := "**What this API does**\n\nCreate a [thing](https://x.y/z) with `code`.\n    \n**Good for**\n* a"
	if got := catalog.PlainText(in); got != "Create a thing with code.\n\n- a" {
		t.Errorf("PlainText = %q", got)
	}
	if got := catalog.Summary("The image. This value is either\n- a URL"); got != "The image." {
		t.Errorf("Summary = %q", got)
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	spec := catalogtest.ExtraSpec()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/openapi.json" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(spec)
	}))
	defer srv.Close()
	c, err := catalog.Fetch(context.Background(), srv.Client(), srv.URL+"/openapi.json")
	if err != nil || c.Lookup(catalogtest.ExtraTool) == nil || c.Source != srv.URL+"/openapi.json" {
		t.Fatalf("fetch URL: %v", err)
	}
	if _, err := catalog.Fetch(context.Background(), srv.Client(), srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing URL: %v", err)
	}
	p := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(p, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := catalog.Fetch(context.Background(), nil, p); err != nil || c.Date.IsZero() {
		t.Fatalf("fetch file: %v", err)
	}
}
