// Package batch runs many Magic Hour jobs from one file: JSONL (one
// {"tool", "params", "key"?, "name"?} object per line) or CSV (columns
// tool, key, name and one column per parameter path such as style.prompt).
//
// A batch is durable and resumable. Every line has an idempotency key (its
// "key", else a hash of its content); the state of every line lives in a
// manifest beside the input (JSONL, one entry per input line, rewritten
// atomically) and, between two rewrites, in an append-only journal that is
// fsynced before and after every create. Rerunning the same file after a
// crash, a kill -9 or Ctrl-C submits nothing twice: lines already created
// are waited for (not created again), finished ones are skipped, and a
// create whose answer was lost is never resent blindly (see
// StatusOutcomeUnknown).
//
// The runner talks to Magic Hour (or the emulator) through the SDK, or to
// an hourglass gateway through POST /api/batches.
package batch

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Line is one job of a batch, as read from the input file.
type Line struct {
	// N is the line's number: its line in a JSONL file, its record's line
	// in a CSV file (the header is line 1), or, when the input is a
	// manifest, the line number the manifest recorded.
	N      int
	Tool   string
	Params json.RawMessage // compact JSON object
	// Key is the idempotency key: the line's "key", else "h-" and a hash
	// of the tool, params and name (with the occurrence number appended
	// for the second and later identical lines, so that repeating a line
	// asks for another job).
	Key  string
	Name string
	// Prev is the line's recorded state when the input is a manifest.
	Prev *Entry
}

// LineError is one problem of one input line.
type LineError struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e LineError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Message)
}

// InvalidError lists every bad line of an input file.
type InvalidError struct {
	Lines []LineError
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid line(s)", len(e.Lines))
	for i, l := range e.Lines {
		if i == 20 {
			fmt.Fprintf(&b, "; and %d more", len(e.Lines)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(l.Error())
	}
	return b.String()
}

// Input is a parsed batch file.
type Input struct {
	// Records has one entry per input record (blank JSONL lines are not
	// records), valid or not, in file order.
	Records []Record
	// Manifest is true when the file is a manifest written by a previous
	// run (every record carries a status).
	Manifest bool
}

// Record is one input record: a valid Line, or the errors that make it
// invalid (Line then holds what could be read).
type Record struct {
	Line   Line
	Errors []LineError
}

// Valid reports whether the record has no errors.
func (r Record) Valid() bool { return len(r.Errors) == 0 }

// Errors returns every line error of the input, in line order.
func (in *Input) Errors() []LineError {
	var out []LineError
	for _, r := range in.Records {
		out = append(out, r.Errors...)
	}
	return out
}

// MaxLineBytes bounds one JSONL line.
const MaxLineBytes = 4 << 20

// ReadFile parses a batch file: CSV when its name ends in .csv, else JSONL.
func ReadFile(path string) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return parseCSV(f, filepath.Dir(path))
	}
	return parseJSONL(f, filepath.Dir(path))
}

// jsonlFields are the keys a JSONL line may have: the input's own and, so
// that a manifest can be fed back in, the manifest's.
var jsonlFields = map[string]bool{"tool": true, "params": true, "key": true, "name": true}

// ParseJSONL reads one job per non-blank line. Every bad line is reported,
// none stops the parse.
func ParseJSONL(r io.Reader) (*Input, error) { return parseJSONL(r, ".") }

// parseJSONL is ParseJSONL with local input files relative to base.
func parseJSONL(r io.Reader, base string) (*Input, error) {
	in := &Input{}
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	manifestLines := 0
	for {
		raw, err := readLine(br)
		if len(raw) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		n++
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			if err != nil {
				break
			}
			continue
		}
		rec := parseJSONLine(n, raw, base)
		if rec.Line.Prev != nil {
			manifestLines++
		}
		in.Records = append(in.Records, rec)
		if err != nil {
			break
		}
	}
	in.Manifest = manifestLines > 0 && manifestLines == len(in.Records)
	if !in.Manifest {
		for i := range in.Records {
			in.Records[i].Line.Prev = nil
		}
	}
	finishKeys(in)
	return in, nil
}

