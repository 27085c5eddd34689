package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// inputs reads stdin at most once, for "-" file values and @- bodies.
type inputs struct {
	r    io.Reader
	used string // what consumed stdin, for the error on a second use
}

func (in *inputs) readAll() ([]byte, error) {
	if in.used != "" {
		return nil, fmt.Errorf("stdin was already used by %s", in.used)
	}
	in.used = "@-"
	return io.ReadAll(in.r)
}

// ref reads one input reference from stdin: the first line, or, when stdin
// is a JSON object printed by `hourglass … --json`, its first output (the
// local path when the file exists, else the URL).
func (in *inputs) ref(flag string) (string, error) {
	if in.used != "" {
		return "", fmt.Errorf("stdin was already used by %s; only one flag can read from -", in.used)
	}
	in.used = flag
	data, err := io.ReadAll(io.LimitReader(in.r, 16<<20))
	if err != nil {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return "", errors.New("stdin is empty; pipe a path or URL, or the --json output of another hourglass command")
	}
	if t[0] == '{' {
		var res struct {
			Outputs []struct {
				Path string `json:"path"`
				URL  string `json:"url"`
			} `json:"outputs"`
			Downloads []string `json:"downloads"`
			Status    string   `json:"status"`
			ID        string   `json:"id"`
		}
		// Several JSON objects (one per line) may come in: take the first.
		dec := json.NewDecoder(bytes.NewReader(t))
		if err := dec.Decode(&res); err != nil {
			return "", fmt.Errorf("stdin looks like JSON but does not parse: %v", err)
		}
		for _, o := range res.Outputs {
			if o.Path != "" {
				if _, err := os.Stat(o.Path); err == nil {
					return o.Path, nil
				}
			}
			if o.URL != "" {
				return o.URL, nil
			}
		}
		if len(res.Downloads) > 0 {
			return res.Downloads[0], nil
		}
		if res.ID != "" {
			return "", fmt.Errorf("the JSON on stdin (project %s, status %q) has no outputs", res.ID, res.Status)
		}
		return "", errors.New("the JSON on stdin has no outputs[].path, outputs[].url or downloads[]")
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(t)).ReadLine()
	return strings.TrimSpace(string(line)), nil
}

// localFile is an input given as a local path: uploaded before the create.
type localFile struct {
	path  string
	media string
	set   func(string) // stores the uploaded file_path in the body
}

// resolveFiles goes over every input-file value of the body: "-" is read
// from stdin; URLs and api-assets/ paths are kept; anything else must be a
// readable local file with an extension the field accepts. Local files get
// a placeholder api-assets/ path (so the body validates) and are returned
// for upload. All of this happens before any API call.
func (t *toolCmd) resolveFiles(body map[string]any, in *inputs) ([]*localFile, error) {
	var locals []*localFile
	for _, ref := range t.op.FileRefs(body) {
		f := fieldForPath(t.fields, ref.Pattern)
		name := ref.Pattern
		if f != nil {
			name = "--" + f.Flag
		}
		val, field := ref.Value, ref.Field
		set := func(s string) { _ = catalog.Set(body, field, s) }
		if val == "-" {
			r, err := in.ref(name)
			if err != nil {
				return nil, usageErrorf("%s -: %v", name, err)
			}
			val = r
			set(val)
		}
		if isRemoteRef(val) {
			continue
		}
		media, err := checkLocal(val, ref.Media)
		if err != nil {
			return nil, usageErrorf("%s: %v", name, err)
		}
		lf := &localFile{path: val, media: media, set: set}
		locals = append(locals, lf)
		set(fmt.Sprintf("api-assets/pending/%d%s", len(locals), strings.ToLower(filepath.Ext(val))))
	}
	return locals, nil
}

// isRemoteRef reports whether an input is sent as is: an http(s) URL or an
// uploaded api-assets/ path.
func isRemoteRef(s string) bool { return catalog.IsRemoteRef(s) }

// checkLocal checks a local input file: it exists, is a regular readable
// file, and its extension is one the field accepts.
func checkLocal(path string, media []string) (string, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	m := catalog.MediaOfExtension(ext)
	if m == "" || !contains(media, m) {
		var accepted []string
		for _, x := range media {
			accepted = append(accepted, catalog.Extensions[x]...)
		}
		what := fmt.Sprintf("unsupported file extension %q", ext)
		if ext == "" {
			what = "no file extension"
		} else if m != "" {
			what = fmt.Sprintf("%s is a %s file", filepath.Base(path), m)
		}
		return "", fmt.Errorf("%s: %s; this flag takes %s (%s)", path, what, strings.Join(media, " or "), strings.Join(accepted, ", "))
	}
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file", path)
		}
		return "", fmt.Errorf("%s: %v", path, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read: %v", path, errors.Unwrap(err))
	}
	f.Close()
	return m, nil
}

// walkFiles calls fn for every string at the dotted path (with "[]" steps
