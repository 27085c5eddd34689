package catalog

import "encoding/json"

// ExampleBody builds a request body for op from the spec's examples: every
// property that has an example, plus a synthesized value for each required
// property that has none. Input-file fields get a public URL with an
// extension of their media type, so the body is valid without uploads.
// It returns nil for operations without a request body.
func (op *Operation) ExampleBody() map[string]any {
	if op.Request == nil {
		return nil
	}
	v, _ := exampleValue(op.Request, true).(map[string]any)
	return v
}

func exampleValue(s *Schema, required bool) any {
	if s.File != nil {
		return "https://example.com/input." + Extensions[s.File.Media[0]][0]
	}
	switch s.Type {
	case TypeObject:
		obj := map[string]any{}
		for _, p := range s.Properties {
			req := s.IsRequired(p.Name)
			if !req && p.Schema.Example == "" && !hasExample(p.Schema) {
				continue
			}
			if v := exampleValue(p.Schema, req); v != nil {
				obj[p.Name] = v
			}
		}
		return obj
	case TypeArray:
		if s.Items != nil && (s.Items.File != nil || s.Items.Type == TypeObject) {
			// Build items from their own schema so file fields get usable URLs.
			return []any{exampleValue(s.Items, true)}
		}
		if s.Example != "" {
			var v any
			if json.Unmarshal([]byte(s.Example), &v) == nil {
				return v
			}
		}
		if s.Items != nil && (required || s.MinItems != nil) {
			return []any{exampleValue(s.Items, true)}
		}
		return nil
	}
	if s.Example != "" && s.Example != "null" {
		var v any
		if json.Unmarshal([]byte(s.Example), &v) == nil {
			return v
		}
	}
	if !required {
		return nil
	}
	switch s.Type {
	case TypeString:
		if len(s.Enum) > 0 {
			return s.Enum[0]
		}
		if s.Format == "uri" {
			return "https://example.com/resource"
		}
		return "example"
	case TypeBoolean:
		return false
	case TypeNumber, TypeInteger:
		if len(s.Enum) > 0 {
			var v any
			if json.Unmarshal([]byte(s.Enum[0]), &v) == nil {
				return v
			}
		}
		if s.Minimum != nil {
			return *s.Minimum
		}
		return 1
	}
	return nil
}

// hasExample reports whether an object or array schema has an example
// somewhere beneath it, so optional groups with documented values appear.
func hasExample(s *Schema) bool {
	if s.Example != "" || s.File != nil {
		return true
	}
	for _, p := range s.Properties {
		if hasExample(p.Schema) {
			return true
		}
	}
	return false
}
