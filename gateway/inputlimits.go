package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what a submission may carry, checked before anything is stored
// or estimated (issue 11): deeply nested JSON made every read re-indent it
// quadratically, and absurd numbers overflowed the credit estimate.
const (
	// MaxJSONDepth is how deeply params and metadata may nest objects and
	// arrays. Magic Hour's deepest request bodies nest 4 levels.
	MaxJSONDepth = 32
	// MaxParamsBytes bounds a job's params (compact JSON): Magic Hour's
	// bodies are a few KiB (prompts, file paths, face mappings).
	MaxParamsBytes = 64 << 10
	// MaxMetadataBytes bounds a job's metadata (compact JSON).
	MaxMetadataBytes = 16 << 10
	// maxNumber bounds every number in params: beyond it a float64 no
	// longer holds integers exactly, and no Magic Hour field needs it.
	maxNumber = 1e15
)

// numberRanges are the bounds of the numeric fields the credit estimate
// reads: anything outside is refused rather than estimated.
var numberRanges = map[string][2]float64{
	"start_seconds": {0, 24 * 3600},
	"end_seconds":   {0, 24 * 3600},
	"fps":           {0, 1000},
	"max_fps_limit": {0, 1000},
	"image_count":   {0, 1000},
}

// jsonDepth returns how deeply b (valid JSON) nests objects and arrays.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// checkJSONShape refuses a params or metadata value (already compact
// JSON) that is larger than limit bytes or nests deeper than MaxJSONDepth;
// the code is FIELD_too_large or FIELD_too_deep.
func checkJSONShape(field string, b []byte, limit int) (string, *fieldError) {
	if len(b) > limit {
		return field + "_too_large", &fieldError{field, fmt.Sprintf("is %d bytes of JSON; the limit is %d bytes", len(b), limit)}
	}
	if d := jsonDepth(b); d > MaxJSONDepth {
		return field + "_too_deep", &fieldError{field, fmt.Sprintf("nests %d levels deep; the limit is %d levels", d, MaxJSONDepth)}
	}
	return "", nil
}

// checkNumbers refuses numbers in params that are not finite, larger than
// maxNumber, or outside the range of a field the estimate reads. It walks
// the decoded value with json.Number, so 1e400 is seen (and refused)
// rather than failing or turning into +Inf later.
func checkNumbers(params []byte) *fieldError {
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return &fieldError{"params", err.Error()}
	}
	var bad *fieldError
	var walk func(path, key string, v any)
	walk = func(path, key string, v any) {
		if bad != nil {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(path+"."+k, k, e)
			}
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", "", e)
			}
		case json.Number:
			f, err := strconv.ParseFloat(string(x), 64)
			switch {
			case err != nil || math.IsInf(f, 0) || math.IsNaN(f):
				bad = &fieldError{path, fmt.Sprintf("%s is not a finite number", x)}
			case math.Abs(f) > maxNumber:
				bad = &fieldError{path, fmt.Sprintf("%s is out of range (the limit is ±%g)", x, maxNumber)}
			case path == "params."+key:
				if r, ok := numberRanges[key]; ok && (f < r[0] || f > r[1]) {
					bad = &fieldError{path, fmt.Sprintf("%s is out of range (%g to %g)", x, r[0], r[1])}
				}
			}
		}
	}
	walk("params", "", v)
	return bad
}

// validText reports whether s may be stored and compared as text: valid
// UTF-8 without NUL (PostgreSQL refuses both in TEXT columns, which made
// such input a 500).
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// textGuard answers 400 for a request whose path, query or
// Idempotency-Key header is not valid text, before any handler or query
// sees it (ids, cursors and idempotency keys end up in SQL).
func textGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		field := ""
		switch {
		case !validText(r.URL.Path):
			field = "path"
		case !validText(r.Header.Get("Idempotency-Key")):
			field = "Idempotency-Key"
		default:
			for k, vs := range r.URL.Query() {
				ok := validText(k)
				for _, v := range vs {
					ok = ok && validText(v)
				}
				if !ok {
					field = "query parameter " + strconv.Quote(strings.ToValidUTF8(strings.ReplaceAll(k, "\x00", ""), "?"))
					break
				}
			}
		}
		if field != "" {
			writeError(w, http.StatusBadRequest, "invalid_text", field+" must be valid UTF-8 without NUL characters",
				[]fieldError{{field, "must be valid UTF-8 without NUL characters"}})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// prettyLimit is the largest JSON the dashboard indents: indenting is
// linear in size times depth, so larger values are shown compact.
const prettyLimit = 8 << 10

// PrettyJSON indents small JSON for display and returns larger or deeper
// values as they are (compact, as stored): never re-indent unbounded input.
func PrettyJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > prettyLimit || jsonDepth(b) > MaxJSONDepth {
		return string(b)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return string(b)
	}
	return buf.String()
}

// mayReferUploads is the fast path of the upload checks: params can hold a
// gateway file_path only if the prefix appears literally or some string
// has an escape ("\u0061pi-assets/..." decodes to it), so the check is made
// on the decoded strings whenever either is present.
func mayReferUploads(params []byte) bool {
	return bytes.Contains(params, []byte(uploadRefPrefix)) || bytes.IndexByte(params, '\\') >= 0
}