// readLine reads one line without its newline; a line longer than
// MaxLineBytes is returned truncated to that length (and then fails to
// parse) while the rest is skipped.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= MaxLineBytes {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

func parseJSONLine(n int, raw []byte, base string) Record {
	rec := Record{Line: Line{N: n}}
	bad := func(field, msg string) Record {
		rec.Errors = append(rec.Errors, LineError{Line: n, Field: field, Message: msg})
		return rec
	}
	if len(raw) >= MaxLineBytes {
		return bad("", fmt.Sprintf("line longer than %d bytes", MaxLineBytes))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return bad("", "not a JSON object: "+err.Error())
	}
	if _, ok := obj["status"]; ok {
		// A manifest entry: its own line number and state come along.
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return bad("", "unreadable manifest entry: "+err.Error())
		}
		if e.Line > 0 {
			rec.Line.N = e.Line
		}
		rec.Line.Prev = &e
	} else {
		var unknown []string
		for k := range obj {
			if !jsonlFields[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			bad(k, "unknown field (a line has tool, params, key and name)")
		}
	}
	str := func(name string) string {
		v, ok := obj[name]
		if !ok || string(v) == "null" {
			return ""
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			bad(name, "must be a string")
			return ""
		}
		return s
	}
	rec.Line.Tool, rec.Line.Key, rec.Line.Name = str("tool"), str("key"), str("name")
	params := bytes.TrimSpace(obj["params"])
	if len(params) == 0 || string(params) == "null" {
		params = []byte("{}")
	}
	if params[0] != '{' {
		return bad("params", "must be a JSON object")
	}
	rec.Line.Params = params
	rec.Errors = append(rec.Errors, checkLine(&rec.Line, base)...)
	return rec
}

// ParseCSV reads a header (tool, key, name, params and parameter paths
// such as style.prompt or image_count) and one job per record. A cell is
// typed by the tool's request schema: numbers, booleans, and JSON for
// arrays and objects; an empty cell leaves the parameter out. A params
// column, if present, holds a JSON object the other columns add to.
func ParseCSV(r io.Reader) (*Input, error) { return parseCSV(r, ".") }

// parseCSV is ParseCSV with local input files relative to base.
func parseCSV(r io.Reader, base string) (*Input, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return &Input{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	cols := make([]string, len(header))
	seen := map[string]bool{}
	hasTool := false
	var headerErrs []LineError
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		h = strings.TrimPrefix(h, "params.")
		cols[i] = h
		if h == "" {
			headerErrs = append(headerErrs, LineError{Line: 1, Field: fmt.Sprintf("column %d", i+1), Message: "empty column name"})
			continue
		}
		if seen[h] {
			headerErrs = append(headerErrs, LineError{Line: 1, Field: h, Message: "duplicate column"})
		}
		seen[h] = true
		hasTool = hasTool || h == "tool"
	}
	if !hasTool {
		headerErrs = append(headerErrs, LineError{Line: 1, Field: "tool", Message: "the header has no tool column"})
	}
	in := &Input{}
	if len(headerErrs) > 0 {
		in.Records = append(in.Records, Record{Line: Line{N: 1}, Errors: headerErrs})
		return in, nil
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				in.Records = append(in.Records, Record{Line: Line{N: pe.StartLine}, Errors: []LineError{{Line: pe.StartLine, Message: "CSV: " + pe.Err.Error()}}})
				continue
			}
			return nil, err
		}
		in.Records = append(in.Records, csvRecord(line, cols, row, base))
	}
	finishKeys(in)
	return in, nil
}

