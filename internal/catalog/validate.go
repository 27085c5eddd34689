package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one validation failure. Field is the dotted JSON path of the
// offending value ("assets.face_mappings[2].new_face"), empty for the body.
type FieldError struct {
	Field   string
	Message string
	// OutOfCatalog marks a value outside the catalog's enums or ranges:
	// the live API may accept it if the catalog is older than the API.
	OutOfCatalog bool
}

// Warning is something validation let through but a caller should show
// (CLI: stderr; gateway: a job event): an unknown field passed through, a
// URL without a file extension.
type Warning struct {
	Field   string
	Message string
}

func (w Warning) String() string {
	if w.Field == "" {
		return w.Message
	}
	return w.Field + ": " + w.Message
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError holds every failure found in one request body.
type ValidationError struct {
	Op     string
	Fields []FieldError
	// CatalogDate is the date of the catalog that refused (YYYY-MM-DD).
	CatalogDate string
}

// Error lists the failures, then Hint when there is one.
func (e *ValidationError) Error() string {
	if h := e.Hint(); h != "" {
		return e.Summary() + " (" + h + ")"
	}
	return e.Summary()
}

// Summary lists the failures.
func (e *ValidationError) Summary() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return strings.Join(msgs, "; ")
}

// Hint names the ways out when a value was refused only because the
// catalog does not know it: a newer catalog, or skipping local checks.
func (e *ValidationError) Hint() string {
	for _, f := range e.Fields {
		if f.OutOfCatalog {
			return "checked against the catalog of " + e.CatalogDate + "; the live API may accept newer values: " +
				"use a newer catalog (hourglass catalog update, --spec), or skip local checks with --no-validate, " +
				`WithoutValidation() or "validate": false on the gateway`
		}
	}
	return ""
}

// Extensions lists the file extensions the API accepts per media type.
var Extensions = map[string][]string{
	"video": {"mp4", "m4v", "mov", "webm"},
	"audio": {"mp3", "mpeg", "wav", "aac", "aiff", "flac"},
	"image": {"png", "jpg", "jpeg", "webp", "avif", "jp2", "tiff", "bmp"},
}

// MediaOfExtension returns the media type of a file extension (without the
// dot, any case), or "" when the API accepts it for no media type.
func MediaOfExtension(ext string) string {
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	for media, exts := range Extensions {
		for _, e := range exts {
			if e == ext {
				return media
			}
		}
	}
	return ""
}

// ValidateJSON checks a raw request body against the operation's request
// schema and the rules the spec states in prose. It returns nil or a
// *ValidationError listing every failure, sorted by field.
func (op *Operation) ValidateJSON(body []byte) error {
	_, err := op.CheckJSON(body)
	return err
}

// CheckJSON is ValidateJSON that also returns the warnings: unknown fields
// (passed through unchanged, never dropped) and URLs without a file
// extension. Callers show them; they never block a request.
func (op *Operation) CheckJSON(body []byte) ([]Warning, error) {
	if op.Request == nil {
		return nil, nil
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, op.refuse([]FieldError{{Message: "missing request body"}})
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, op.refuse([]FieldError{{Message: "request body is not valid JSON: " + err.Error()}})
	}
	if dec.More() {
		return nil, op.refuse([]FieldError{{Message: "request body has data after the JSON value"}})
	}
	return op.Check(v)
}

// Validate checks a decoded request body (as produced by encoding/json,
// with or without UseNumber) against the operation's rules.
func (op *Operation) Validate(v any) error {
	_, err := op.Check(v)
	return err
}

