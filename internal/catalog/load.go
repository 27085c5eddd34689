package catalog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// LoadError is a spec Load refused. What names the problem ("not JSON",
// "not OpenAPI 3", "missing operations POST /v1/files/upload-urls, ...").
type LoadError struct {
	Source string
	What   string
	Err    error
}

func (e *LoadError) Error() string {
	msg := "catalog: spec"
	if e.Source != "" {
		msg += " " + e.Source
	}
	msg += ": " + e.What
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *LoadError) Unwrap() error { return e.Err }

// LoadOption configures Load.
type LoadOption func(*loadConfig)

type loadConfig struct {
	source string
	date   time.Time
	times  []Timing
	hasT   bool
}

// WithSource records where the spec came from (a path or URL).
func WithSource(s string) LoadOption { return func(c *loadConfig) { c.source = s } }

// WithDate sets the catalog's date (default: now), e.g. the time the spec
// was fetched.
func WithDate(t time.Time) LoadOption { return func(c *loadConfig) { c.date = t } }

// WithTimes sets the processing-times table (default: the embedded one).
func WithTimes(t []Timing) LoadOption {
	return func(c *loadConfig) { c.times, c.hasT = t, true }
}

// requiredRoutes are the operations every hourglass component relies on.
var requiredRoutes = []string{
	"POST /v1/files/upload-urls",
	"GET /v1/video-projects/{id}", "DELETE /v1/video-projects/{id}",
	"GET /v1/image-projects/{id}", "DELETE /v1/image-projects/{id}",
	"GET /v1/audio-projects/{id}", "DELETE /v1/audio-projects/{id}",
}

// Load builds a catalog from an OpenAPI 3 spec document (JSON), checked with
// kin-openapi. A tool the processing-times table does not list gets its
// kind from its operationId or tag ("...createVideo", "Video Projects") and
// the median duration of that kind. A document that is not JSON, not
// OpenAPI 3, invalid, or lacks the operations hourglass needs is refused
// with a *LoadError naming what is wrong.
func Load(spec []byte, opts ...LoadOption) (*Catalog, error) {
	cfg := loadConfig{date: time.Now().UTC()}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	fail := func(what string, err error) (*Catalog, error) {
		return nil, &LoadError{Source: cfg.source, What: what, Err: err}
	}
	var head struct {
		OpenAPI string `json:"openapi"`
		Swagger string `json:"swagger"`
	}
	if err := json.Unmarshal(spec, &head); err != nil {
		return fail("not JSON", err)
	}
	if !strings.HasPrefix(head.OpenAPI, "3.") {
		got := head.OpenAPI
		if got == "" && head.Swagger != "" {
			got = "swagger " + head.Swagger
		}
		if got == "" {
			got = "no openapi field"
		}
		return fail(fmt.Sprintf("not OpenAPI 3 (%s)", got), nil)
	}
	loader := openapi3.NewLoader()
	loader.IncludeOrigin = true
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return fail("not a readable OpenAPI document", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return fail("invalid OpenAPI document", err)
	}
	if !cfg.hasT {
		cfg.times = Default().Times
	}
	sum := sha256.Sum256(spec)
	c := &Catalog{Source: cfg.source, Date: cfg.date.UTC().Truncate(time.Second), SHA256: hex.EncodeToString(sum[:]), Times: cfg.times}
	if doc.Info != nil {
		c.Version = doc.Info.Version
	}
	if doc.Paths == nil {
		return fail("no paths", nil)
	}
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, p := range paths {
		item := doc.Paths.Value(p)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			o := item.GetOperation(method)
			if o == nil {
				continue
			}
			op, err := distill(p, method, o, cfg.times)
			if err != nil {
				return fail(fmt.Sprintf("operation %s %s", method, p), err)
			}
			c.Ops = append(c.Ops, op)
		}
	}
	var missing []string
	for _, r := range requiredRoutes {
		m, p, _ := strings.Cut(r, " ")
		if c.Route(m, strings.ReplaceAll(p, "{id}", "x")) == nil {
			missing = append(missing, r)
		}
	}
	if len(c.Creates()) == 0 {
		missing = append(missing, "any POST /v1/<tool> create operation")
	}
	if len(missing) > 0 {
		return fail("missing operations hourglass needs: "+strings.Join(missing, ", "), nil)
	}
	c.link()
	return c, nil
}

