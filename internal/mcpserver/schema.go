package mcpserver

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// jsonSchema turns a catalog schema into a JSON Schema object for a tool's
// input: types, descriptions, enums, defaults, bounds and required lists.
func jsonSchema(s *catalog.Schema) map[string]any {
	m := map[string]any{}
	if s == nil {
		return map[string]any{"type": "object"}
	}
	if s.Type != "" {
		if s.Nullable {
			m["type"] = []any{string(s.Type), "null"}
		} else {
			m["type"] = string(s.Type)
		}
	}
	desc := catalog.PlainText(s.Description)
	if s.File != nil {
		note := "Input file (" + strings.Join(s.File.Media, " or ") + "): the file_path returned by upload_file, or an http(s) URL."
		desc = strings.TrimSpace(note + " " + desc)
	}
	if desc != "" {
		m["description"] = desc
	}
	if s.Format != "" {
		m["format"] = s.Format
	}
	if len(s.Enum) > 0 {
		vals := make([]any, 0, len(s.Enum))
		for _, e := range s.Enum {
			vals = append(vals, enumValue(s.Type, e))
		}
		m["enum"] = vals
	}
	if s.Default != "" {
		var v any
		if json.Unmarshal([]byte(s.Default), &v) == nil {
			m["default"] = v
		}
	}
	for k, p := range map[string]*float64{"minimum": s.Minimum, "maximum": s.Maximum, "multipleOf": s.MultipleOf} {
		if p != nil {
			m[k] = *p
		}
	}
	for k, p := range map[string]*int{"minLength": s.MinLength, "maxLength": s.MaxLength, "minItems": s.MinItems, "maxItems": s.MaxItems} {
		if p != nil {
			m[k] = *p
		}
	}
	if s.Pattern != "" {
		m["pattern"] = s.Pattern
	}
	if len(s.Properties) > 0 || s.Type == catalog.TypeObject {
		props := map[string]any{}
		for _, p := range s.Properties {
			props[p.Name] = jsonSchema(p.Schema)
		}
		m["properties"] = props
		if len(s.Required) > 0 {
			m["required"] = append([]string(nil), s.Required...)
		}
	}
	if s.Items != nil {
		m["items"] = jsonSchema(s.Items)
	}
	return m
}

// enumValue is an enum entry as its JSON type: the catalog keeps them as
// text without quotes ("4" for an integer enum).
func enumValue(t catalog.Type, text string) any {
	switch t {
	case catalog.TypeInteger, catalog.TypeNumber:
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return f
		}
	case catalog.TypeBoolean:
		if b, err := strconv.ParseBool(text); err == nil {
			return b
		}
	}
	return text
}

// schemaAt finds the schema of a dotted field path ("style.prompt",
// "assets.face_mappings[2].new_face") under s, or nil.
func schemaAt(s *catalog.Schema, path string) *catalog.Schema {
	for _, seg := range strings.Split(path, ".") {
		if s == nil || seg == "" {
			return nil
		}
		name, idx, _ := strings.Cut(seg, "[")
		s = s.Prop(name)
		if idx != "" && s != nil {
			s = s.Items
		}
	}
	return s
}

// fieldFix says how to correct a field the gateway refused, from what the
// catalog knows about it.
func fieldFix(op *catalog.Operation, field, msg string) string {
	if op == nil {
		return ""
	}
	s := schemaAt(op.Request, field)
	if s == nil {
		if strings.Contains(msg, "unknown") || strings.Contains(msg, "not allowed") {
			return "remove " + field + ": the tool's input schema does not have it"
		}
		return ""
	}
	var parts []string
	if strings.Contains(msg, "required") {
		parts = append(parts, "set "+field)
	}
	if s.Type != "" {
		parts = append(parts, "expected "+string(s.Type))
	}
	if len(s.Enum) > 0 {
		shown := s.Enum
		if len(shown) > 12 {
			shown = shown[:12]
		}
		more := ""
		if len(s.Enum) > len(shown) {
			more = fmt.Sprintf(", ... (%d values, see the input schema)", len(s.Enum))
		}
		parts = append(parts, "one of "+strings.Join(shown, ", ")+more)
	}
	if s.Minimum != nil || s.Maximum != nil {
		lo, hi := "", ""
		if s.Minimum != nil {
			lo = strconv.FormatFloat(*s.Minimum, 'f', -1, 64)
		}
		if s.Maximum != nil {
			hi = strconv.FormatFloat(*s.Maximum, 'f', -1, 64)
		}
		parts = append(parts, "within ["+lo+", "+hi+"]")
	}
	if s.File != nil {
		parts = append(parts, "an upload_file file_path or an http(s) URL of a "+strings.Join(s.File.Media, "/")+" file")
	}
	if d := catalog.Summary(s.Description); d != "" {
		parts = append(parts, d)
	}
	return strings.Join(parts, "; ")
}