func csvRecord(n int, cols, row []string, base string) Record {
	rec := Record{Line: Line{N: n}}
	bad := func(field, msg string) {
		rec.Errors = append(rec.Errors, LineError{Line: n, Field: field, Message: msg})
	}
	if len(row) != len(cols) {
		bad("", fmt.Sprintf("%d cells for %d columns", len(row), len(cols)))
		return rec
	}
	get := func(name string) string {
		for i, c := range cols {
			if c == name {
				return strings.TrimSpace(row[i])
			}
		}
		return ""
	}
	rec.Line.Tool, rec.Line.Key, rec.Line.Name = get("tool"), get("key"), get("name")
	body := map[string]any{}
	if p := get("params"); p != "" {
		dec := json.NewDecoder(strings.NewReader(p))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil || body == nil {
			bad("params", "must be a JSON object")
			body = map[string]any{}
		}
	}
	op := catalog.Lookup(rec.Line.Tool)
	for i, c := range cols {
		switch c {
		case "tool", "key", "name", "params":
			continue
		}
		cell := row[i]
		if strings.TrimSpace(cell) == "" {
			continue
		}
		var s *catalog.Schema
		if op != nil && op.Request != nil {
			s = schemaAt(op.Request, c)
			if s == nil {
				bad("params."+c, "not a parameter of "+op.Name)
				continue
			}
		}
		v, err := typedCell(s, cell)
		if err != nil {
			bad("params."+c, err.Error())
			continue
		}
		if err := setPath(body, c, v); err != nil {
			bad("params."+c, err.Error())
		}
	}
	params, err := json.Marshal(body)
	if err != nil {
		bad("params", err.Error())
		return rec
	}
	rec.Line.Params = params
	rec.Errors = append(rec.Errors, checkLine(&rec.Line, base)...)
	return rec
}

// schemaAt follows a dotted path through object schemas.
func schemaAt(s *catalog.Schema, path string) *catalog.Schema {
	for _, seg := range strings.Split(path, ".") {
		if s == nil || s.Type != catalog.TypeObject {
			return nil
		}
		s = s.Prop(seg)
	}
	return s
}

// typedCell turns a CSV cell into the JSON value its schema asks for (a
// string when the schema is unknown).
func typedCell(s *catalog.Schema, cell string) (any, error) {
	if s == nil {
		return cell, nil
	}
	t := strings.TrimSpace(cell)
	switch s.Type {
	case catalog.TypeInteger:
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("must be an integer, not %q", cell)
		}
		return n, nil
	case catalog.TypeNumber:
		if _, err := strconv.ParseFloat(t, 64); err != nil {
			return nil, fmt.Errorf("must be a number, not %q", cell)
		}
		return json.Number(t), nil
	case catalog.TypeBoolean:
		b, err := strconv.ParseBool(t)
		if err != nil {
			return nil, fmt.Errorf("must be true or false, not %q", cell)
		}
		return b, nil
	case catalog.TypeArray, catalog.TypeObject:
		dec := json.NewDecoder(strings.NewReader(t))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			if s.Type == catalog.TypeArray && s.Items != nil && s.Items.Type == catalog.TypeString {
				return []any{cell}, nil // one plain string: a one-element array
			}
			return nil, fmt.Errorf("must be JSON (%s)", s.Type)
		}
		return v, nil
	}
	return cell, nil
}

// setPath sets body[a][b]... = v for the dotted path "a.b".
func setPath(body map[string]any, path string, v any) error {
	segs := strings.Split(path, ".")
	m := body
	for _, seg := range segs[:len(segs)-1] {
		next, ok := m[seg]
		if !ok {
			child := map[string]any{}
			m[seg] = child
			m = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", seg)
		}
		m = child
	}
	m[segs[len(segs)-1]] = v
	return nil
}