// ParseTimes reads processing-times.tsv: "path<TAB>kind<TAB>p50_seconds"
// lines, # comments and a header.
func ParseTimes(b []byte) ([]Timing, error) {
	var out []Timing
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "path\t") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 3 {
			return nil, fmt.Errorf("processing times: bad line %q", line)
		}
		n, err := strconv.Atoi(cols[2])
		if err != nil {
			return nil, fmt.Errorf("processing times: bad p50 in %q: %w", line, err)
		}
		out = append(out, Timing{Path: cols[0], Kind: Kind(cols[1]), P50: time.Duration(n) * time.Second})
	}
	return out, sc.Err()
}

func timingOf(times []Timing, path string) (Timing, bool) {
	for _, t := range times {
		if t.Path == path {
			return t, true
		}
	}
	return Timing{}, false
}

func distill(path, method string, o *openapi3.Operation, times []Timing) (*Operation, error) {
	op := &Operation{ID: o.OperationID, Method: method, Path: path, Summary: o.Summary,
		Description: strings.TrimSpace(o.Description), Tags: o.Tags}
	if err := classify(op, o, times); err != nil {
		return nil, err
	}
	if op.Role == RoleCreate && op.Kind != KindFaceDetection {
		if t, ok := timingOf(times, path); ok {
			op.P50 = t.P50
		} else {
			op.P50, op.P50Estimated = medianP50(times, op.Kind), true
		}
	}
	for _, pr := range o.Parameters {
		if pr == nil || pr.Value == nil || pr.Value.In == "path" {
			continue
		}
		p := Parameter{Name: pr.Value.Name, In: pr.Value.In, Required: pr.Value.Required}
		if pr.Value.Schema != nil {
			s, err := convert(pr.Value.Schema.Value, pr.Value.Name, nil, op.Name)
			if err != nil {
				return nil, err
			}
			if s.Description == "" {
				s.Description = strings.TrimSpace(pr.Value.Description)
			}
			p.Schema = s
		}
		op.Params = append(op.Params, p)
	}
	if o.RequestBody != nil && o.RequestBody.Value != nil {
		mt := o.RequestBody.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			return nil, errors.New("request body is not application/json")
		}
		var files []FilePath
		s, err := convert(mt.Schema.Value, "", &files, op.Name)
		if err != nil {
			return nil, err
		}
		op.Request, op.Files = s, files
	}
	if o.Responses == nil {
		return nil, errors.New("no responses")
	}
	for code, r := range o.Responses.Map() {
		n, err := strconv.Atoi(code)
		if err != nil {
			if code == "default" {
				continue
			}
			return nil, fmt.Errorf("response code %q: %w", code, err)
		}
		op.Statuses = append(op.Statuses, n)
		if r.Value == nil {
			continue
		}
		mt := r.Value.Content.Get("application/json")
		if n >= 200 && n < 300 {
			op.SuccessStatus = n
			if mt != nil && mt.Schema != nil {
				s, err := convert(mt.Schema.Value, "", nil, op.Name)
				if err != nil {
					return nil, err
				}
				op.Response = s
			}
			continue
		}
		if mt != nil && mt.Schema != nil && mt.Schema.Value != nil {
			if cs := mt.Schema.Value.Properties["code"]; cs != nil && cs.Value != nil {
				for _, v := range cs.Value.Enum {
					if s, ok := v.(string); ok {
						if op.ErrorCodes == nil {
							op.ErrorCodes = map[int][]string{}
						}
						op.ErrorCodes[n] = append(op.ErrorCodes[n], s)
					}
				}
			}
		}
	}
	if op.SuccessStatus == 0 {
		return nil, errors.New("no success response")
	}
	sort.Ints(op.Statuses)
	op.Prices, op.TierRules = pricing(op)
	return op, nil
}

