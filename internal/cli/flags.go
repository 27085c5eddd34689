package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// field is one request member exposed as a command-line flag. It is derived
// from the catalog's request schema: every leaf of the (nested) object is a
// flag; arrays become repeatable flags.
type field struct {
	Path     string   // dotted JSON path, e.g. "assets.image_file_path"
	Segs     []string // Path split on dots
	Flag     string   // flag name without dashes, e.g. "image"
	Schema   *catalog.Schema
	Required bool // required, and every parent object is required too
	Media    []string
	value    *fieldValue
}

// reservedFlags are the names the CLI itself uses; a request field that
// would derive one of them keeps its full path name instead.
var reservedFlags = map[string]bool{
	"help": true, "json": true, "quiet": true, "output": true, "timeout": true,
	"api-key": true, "base-url": true, "emulator": true, "no-wait": true,
	"no-download": true, "param": true, "json-body": true, "overwrite": true, "profile": true, "spec": true, "no-validate": true,
}

// shortRenames shortens a few very common names after the prefix is dropped.
var shortRenames = map[string]string{
	"start_seconds": "start",
	"end_seconds":   "end",
}

// toolFields flattens op's request schema into flags, in spec order, with
// short names where they are unambiguous and full paths on collisions.
func toolFields(op *catalog.Operation) []*field {
	var out []*field
	var walk func(s *catalog.Schema, prefix []string, req bool)
	walk = func(s *catalog.Schema, prefix []string, req bool) {
		for _, p := range s.Properties {
			segs := append(append([]string(nil), prefix...), p.Name)
			r := req && s.IsRequired(p.Name)
			if p.Schema.Type == catalog.TypeObject && len(p.Schema.Properties) > 0 {
				walk(p.Schema, segs, r)
				continue
			}
			f := &field{Path: strings.Join(segs, "."), Segs: segs, Schema: p.Schema, Required: r}
			if p.Schema.File != nil {
				f.Media = p.Schema.File.Media
			}
			out = append(out, f)
		}
	}
	if op.Request != nil {
		walk(op.Request, nil, true)
	}
	count := map[string]int{}
	for _, f := range out {
		f.Flag = shortName(f)
		count[f.Flag]++
	}
	for _, f := range out {
		if count[f.Flag] > 1 || reservedFlags[f.Flag] {
			f.Flag = fullName(f)
		}
	}
	return out
}

// shortName derives the short flag name: drop the assets./style. prefix and
// the _file_path suffix, dashes for underscores; arrays of objects get a
// singular name ("face_mappings" → "face-mapping").
func shortName(f *field) string {
	segs := f.Segs
	if len(segs) > 1 && (segs[0] == "assets" || segs[0] == "style") {
		segs = segs[1:]
	}
	last := segs[len(segs)-1]
	if r, ok := shortRenames[last]; ok && len(segs) == 1 {
		last = r
	} else if strings.HasSuffix(last, "_file_path") && last != "_file_path" {
		last = strings.TrimSuffix(last, "_file_path")
	} else if f.Schema.Type == catalog.TypeArray && f.Schema.Items != nil && f.Schema.Items.Type == catalog.TypeObject {
		last = strings.TrimSuffix(last, "s")
	}
	segs = append(append([]string(nil), segs[:len(segs)-1]...), last)
	return dashes(strings.Join(segs, "-"))
}

func fullName(f *field) string { return dashes(strings.Join(f.Segs, "-")) }

