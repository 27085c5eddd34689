package batch

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// DefaultNameTemplate names outputs by input line and output number.
const DefaultNameTemplate = "{line}-{n}.{ext}"

var tokenRE = regexp.MustCompile(`\{([a-z]+)\}`)

var knownTokens = map[string]bool{"line": true, "key": true, "name": true, "id": true, "n": true, "ext": true}

// namer renders output names from a template with {line}, {key}, {name}
// (the line's name, else its key), {id} (the job id), {n} (the output's
// number from 0) and {ext}. Values are made safe for file names; the
// template itself may contain "/" for subfolders but never leave the
// output folder.
type namer struct {
	tmpl string
}

func newNamer(tmpl string) (*namer, error) {
	for _, m := range tokenRE.FindAllStringSubmatch(tmpl, -1) {
		if !knownTokens[m[1]] {
			return nil, fmt.Errorf("unknown placeholder {%s} in %q (use {line}, {key}, {name}, {id}, {n}, {ext})", m[1], tmpl)
		}
	}
	clean := filepath.ToSlash(filepath.Clean(tokenRE.ReplaceAllString(tmpl, "x")))
	if filepath.IsAbs(tmpl) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(clean, "/../") {
		return nil, fmt.Errorf("name template %q leaves the output folder", tmpl)
	}
	if strings.TrimSpace(tmpl) == "" {
		return nil, fmt.Errorf("empty name template")
	}
	return &namer{tmpl: tmpl}, nil
}

var unsafeRE = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

func safe(s string) string {
	s = unsafeRE.ReplaceAllString(s, "_")
	s = strings.Trim(s, "._")
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// render returns the relative file name of output n of a line.
func (nm *namer) render(line int, key, name, id string, n int, ext string) string {
	if name == "" {
		name = key
	}
	out := tokenRE.ReplaceAllStringFunc(nm.tmpl, func(tok string) string {
		switch tok {
		case "{line}":
			return strconv.Itoa(line)
		case "{key}":
			return safe(key)
		case "{name}":
			return safe(name)
		case "{id}":
			return safe(id)
		case "{n}":
			return strconv.Itoa(n)
		case "{ext}":
			return safe(ext)
		}
		return tok
	})
	if n > 0 && !strings.Contains(nm.tmpl, "{n}") {
		// Several outputs and no {n}: number the later ones.
		ext := filepath.Ext(out)
		out = strings.TrimSuffix(out, ext) + "-" + strconv.Itoa(n) + ext
	}
	return filepath.FromSlash(out)
}

type nameClash struct {
	idx int
	err LineError
}

// checkUnique reports lines whose outputs would get the same name as an
// earlier line's (only possible when the template has no {line}, {key}
// or {id}).
func (nm *namer) checkUnique(recs []Record) []nameClash {
	for _, tok := range []string{"{line}", "{key}", "{id}"} {
		if strings.Contains(nm.tmpl, tok) {
			return nil
		}
	}
	seen := map[string]int{}
	var out []nameClash
	for i, r := range recs {
		if !r.Valid() {
			continue
		}
		n := nm.render(r.Line.N, r.Line.Key, r.Line.Name, "", 0, "ext")
		if first, dup := seen[n]; dup {
			out = append(out, nameClash{i, LineError{Line: r.Line.N, Field: "name",
				Message: fmt.Sprintf("its outputs would be named %q like line %d's: give each line its own name, or put {line} or {key} in the name template", n, first)}})
			continue
		}
		seen[n] = r.Line.N
	}
	return out
}