// classify derives the catalog's naming and grouping of an operation from
// its route; routes it has no model for get RoleOther.
func classify(op *Operation, o *openapi3.Operation, times []Timing) error {
	rest := strings.TrimPrefix(op.Path, "/v1/")
	method := op.Method
	set := func(name, goName string, kind Kind, role Role) error {
		op.Name, op.GoName, op.Kind, op.Role = name, goName, kind, role
		return nil
	}
	switch {
	case rest == "files/upload-urls" && method == "POST":
		return set("files.upload-urls", "CreateUploadURLs", KindFiles, RoleUploadURLs)
	case rest == "face-detection" && method == "POST":
		return set("face-detection", "FaceDetection", KindFaceDetection, RoleCreate)
	case rest == "face-detection/{id}" && method == "GET":
		return set("face-detection.get", "GetFaceDetection", KindFaceDetection, RoleGet)
	case rest == "account" && method == "GET":
		return set("account.get", "GetAccount", KindAccount, RoleAccount)
	case rest == "saved-items" && method == "GET":
		return set("saved-items.list", "ListSavedItems", KindSavedItems, RoleList)
	case strings.HasSuffix(rest, "-projects/{id}") && (method == "GET" || method == "DELETE"):
		k := strings.TrimSuffix(rest, "-projects/{id}")
		verb := strings.ToLower(method)
		return set(k+"-projects."+verb, camel(verb)+camel(k)+"Project", Kind(k), Role(verb))
	case method == "POST" && rest != "" && !strings.Contains(rest, "/"):
		kind, err := toolKind(op.Path, o, times)
		if err != nil {
			return err
		}
		return set(rest, goIdent(rest), kind, RoleCreate)
	}
	name := strings.ToLower(method) + " " + op.Path
	return set(name, "", "", RoleOther)
}

// toolKind is the project kind of a create route: the processing-times
// table's, else what the spec says (operationId "...createVideo", tag
// "Video Projects", or the "Get video Project API" link of the answer).
func toolKind(path string, o *openapi3.Operation, times []Timing) (Kind, error) {
	if t, ok := timingOf(times, path); ok {
		return t.Kind, nil
	}
	kinds := []Kind{KindVideo, KindImage, KindAudio}
	for _, k := range kinds {
		if strings.HasSuffix(strings.ToLower(o.OperationID), "create"+string(k)) {
			return k, nil
		}
	}
	for _, k := range kinds {
		for _, tag := range o.Tags {
			if strings.EqualFold(tag, string(k)+" projects") {
				return k, nil
			}
		}
	}
	if o.Responses != nil {
		for _, r := range o.Responses.Map() {
			if r.Value == nil {
				continue
			}
			if mt := r.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil && mt.Schema.Value != nil {
				if id := mt.Schema.Value.Properties["id"]; id != nil && id.Value != nil {
					for _, k := range kinds {
						if strings.Contains(id.Value.Description, "/"+string(k)+"-projects/") {
							return k, nil
						}
					}
				}
			}
		}
	}
	return "", fmt.Errorf("create route %s: cannot tell its project kind (no processing time, operationId, tag or project link)", path)
}

var initialisms = map[string]string{"ai": "AI", "qr": "QR", "gif": "GIF", "url": "URL", "urls": "URLs", "id": "ID", "fps": "FPS", "uri": "URI", "ugc": "UGC"}

// goIdent turns "ai-qr-code-generator" into "AIQRCodeGenerator".
func goIdent(s string) string {
	var sb strings.Builder
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ' ' }) {
		if v, ok := initialisms[strings.ToLower(w)]; ok {
			sb.WriteString(v)
			continue
		}
		sb.WriteString(camel(w))
	}
	return sb.String()
}

func camel(w string) string {
	if w == "" {
		return w
	}
	return strings.ToUpper(w[:1]) + w[1:]
}

