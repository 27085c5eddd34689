package mcpserver

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

func TestJSONSchemaFromCatalog(t *testing.T) {
	t.Parallel()
	for _, op := range catalog.Creates() {
		b, err := json.Marshal(jsonSchema(op.Request))
		if err != nil {
			t.Fatalf("%s: %v", op.Name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || m["type"] != "object" {
			t.Fatalf("%s: schema %s", op.Name, b)
		}
	}
	s := jsonSchema(catalog.Lookup("ai-image-generator").Request)
	props := s["properties"].(map[string]any)
	style := props["style"].(map[string]any)
	if req, _ := style["required"].([]string); len(req) == 0 || req[0] != "prompt" {
		t.Errorf("style.required = %v", style["required"])
	}
	ar := props["aspect_ratio"].(map[string]any)
	if enum, _ := ar["enum"].([]any); len(enum) == 0 {
		t.Errorf("aspect_ratio has no enum: %v", ar)
	}
	// Numeric enums keep their JSON type.
	for _, op := range catalog.Creates() {
		walkEnums(op.Request, func(s *catalog.Schema) {
			if s.Type == catalog.TypeInteger || s.Type == catalog.TypeNumber {
				for _, v := range jsonSchema(s)["enum"].([]any) {
					if _, ok := v.(float64); !ok {
						t.Errorf("%s: numeric enum value %v (%T)", op.Name, v, v)
					}
				}
			}
		})
	}
}

func walkEnums(s *catalog.Schema, fn func(*catalog.Schema)) {
	if s == nil {
		return
	}
	if len(s.Enum) > 0 {
		fn(s)
	}
	for _, p := range s.Properties {
		walkEnums(p.Schema, fn)
	}
	walkEnums(s.Items, fn)
}

func TestDerivedKey(t *testing.T) {
	t.Parallel()
	canon := func(js string) json.RawMessage {
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(m)
		return b
	}
	a := derivedKey("text-to-video", canon(`{"end_seconds":5,"style":{"prompt":"x"}}`))
	b := derivedKey("text-to-video", canon(`{"style":{"prompt":"x"},"end_seconds":5}`))
	c := derivedKey("text-to-video", canon(`{"style":{"prompt":"y"},"end_seconds":5}`))
	d := derivedKey("image-to-video", canon(`{"end_seconds":5,"style":{"prompt":"x"}}`))
	if a != b {
		t.Errorf("key depends on key order: %s %s", a, b)
	}
	if a == c || a == d {
		t.Errorf("different calls share a key")
	}
	if !strings.HasPrefix(a, "mcp_") || len(a) > 255 {
		t.Errorf("key %q", a)
	}
}

func TestFieldFix(t *testing.T) {
	t.Parallel()
	op := catalog.Lookup("ai-image-generator")
	tests := []struct {
		field, msg string
		want       []string
	}{
		{"style.prompt", "is required", []string{"set style.prompt", "expected string"}},
		{"aspect_ratio", "must be one of", []string{"one of", "1:1"}},
		{"no_such_field", "unknown field", []string{"remove no_such_field"}},
	}
	for _, tt := range tests {
		got := fieldFix(op, tt.field, tt.msg)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("fieldFix(%s, %q) = %q, want it to contain %q", tt.field, tt.msg, got, w)
			}
		}
	}
	if got := fieldFix(catalog.Lookup("face-swap"), "assets.face_mappings[0].new_face", "bad"); !strings.Contains(got, "upload_file") {
		t.Errorf("file field fix %q does not point to upload_file", got)
	}
}