func dashes(s string) string {
	s = strings.ReplaceAll(s, "_", "-")
	// camelCase (style.searchWeb) → search-web
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isObjectArray reports whether the field is an array of objects.
func (f *field) isObjectArray() bool {
	return f.Schema.Type == catalog.TypeArray && f.Schema.Items != nil && f.Schema.Items.Type == catalog.TypeObject
}

func (f *field) isArray() bool { return f.Schema.Type == catalog.TypeArray }

// fieldValue is the pflag.Value of a request field: it checks the value's
// type when the flag is parsed, so a bad number is a usage error at once.
type fieldValue struct {
	f    *field
	vals []string
}

func (v *fieldValue) String() string {
	if v == nil || len(v.vals) == 0 {
		return ""
	}
	return strings.Join(v.vals, ",")
}

func (v *fieldValue) Set(s string) error {
	if _, err := v.f.convert(s); err != nil {
		return err
	}
	if v.f.isArray() {
		v.vals = append(v.vals, s)
	} else {
		v.vals = []string{s}
	}
	return nil
}

func (v *fieldValue) Type() string {
	s := v.f.Schema
	switch {
	case v.f.isObjectArray():
		if a, b, ok := pairProps(s.Items); ok {
			return strings.ToUpper(a) + "=" + strings.ToUpper(b)
		}
		return "k=v,..."
	case s.Type == catalog.TypeArray:
		return "value"
	case s.File != nil:
		return "file|url"
	case s.Type == catalog.TypeInteger:
		return "int"
	case s.Type == catalog.TypeNumber:
		return "number"
	case s.Type == catalog.TypeBoolean:
		return "bool"
	}
	return "string"
}

// pairProps reports whether an object schema has exactly two string
// properties, so that its values can be written "FIRST=SECOND".
func pairProps(s *catalog.Schema) (string, string, bool) {
	if s == nil || len(s.Properties) != 2 {
		return "", "", false
	}
	for _, p := range s.Properties {
		if p.Schema.Type != catalog.TypeString {
			return "", "", false
		}
	}
	strip := func(n string) string { return strings.TrimSuffix(n, "_face") }
	return strip(s.Properties[0].Name), strip(s.Properties[1].Name), true
}

// convert turns one flag value into its JSON value.
func (f *field) convert(s string) (any, error) {
	sch := f.Schema
	if sch.Type == catalog.TypeArray {
		if sch.Items == nil {
			return parseLoose(s), nil
		}
		item := &field{Path: f.Path + "[]", Schema: sch.Items}
		if sch.Items.Type == catalog.TypeObject {
			return item.convertObject(s)
		}
		return item.convert(s)
	}
	switch sch.Type {
	case catalog.TypeNumber, catalog.TypeInteger:
		if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
			return nil, fmt.Errorf("not a number")
		}
		return json.Number(strings.TrimSpace(s)), nil
	case catalog.TypeBoolean:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("not true or false")
		}
		return b, nil
	case catalog.TypeObject:
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("not a JSON object: %v", err)
		}
		return v, nil
	}
	return s, nil
}

// convertObject parses one element of an array of objects: a JSON object,
// "k=v,k=v" with the item's property names, or "FIRST=SECOND" when the item
// has exactly two string properties (face mappings: ORIGINAL=NEW).
func (f *field) convertObject(s string) (any, error) {
	sch := f.Schema
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") {
		dec := json.NewDecoder(strings.NewReader(t))
		dec.UseNumber()
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not a JSON object: %v", err)
		}
		return v, nil
	}
	obj := map[string]any{}
	keyed := true
	parts := strings.Split(t, ",")
	for _, part := range parts {
		k, _, ok := strings.Cut(part, "=")
		if !ok || sch.Prop(strings.TrimSpace(k)) == nil {
			keyed = false
			break
		}
	}
	if keyed {
		for _, part := range parts {
			k, v, _ := strings.Cut(part, "=")
			k = strings.TrimSpace(k)
			sub := &field{Path: f.Path + "." + k, Schema: sch.Prop(k)}
			x, err := sub.convert(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			obj[k] = x
		}
		return obj, nil
	}
	if a, b, ok := pairProps(sch); ok {
		l, r, found := strings.Cut(t, "=")
		if !found || l == "" || r == "" {
			return nil, fmt.Errorf("want %s=%s", strings.ToUpper(a), strings.ToUpper(b))
		}
		obj[sch.Properties[0].Name] = l
		obj[sch.Properties[1].Name] = r
		return obj, nil
	}
	var names []string
	for _, p := range sch.Properties {
		names = append(names, p.Name+"=…")
	}
	return nil, fmt.Errorf("want a JSON object or %s", strings.Join(names, ","))
}

// parseLoose reads a --param value: JSON when it parses as JSON, else the
// plain string.
func parseLoose(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return v
	}
	return s
}