// fileMedia decides whether a request field is an input file and which media
// it takes. The spec marks input files only in prose ("file_path field from
// the response of the upload urls API"), so the field's name decides.
func fileMedia(name, opName string, s *openapi3.Schema) []string {
	if s == nil || !s.Type.Is("string") {
		return nil
	}
	isFile := strings.HasSuffix(name, "_file_path") || strings.HasSuffix(name, "_file_paths") || name == "new_face" || name == "file_path"
	if !isFile {
		return nil
	}
	switch {
	case strings.Contains(name, "video"):
		return []string{"video"}
	case strings.Contains(name, "audio"):
		return []string{"audio"}
	case name == "target_file_path" && opName == "face-detection":
		return []string{"image", "video"}
	default:
		return []string{"image"}
	}
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// convert flattens a kin-openapi schema into a *Schema, recording the
// input-file fields it finds under path into files (when non-nil).
func convert(s *openapi3.Schema, path string, files *[]FilePath, opName string) (*Schema, error) {
	if s == nil {
		return nil, nil
	}
	if len(s.OneOf)+len(s.AnyOf)+len(s.AllOf) > 0 {
		return nil, fmt.Errorf("%s: composite schemas are not supported by the catalog", path)
	}
	types := s.Type.Slice()
	if len(types) != 1 {
		return nil, fmt.Errorf("%s: expected exactly one type, got %v", path, types)
	}
	out := &Schema{Type: Type(types[0]), Format: s.Format, Description: strings.TrimSpace(s.Description),
		Nullable: s.Nullable, Deprecated: s.Deprecated, Pattern: s.Pattern}
	for _, v := range s.Enum {
		switch x := v.(type) {
		case nil:
			out.Nullable = true
		case string:
			out.Enum = append(out.Enum, x)
		case float64:
			out.Enum = append(out.Enum, strconv.FormatFloat(x, 'f', -1, 64))
		case bool:
			out.Enum = append(out.Enum, strconv.FormatBool(x))
		default:
			return nil, fmt.Errorf("%s: unsupported enum value %v", path, v)
		}
	}
	var err error
	if s.Default != nil {
		if out.Default, err = jsonText(s.Default); err != nil {
			return nil, err
		}
	}
	if s.Example != nil {
		if out.Example, err = jsonText(s.Example); err != nil {
			return nil, err
		}
	}
	if s.ExclusiveMin.IsTrue() || s.ExclusiveMax.IsTrue() {
		return nil, fmt.Errorf("%s: exclusive bounds are not supported by the catalog", path)
	}
	out.Minimum, out.Maximum, out.MultipleOf = s.Min, s.Max, s.MultipleOf
	if s.MinLength > 0 {
		n := int(s.MinLength)
		out.MinLength = &n
	}
	if s.MaxLength != nil {
		n := int(*s.MaxLength)
		out.MaxLength = &n
	}
	if s.MinItems > 0 {
		n := int(s.MinItems)
		out.MinItems = &n
	}
	if s.MaxItems != nil {
		n := int(*s.MaxItems)
		out.MaxItems = &n
	}
	name := path[strings.LastIndex(path, ".")+1:]
	name = strings.TrimSuffix(name, "[]")
	if files != nil {
		if media := fileMedia(name, opName, s); media != nil {
			out.File = &FileField{Media: media}
			*files = append(*files, FilePath{Path: path, Media: media})
		}
	}
	switch out.Type {
	case TypeObject:
		for _, pn := range propertyOrder(s) {
			child := pn
			if path != "" {
				child = path + "." + pn
			}
			cs, err := convert(s.Properties[pn].Value, child, files, opName)
			if err != nil {
				return nil, err
			}
			out.Properties = append(out.Properties, Property{Name: pn, Schema: cs})
		}
		out.Required = s.Required
	case TypeArray:
		if s.Items == nil || s.Items.Value == nil {
			return nil, fmt.Errorf("%s: array without items", path)
		}
		items := s.Items.Value
		if files != nil && items.Type.Is("string") {
			// a string array of file paths: the items are the file fields.
			if media := fileMedia(name, opName, items); media != nil {
				is, err := convert(items, path+"[]", nil, opName)
				if err != nil {
					return nil, err
				}
				is.File = &FileField{Media: media}
				*files = append(*files, FilePath{Path: path + "[]", Media: media})
				out.Items = is
				return out, nil
			}
		}
		if out.Items, err = convert(items, path+"[]", files, opName); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// propertyOrder returns the object's property names in the order the spec
// lists them (kin-openapi keeps properties in a map; the loader's origin
// tracking remembers each key's line).
func propertyOrder(s *openapi3.Schema) []string {
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	pos := func(n string) (int, int) {
		ref := s.Properties[n]
		if ref != nil && ref.Value != nil && ref.Value.Origin != nil && ref.Value.Origin.Key != nil {
			return ref.Value.Origin.Key.Line, ref.Value.Origin.Key.Column
		}
		return 0, 0
	}
	sort.Slice(names, func(i, j int) bool {
		li, ci := pos(names[i])
		lj, cj := pos(names[j])
		if li != lj {
			return li < lj
		}
		if ci != cj {
			return ci < cj
		}
		return names[i] < names[j]
	})
	return names
}
