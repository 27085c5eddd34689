package catalog

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const specDir = "../../../shared/magichour"

// TestDataIsFresh checks catalog.json, the generated data everything else
// is built from. Always (a fresh clone too): it must be exactly what the
// generator writes for the catalog it holds, so hand edits fail. With
// ../shared present: regenerating it from the spec must give the same bytes;
// run `go generate ./internal/catalog` to fix.
func TestDataIsFresh(t *testing.T) {
	data, err := os.ReadFile("catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatal("internal/catalog/catalog.json is not generator output (edited by hand?): run `go generate ./internal/catalog`")
	}
	spec := filepath.Join(specDir, "openapi-latest.json")
	if _, err := os.Stat(spec); err != nil {
		t.Logf("spec not found at %s (../shared absent): checked catalog.json against itself only", spec)
		return
	}
	if testing.Short() {
		t.Skip("-short: skipping generator run")
	}
	out := filepath.Join(t.TempDir(), "catalog.json")
	cmd := exec.Command("go", "run", "./gen", "-spec", spec, "-times", filepath.Join(specDir, "processing-times.tsv"),
		"-date", c.DateString(), "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator failed: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Fatal("internal/catalog/catalog.json is stale against ../shared/magichour: run `go generate ./internal/catalog`")
	}
}

func TestCatalogShape(t *testing.T) {
	t.Parallel()
	if n := len(Default().Operations()); n != 39 {
		t.Errorf("operations = %d, want 39 (every operation of the spec)", n)
	}
	creates := Creates()
	if len(creates) != 28 {
		t.Errorf("project-creating tools = %d, want 28", len(creates))
	}
	for _, op := range creates {
		if op.P50 <= 0 {
			t.Errorf("%s: no p50", op.Name)
		}
		if op.Request == nil || op.Response == nil {
			t.Errorf("%s: missing request or response schema", op.Name)
		}
		if Project(op.Kind, RoleGet) == nil || Project(op.Kind, RoleDelete) == nil {
			t.Errorf("%s: no get/delete route for kind %s", op.Name, op.Kind)
		}
	}
	var walk func(op string, s *Schema)
	walk = func(op string, s *Schema) {
		if s == nil {
			return
		}
		if s.Pattern != "" {
			if _, err := regexp.Compile(s.Pattern); err != nil {
				t.Errorf("%s: bad pattern %q: %v", op, s.Pattern, err)
			}
		}
		for _, p := range s.Properties {
			walk(op, p.Schema)
		}
		walk(op, s.Items)
	}
	for _, op := range Default().Operations() {
		walk(op.Name, op.Request)
	}
	if op := Lookup("face-swap"); op == nil || op.Kind != KindVideo || op.Path != "/v1/face-swap" {
		t.Fatalf("Lookup(face-swap) = %+v", op)
	}
	if op := Route("GET", "/v1/image-projects/abc"); op == nil || op.Role != RoleGet || op.Kind != KindImage {
		t.Fatalf("Route(GET image) = %+v", op)
	}
	if op := Route("GET", "/v1/image-projects/"); op != nil {
		t.Fatalf("empty id matched %s", op.Name)
	}
}

func TestFileFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op    string
		paths []string
	}{
		{"face-swap", []string{"assets.image_file_path", "assets.face_mappings[].new_face", "assets.video_file_path"}},
		{"ai-image-editor", []string{"assets.image_file_path", "assets.image_file_paths[]"}},
		{"ai-video-translator", []string{"assets.video_file_path"}},
		{"lip-sync", []string{"assets.audio_file_path", "assets.video_file_path"}},
		{"ai-image-generator", nil},
	}
	for _, tt := range tests {
		op := Lookup(tt.op)
		var got []string
		for _, f := range op.Files {
			got = append(got, f.Path)
		}
		if strings.Join(got, ",") != strings.Join(tt.paths, ",") {
			t.Errorf("%s files = %v, want %v", tt.op, got, tt.paths)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, op, body string
		wantField      string // "" means valid
		wantMsg        string
	}{
		{"valid face swap", "face-swap", `{"start_seconds":0,"end_seconds":5,"assets":{"video_source":"file","video_file_path":"api-assets/a/1.mp4","image_file_path":"https://x.test/me.png"}}`, "", ""},
		{"unknown fields accepted", "face-swap", `{"start_seconds":0,"end_seconds":5,"width":512,"future":{"x":1},"assets":{"video_source":"file","video_file_path":"api-assets/a/1.mp4","image_file_path":"api-assets/a/2.png"}}`, "", ""},
		{"missing required", "face-swap", `{"end_seconds":5,"assets":{"video_source":"file","video_file_path":"api-assets/a/1.mp4","image_file_path":"api-assets/a/2.png"}}`, "start_seconds", "is required"},
		{"wrong type", "face-swap", `{"start_seconds":"0","end_seconds":5,"assets":{"video_source":"file","video_file_path":"api-assets/a/1.mp4","image_file_path":"api-assets/a/2.png"}}`, "start_seconds", "must be a number"},
		{"enum", "face-swap", `{"start_seconds":0,"end_seconds":5,"assets":{"video_source":"dvd"}}`, "assets.video_source", `must be one of "file", "youtube"`},
		{"end before start", "face-swap", `{"start_seconds":5,"end_seconds":2,"assets":{"video_source":"file","video_file_path":"api-assets/a/1.mp4","image_file_path":"api-assets/a/2.png"}}`, "end_seconds", "greater than start_seconds"},
		{"conditional required", "face-swap", `{"start_seconds":0,"end_seconds":5,"assets":{"video_source":"file","image_file_path":"api-assets/a/2.png"}}`, "assets.video_file_path", `required when video_source is "file"`},
		{"individual faces need mappings", "face-swap-photo", `{"assets":{"face_swap_mode":"individual-faces","target_file_path":"api-assets/a/2.png"}}`, "assets.face_mappings", "required"},
		{"max items", "face-swap-photo", `{"assets":{"face_swap_mode":"individual-faces","target_file_path":"api-assets/a/t.png","face_mappings":[` + strings.Repeat(`{"original_face":"api-assets/a/0-0.png","new_face":"api-assets/a/n.png"},`, 5) + `{"original_face":"api-assets/a/0-0.png","new_face":"api-assets/a/n.png"}]}}`, "assets.face_mappings", "at most 5"},
		{"range", "image-to-video", `{"end_seconds":61,"assets":{"image_file_path":"api-assets/a/1.png"}}`, "end_seconds", "at most 60"},
		{"integer", "ai-image-generator", `{"image_count":1.5,"style":{"prompt":"cat"}}`, "image_count", "whole number"},
		{"multipleOf", "ai-face-editor", `{"assets":{"image_file_path":"api-assets/a/1.png"},"style":{"mouth_smile":7}}`, "style.mouth_smile", "multiple of 5"},
		{"min length", "text-to-video", `{"end_seconds":5,"style":{"prompt":""}}`, "style.prompt", "must not be empty"},
		{"wrong media extension", "photo-colorizer", `{"assets":{"image_file_path":"https://example.test/a.mp3"}}`, "assets.image_file_path", "unsupported file extension"},
		{"malformed reference", "photo-colorizer", `{"assets":{"image_file_path":"/home/me/a.png"}}`, "assets.image_file_path", "saved-items/"},
		{"array item file", "ai-image-editor", `{"style":{"prompt":"x"},"assets":{"image_file_paths":["api-assets/a/1.png","ftp://h/x.png"]}}`, "assets.image_file_paths[1]", "http(s) URL"},
		{"upload extension pattern", "files.upload-urls", `{"items":[{"type":"image","extension":"P NG"}]}`, "items[0].extension", "must match"},
		{"null", "photo-colorizer", `{"assets":null}`, "assets", "must not be null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Lookup(tt.op).ValidateJSON([]byte(tt.body))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want ValidationError, got %v", err)
			}
			for _, f := range ve.Fields {
				if f.Field == tt.wantField && strings.Contains(f.Message, tt.wantMsg) {
					return
				}
			}
			t.Fatalf("no error on %s containing %q in %v", tt.wantField, tt.wantMsg, err)
		})
	}
}

func TestValidateBody(t *testing.T) {
	t.Parallel()
	op := Lookup("photo-colorizer")
	for _, body := range []string{"", "  ", "{", "[1]", `{"assets":{}} trailing`} {
		if err := op.ValidateJSON([]byte(body)); err == nil {
			t.Errorf("body %q accepted", body)
		}
	}
}

func FuzzValidateJSON(f *testing.F) {
	f.Add("face-swap", `{"start_seconds":0,"end_seconds":5,"assets":{"video_source":"file"}}`)
	f.Add("ai-image-editor", `{"image_count":4,"style":{"prompt":"x"},"assets":{"image_file_paths":["a"]}}`)
	f.Add("files.upload-urls", `{"items":[{"type":"image","extension":"png"}]}`)
	f.Fuzz(func(t *testing.T, name, body string) {
		op := Lookup(name)
		if op == nil {
			ops := Default().Operations()
			op = ops[len(name)%len(ops)]
		}
		err := op.ValidateJSON([]byte(body))
		var ve *ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("non-validation error %T", err)
		}
		if ve != nil && len(ve.Fields) == 0 {
			t.Fatal("validation error with no fields")
		}
	})
}

func TestExampleBodiesValidate(t *testing.T) {
	t.Parallel()
	for _, op := range Default().Operations() {
		if op.Request == nil {
			continue
		}
		body := op.ExampleBody()
		if _, err := op.Check(body); err != nil {
			t.Errorf("%s: example body invalid: %v\n%v", op.Name, err, body)
		}
	}
}
