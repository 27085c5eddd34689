package catalog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// step is one segment of a dotted path: a member name, then array indexes.
type step struct {
	name string
	idx  []int
}

func parsePath(path string) ([]step, error) {
	var out []step
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		st := step{name: name}
		if rest != "" {
			for _, ix := range strings.Split(strings.TrimSuffix(rest, "]"), "][") {
				n, err := strconv.Atoi(ix)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("catalog: bad index in path %q", path)
				}
				st.idx = append(st.idx, n)
			}
		}
		if name == "" {
			return nil, fmt.Errorf("catalog: empty segment in path %q", path)
		}
		out = append(out, st)
	}
	return out, nil
}

// Get returns the value at a dotted path of a decoded JSON body
// ("style.prompt", "assets.face_mappings[2].new_face").
func Get(body map[string]any, path string) (any, bool) {
	steps, err := parsePath(path)
	if err != nil {
		return nil, false
	}
	var v any = body
	for _, st := range steps {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[st.name]; !ok {
			return nil, false
		}
		for _, i := range st.idx {
			arr, ok := v.([]any)
			if !ok || i >= len(arr) {
				return nil, false
			}
			v = arr[i]
		}
	}
	return v, true
}

// Set stores v at a dotted path, creating the objects on the way; array
// elements must exist.
func Set(body map[string]any, path string, v any) error {
	steps, err := parsePath(path)
	if err != nil {
		return err
	}
	obj := body
	for n, st := range steps {
		last := n == len(steps)-1
		if len(st.idx) == 0 {
			if last {
				obj[st.name] = v
				return nil
			}
			next, ok := obj[st.name].(map[string]any)
			if !ok {
				if _, exists := obj[st.name]; exists && obj[st.name] != nil {
					return fmt.Errorf("catalog: %s: not an object", path)
				}
				next = map[string]any{}
				obj[st.name] = next
			}
			obj = next
			continue
		}
		cur := obj[st.name]
		for k, i := range st.idx {
			arr, ok := cur.([]any)
			if !ok || i >= len(arr) {
				return fmt.Errorf("catalog: %s: no element %d", path, i)
			}
			if last && k == len(st.idx)-1 {
				arr[i] = v
				return nil
			}
			cur = arr[i]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return fmt.Errorf("catalog: %s: not an object", path)
		}
		obj = next
	}
	return nil
}

// Number reads a number at path (float64, json.Number or an int).
func Number(body map[string]any, path string) (float64, bool) {
	v, ok := Get(body, path)
	if !ok {
		return 0, false
	}
	return number(v)
}

// String reads a string at path ("" when absent or not a string).
func String(body map[string]any, path string) string {
	v, _ := Get(body, path)
	s, _ := v.(string)
	return s
}

// FileRef is one input-file value of a request body.
type FileRef struct {
	// Field is the concrete path, e.g. "assets.face_mappings[2].new_face";
	// pass it to Set to replace the value.
	Field string
	// Pattern is the catalog's path with "[]", e.g.
	// "assets.face_mappings[].new_face".
	Pattern string
	Media   []string
	Value   string
}

// FileRefs returns every non-empty input-file string of body, in the order
// of op.Files then array order: the one walker over a request's file fields.
func (op *Operation) FileRefs(body map[string]any) []FileRef {
	var out []FileRef
	for _, f := range op.Files {
		walkFile(body, strings.Split(f.Path, "."), "", func(field, value string) {
			out = append(out, FileRef{Field: field, Pattern: f.Path, Media: f.Media, Value: value})
		})
	}
	return out
}

func walkFile(v any, segs []string, at string, fn func(field, value string)) {
	obj, ok := v.(map[string]any)
	if !ok || len(segs) == 0 {
		return
	}
	name, isArr := strings.CutSuffix(segs[0], "[]")
	x, ok := obj[name]
	if !ok {
		return
	}
	path := join(at, name)
	if isArr {
		arr, _ := x.([]any)
		for i, el := range arr {
			p := fmt.Sprintf("%s[%d]", path, i)
			if len(segs) == 1 {
				if s, ok := el.(string); ok && s != "" {
					fn(p, s)
				}
				continue
			}
			walkFile(el, segs[1:], p, fn)
		}
		return
	}
	if len(segs) == 1 {
		if s, ok := x.(string); ok && s != "" {
			fn(path, s)
		}
		return
	}
	walkFile(x, segs[1:], path, fn)
}

// DecodeBody decodes a JSON object with numbers kept as json.Number; nil
// when b is not an object.
func DecodeBody(b []byte) map[string]any {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	return m
}