// checkLine validates a line against the catalog and compacts its params.
// An input-file field may hold a local file (relative to base): it must
// exist, and is validated as the upload it becomes at create time.
func checkLine(l *Line, base string) []LineError {
	var errs []LineError
	bad := func(field, msg string) { errs = append(errs, LineError{Line: l.N, Field: field, Message: msg}) }
	if len(l.Key) > 200 {
		bad("key", "longer than 200 characters")
	}
	if strings.ContainsAny(l.Key, "\n\r") {
		bad("key", "must be one line")
	}
	if l.Tool == "" {
		bad("tool", "is required")
		return errs
	}
	op := catalog.Lookup(l.Tool)
	if op == nil || op.Role != catalog.RoleCreate {
		bad("tool", fmt.Sprintf("unknown tool %q", l.Tool))
		return errs
	}
	l.Tool = op.Name
	if l.Name != "" && op.Request != nil && op.Request.Prop("name") != nil {
		// "name" is the project's name at Magic Hour too, unless params set one.
		var body map[string]json.RawMessage
		if json.Unmarshal(l.Params, &body) == nil {
			if _, ok := body["name"]; !ok {
				nb, _ := json.Marshal(l.Name)
				body["name"] = nb
				l.Params, _ = json.Marshal(body)
			}
		}
	}
	check := l.Params
	if locals, errs2 := localFiles(op, l.Params, base); len(errs2) > 0 {
		for _, e := range errs2 {
			bad(e.Field, e.Message)
		}
		return errs
	} else if len(locals) > 0 {
		check = withUploads(l.Params, locals, func(lf localFile) string { return "api-assets/local/upload." + lf.ext })
	}
	if err := op.ValidateJSON(check); err != nil {
		var ve *catalog.ValidationError
		if !errors.As(err, &ve) {
			bad("params", err.Error())
			return errs
		}
		for _, f := range ve.Fields {
			field := "params"
			if f.Field != "" {
				field += "." + f.Field
			}
			bad(field, f.Message)
		}
		return errs
	}
	var b bytes.Buffer
	if err := json.Compact(&b, l.Params); err != nil {
		bad("params", err.Error())
		return errs
	}
	l.Params = b.Bytes()
	return errs
}

// finishKeys derives the missing keys and reports duplicate given keys.
func finishKeys(in *Input) {
	given := map[string]int{} // key → line
	occurrences := map[string]int{}
	for i := range in.Records {
		rec := &in.Records[i]
		l := &rec.Line
		if l.Key != "" {
			if first, dup := given[l.Key]; dup {
				rec.Errors = append(rec.Errors, LineError{Line: l.N, Field: "key", Message: fmt.Sprintf("duplicate of line %d's key", first)})
				continue
			}
			given[l.Key] = l.N
			continue
		}
		if !rec.Valid() {
			continue
		}
		h := contentHash(l)
		occurrences[h]++
		l.Key = "h-" + h
		if k := occurrences[h]; k > 1 {
			l.Key += "-" + strconv.Itoa(k)
		}
	}
}

// contentHash is a stable hash of what a line asks for: its tool, its
// params (keys sorted, numbers as written) and its name.
func contentHash(l *Line) string {
	var params any
	dec := json.NewDecoder(bytes.NewReader(l.Params))
	dec.UseNumber()
	_ = dec.Decode(&params)
	canon, _ := json.Marshal(params) // maps marshal with sorted keys
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", l.Tool, canon, l.Name)
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// localFile is an input-file field of a line that names a local file.
type localFile struct {
	field string // concrete dotted path, e.g. "assets.image_file_path"
	path  string // the file, resolved
	ext   string
}

// localFiles finds the input-file values of params that are neither URLs
// nor Magic Hour storage paths, resolved against base.
func localFiles(op *catalog.Operation, params json.RawMessage, base string) ([]localFile, []LineError) {
	var body map[string]any
	if err := json.Unmarshal(params, &body); err != nil {
		return nil, nil
	}
	var out []localFile
	var errs []LineError
	for _, ref := range op.FileRefs(body) {
		if catalog.IsURL(ref.Value) || catalog.IsStoragePath(ref.Value) || strings.Contains(ref.Value, "://") {
			continue
		}
		p := ref.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			errs = append(errs, LineError{Field: "params." + ref.Field, Message: fmt.Sprintf("no such file %q (a local file, an http(s) URL or an api-assets/ path)", ref.Value)})
			continue
		}
		ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(p), "."))
		if media := catalog.MediaOfExtension(ext); media == "" || !contains(ref.Media, media) {
			errs = append(errs, LineError{Field: "params." + ref.Field, Message: fmt.Sprintf("%s: the API takes %s files here", ref.Value, strings.Join(ref.Media, " or "))})
			continue
		}
		out = append(out, localFile{field: ref.Field, path: p, ext: ext})
	}
	return out, errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// withUploads returns params with each local file replaced by the path
// path(lf) gives.
func withUploads(params json.RawMessage, locals []localFile, path func(localFile) string) json.RawMessage {
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return params
	}
	for _, lf := range locals {
		_ = catalog.Set(body, lf.field, path(lf))
	}
	out, err := json.Marshal(body)
	if err != nil {
		return params
	}
	return out
}