// usage is the flag's help text: the first sentence of the spec
// description, the accepted values, the default, and (required).
func (f *field) usage() string {
	s := f.Schema
	desc := strings.TrimSuffix(firstSentence(s.Description), ".")
	if strings.HasPrefix(desc, "*") || strings.HasPrefix(desc, "-") {
		desc = "" // a bullet list: the values below say it better
	}
	if f.Schema.File != nil {
		desc += "; local path (uploaded), http(s) URL, api-assets/… path, or - for stdin"
	}
	if f.isObjectArray() {
		if a, b, ok := pairProps(s.Items); ok {
			desc += fmt.Sprintf(" (repeatable: %s=%s)", strings.ToUpper(a), strings.ToUpper(b))
		} else {
			var names []string
			for _, p := range s.Items.Properties {
				names = append(names, p.Name+"=…")
			}
			desc += " (repeatable: " + strings.Join(names, ",") + " or JSON)"
		}
	} else if f.isArray() {
		desc += " (repeatable)"
	}
	if enum := f.enum(); len(enum) > 0 {
		desc += "; one of: " + enumSummary(enum)
	}
	if s.Minimum != nil && s.Maximum != nil {
		desc += fmt.Sprintf("; %s to %s", fmtNum(*s.Minimum), fmtNum(*s.Maximum))
	}
	if s.Default != "" && !strings.Contains(s.Default, "dateTime") {
		desc += "; default " + strings.Trim(s.Default, `"`)
	}
	if f.Required {
		desc += " (required)"
	}
	return strings.TrimPrefix(strings.TrimSpace(desc), "; ")
}

func (f *field) enum() []string {
	if len(f.Schema.Enum) > 0 {
		return f.Schema.Enum
	}
	if f.Schema.Items != nil {
		return f.Schema.Items.Enum
	}
	return nil
}

func enumSummary(enum []string) string {
	if len(enum) <= 12 {
		return strings.Join(enum, ", ")
	}
	return strings.Join(enum[:8], ", ") + fmt.Sprintf(", … (%d values; press Tab to complete)", len(enum))
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// firstSentence returns the description's first sentence, as plain text.
func firstSentence(d string) string {
	d = catalog.Summary(d)
	for i := 0; i+1 < len(d); i++ {
		if d[i] == '.' && d[i+1] == ' ' {
			d = d[:i+1]
			break
		}
	}
	return strings.TrimSpace(strings.TrimSuffix(d, ":"))
}

// addFieldFlags registers one flag per field on cmd, with enum completion.
func addFieldFlags(cmd *cobra.Command, fields []*field) {
	for _, f := range fields {
		f.value = &fieldValue{f: f}
		fl := cmd.Flags().VarPF(f.value, f.Flag, "", f.usage())
		if f.Schema.Type == catalog.TypeBoolean {
			fl.NoOptDefVal = "true"
		}
		if f.Required {
			// Shown in completion; enforcement is ours, so --json-body can
			// satisfy it and the message can show an example.
			_ = cmd.Flags().SetAnnotation(f.Flag, "hourglass_required", []string{"true"})
		}
		if enum := f.enum(); len(enum) > 0 {
			vals := append([]string(nil), enum...)
			_ = cmd.RegisterFlagCompletionFunc(f.Flag, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return vals, cobra.ShellCompDirectiveNoFileComp
			})
		} else if f.Media != nil {
			var exts []string
			for _, m := range f.Media {
				exts = append(exts, catalog.Extensions[m]...)
			}
			_ = cmd.Flags().SetAnnotation(f.Flag, cobra.BashCompFilenameExt, exts)
		} else if f.Schema.Type != catalog.TypeBoolean {
			_ = cmd.RegisterFlagCompletionFunc(f.Flag, cobra.NoFileCompletions)
		}
	}
}

// fieldForPath finds the field a validation error path refers to:
// "assets.face_mappings[2].new_face" → the face-mapping field.
func fieldForPath(fields []*field, p string) *field {
	clean := stripIndexes(p)
	var best *field
	for _, f := range fields {
		if clean == f.Path || strings.HasPrefix(clean, f.Path+".") {
			if best == nil || len(f.Path) > len(best.Path) {
				best = f
			}
		}
	}
	return best
}

func stripIndexes(p string) string {
	var b strings.Builder
	depth := 0
	for _, r := range p {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// setPath stores v at the dotted path in body, creating objects.
func setPath(body map[string]any, segs []string, v any) {
	m := body
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[s] = next
		}
		m = next
	}
	m[segs[len(segs)-1]] = v
}

func getPath(body map[string]any, segs []string) (any, bool) {
	var cur any = body
	for _, s := range segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[s]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

var _ pflag.Value = (*fieldValue)(nil)