// Check is Validate that also returns the warnings (see CheckJSON).
func (op *Operation) Check(v any) ([]Warning, error) {
	if op.Request == nil {
		return nil, nil
	}
	var errs []FieldError
	var warns []Warning
	check(op.Request, v, "", &errs, &warns)
	if obj, ok := v.(map[string]any); ok {
		errs = append(errs, crossFieldRules(op, obj)...)
	}
	sort.SliceStable(warns, func(i, j int) bool { return warns[i].Field < warns[j].Field })
	if len(errs) == 0 {
		return warns, nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return warns, op.refuse(errs)
}

func (op *Operation) refuse(errs []FieldError) *ValidationError {
	return &ValidationError{Op: op.Name, Fields: errs, CatalogDate: op.Catalog().DateString()}
}

func join(p, name string) string {
	if p == "" {
		return name
	}
	return p + "." + name
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	if _, ok := number(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func check(s *Schema, v any, at string, errs *[]FieldError, warns *[]Warning) {
	add := func(format string, args ...any) {
		*errs = append(*errs, FieldError{Field: at, Message: fmt.Sprintf(format, args...)})
	}
	// outside marks a value the catalog's enums or ranges do not cover.
	outside := func(format string, args ...any) {
		*errs = append(*errs, FieldError{Field: at, Message: fmt.Sprintf(format, args...), OutOfCatalog: true})
	}
	if v == nil {
		if !s.Nullable {
			add("must not be null")
		}
		return
	}
	switch s.Type {
	case TypeObject:
		obj, ok := v.(map[string]any)
		if !ok {
			add("must be an object, got %s", typeName(v))
			return
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				*errs = append(*errs, FieldError{Field: join(at, r), Message: "is required"})
			}
		}
		// Unknown members are passed through, as the live API ignores
		// them; say so, since a typo would otherwise go unnoticed.
		for name := range obj {
			if s.Prop(name) == nil {
				*warns = append(*warns, Warning{Field: join(at, name), Message: "not in the catalog's schema; passed through unchanged"})
			}
		}
		for _, p := range s.Properties {
			if x, ok := obj[p.Name]; ok {
				check(p.Schema, x, join(at, p.Name), errs, warns)
			}
		}
	case TypeArray:
		arr, ok := v.([]any)
		if !ok {
			add("must be an array, got %s", typeName(v))
			return
		}
		if s.MinItems != nil && len(arr) < *s.MinItems {
			add("must have at least %d item(s), got %d", *s.MinItems, len(arr))
		}
		if s.MaxItems != nil && len(arr) > *s.MaxItems {
			add("must have at most %d items, got %d", *s.MaxItems, len(arr))
		}
		if s.Items != nil {
			for i, x := range arr {
				check(s.Items, x, fmt.Sprintf("%s[%d]", at, i), errs, warns)
			}
		}
	case TypeString:
		str, ok := v.(string)
		if !ok {
			add("must be a string, got %s", typeName(v))
			return
		}
		n := len([]rune(str))
		if s.MinLength != nil && n < *s.MinLength {
			if *s.MinLength == 1 {
				add("must not be empty")
			} else {
				add("must be at least %d characters, got %d", *s.MinLength, n)
			}
		}
		if s.MaxLength != nil && n > *s.MaxLength {
			outside("must be at most %d characters, got %d", *s.MaxLength, n)
		}
		if len(s.Enum) > 0 && !contains(s.Enum, str) {
			outside("must be one of %s, got %q", quoteList(s.Enum), str)
		}
		if s.Pattern != "" {
			// Patterns come from the generated catalog; its tests check they compile.
			if re, err := regexp.Compile(s.Pattern); err == nil && !re.MatchString(str) {
				add("must match %s, got %q", s.Pattern, str)
			}
		}
		if s.Format == "uri" && str != "" {
			if u, err := url.Parse(str); err != nil || u.Scheme == "" || u.Host == "" {
				add("must be an absolute URL, got %q", str)
			}
		}
		if s.File != nil && str != "" {
			msg, warn := checkFileRef(str, s.File.Media)
			if msg != "" {
				add("%s", msg)
			}
			if warn != "" {
				*warns = append(*warns, Warning{Field: at, Message: warn})
			}
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			add("must be a boolean, got %s", typeName(v))
		}
	case TypeNumber, TypeInteger:
		f, ok := number(v)
		if !ok {
			add("must be a number, got %s", typeName(v))
			return
		}
		if s.Type == TypeInteger && f != math.Trunc(f) {
			add("must be a whole number, got %s", fmtNum(f))
		}
		if s.Minimum != nil && f < *s.Minimum {
			outside("must be at least %s, got %s", fmtNum(*s.Minimum), fmtNum(f))
		}
		if s.Maximum != nil && f > *s.Maximum {
			outside("must be at most %s, got %s", fmtNum(*s.Maximum), fmtNum(f))
		}
		if s.MultipleOf != nil && *s.MultipleOf > 0 {
			q := f / *s.MultipleOf
			if math.Abs(q-math.Round(q)) > 1e-9 {
				add("must be a multiple of %s, got %s", fmtNum(*s.MultipleOf), fmtNum(f))
			}
		}
		if len(s.Enum) > 0 && !contains(s.Enum, fmtNum(f)) {
			outside("must be one of %s, got %s", strings.Join(s.Enum, ", "), fmtNum(f))
		}
	}
}

// StoragePrefixes are the Magic Hour storage paths a file field accepts
// besides URLs: uploads (api-assets/), saved items (saved-items/) and the
// older per-media paths the spec's own examples use.
var StoragePrefixes = []string{"api-assets/", "saved-items/", "video/", "image/", "audio/"}

// IsStoragePath reports whether ref is a Magic Hour storage path (see
// StoragePrefixes), as opposed to a URL or a local file.
func IsStoragePath(ref string) bool {
	for _, p := range StoragePrefixes {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

// IsURL reports whether ref is an absolute http(s) URL.
func IsURL(ref string) bool {
	u, err := url.Parse(ref)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkFileRef validates an input-file reference: a storage path (see
// StoragePrefixes) or an http(s) URL. It returns a refusal, or a warning for
// what the API may still take (a URL without a file extension: CDNs serve
// media from such URLs).
func checkFileRef(ref string, media []string) (refusal, warning string) {
	if IsStoragePath(ref) {
		prefix := ref[:strings.Index(ref, "/")+1]
		if strings.Contains(ref, "..") || strings.HasSuffix(ref, "/") || len(ref) == len(prefix) {
			return fmt.Sprintf("malformed file path %q", ref), ""
		}
		return "", ""
	}
	if !IsURL(ref) {
		return fmt.Sprintf("must be an http(s) URL or a Magic Hour file path (api-assets/..., saved-items/..., video|image|audio/...), got %q", ref), ""
	}
	u, _ := url.Parse(ref)
	ext := strings.TrimPrefix(path.Ext(u.Path), ".")
	if ext == "" {
		return "", fmt.Sprintf("URL %q has no file extension; the API needs the file to be one of %s", ref, acceptedExts(media))
	}
	m := MediaOfExtension(ext)
	if m == "" || !contains(media, m) {
		return fmt.Sprintf("unsupported file extension %q; accepted: %s", ext, acceptedExts(media)), ""
	}
	return "", ""
}

func acceptedExts(media []string) string {
	var out []string
	for _, m := range media {
		out = append(out, Extensions[m]...)
	}
	return strings.Join(out, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	if len(q) > 12 {
		return strings.Join(q[:12], ", ") + fmt.Sprintf(", … (%d values)", len(q))
	}
	return strings.Join(q, ", ")
}

// crossFieldRules applies the constraints the spec states in descriptions
// rather than in schema keywords: end after start, and the fields a source
// or mode selector makes required.
func crossFieldRules(op *Operation, obj map[string]any) []FieldError {
	var errs []FieldError
	start, hasStart := number(obj["start_seconds"])
	end, hasEnd := number(obj["end_seconds"])
	if op.Request.Prop("start_seconds") != nil && hasEnd {
		if !hasStart {
			start = 0
		}
		if end <= start {
			errs = append(errs, FieldError{Field: "end_seconds", Message: fmt.Sprintf("must be greater than start_seconds (%s), got %s", fmtNum(start), fmtNum(end))})
		}
	}
	assets, _ := obj["assets"].(map[string]any)
	if assets == nil {
		return errs
	}
	need := func(field, because string) {
		v, ok := assets[field]
		if s, isStr := v.(string); !ok || v == nil || (isStr && s == "") {
			errs = append(errs, FieldError{Field: "assets." + field, Message: "is required when " + because})
		}
		if arr, isArr := v.([]any); isArr && len(arr) == 0 {
			errs = append(errs, FieldError{Field: "assets." + field, Message: "must not be empty when " + because})
		}
	}
	as := op.Request.Prop("assets")
	if src, ok := assets["video_source"].(string); ok && as.Prop("video_source") != nil {
		switch src {
		case "file":
			need("video_file_path", `video_source is "file"`)
		case "youtube":
			need("youtube_url", `video_source is "youtube"`)
		}
	}
	if src, ok := assets["audio_source"].(string); ok && as.Prop("audio_source") != nil {
		switch src {
		case "file":
			need("audio_file_path", `audio_source is "file"`)
		case "youtube":
			need("youtube_url", `audio_source is "youtube"`)
		}
	}
	if as.Prop("face_swap_mode") != nil {
		mode, _ := assets["face_swap_mode"].(string)
		if mode == "" {
			mode = "all-faces"
		}
		switch mode {
		case "all-faces":
			field := "image_file_path"
			if as.Prop("source_file_path") != nil {
				field = "source_file_path"
			}
			need(field, `face_swap_mode is "all-faces"`)
		case "individual-faces":
			need("face_mappings", `face_swap_mode is "individual-faces"`)
		}
	}
	return errs
}

// IsRemoteRef reports whether an input-file value needs no upload: a URL or
// a Magic Hour storage path. A legacy video|image|audio/... value that
// names an existing local file is taken as that file, so a local folder
// named "video" keeps working.
func IsRemoteRef(ref string) bool {
	if IsURL(ref) || strings.HasPrefix(ref, "api-assets/") || strings.HasPrefix(ref, "saved-items/") {
		return true
	}
	if IsStoragePath(ref) {
		_, err := os.Stat(ref)
		return err != nil
	}
	return false
}
