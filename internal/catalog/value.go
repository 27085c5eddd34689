package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Catalog is one interpretation of a Magic Hour spec: its operations and
// everything derived from them. Build one with Load (from a spec document,
// at run time) or take the embedded default with Default. A *Catalog is
// immutable and safe for concurrent use.
type Catalog struct {
	// Source says where the spec came from: a file name, a URL, or
	// "embedded" for Default.
	Source string `json:"source"`
	// Date is when the spec was taken (fetched or snapshotted); refusals
	// name it so a user knows how old the rules are.
	Date time.Time `json:"date"`
	// SHA256 is the hex digest of the spec document.
	SHA256 string `json:"sha256"`
	// Version is the spec's info.version.
	Version string `json:"version"`
	// Times is the processing-times table the catalog was built with.
	Times []Timing `json:"times"`

	Ops []*Operation `json:"operations"`
}

// Timing is one line of processing-times.tsv: a create route, its kind and
// its observed median duration.
type Timing struct {
	Path string        `json:"path"`
	Kind Kind          `json:"kind"`
	P50  time.Duration `json:"p50"`
}

// dataFile is the distilled default catalog written by ./gen.
//
//go:generate go run ./gen -spec ../../../shared/magichour/openapi-latest.json -times ../../../shared/magichour/processing-times.tsv -date 2026-12-08 -out catalog.json
//go:embed catalog.json
var dataFile []byte

// Default returns the catalog embedded at build time (catalog.json,
// distilled from the newest spec by ./gen). It is decoded once.
var Default = sync.OnceValue(func() *Catalog {
	c, err := Decode(dataFile)
	if err != nil {
		// The embedded file is build-time data checked by the tests.
		panic(fmt.Sprintf("catalog: embedded catalog.json: %v", err))
	}
	return c
})

// Decode reads a catalog written by Encode.
func Decode(b []byte) (*Catalog, error) {
	var c Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("catalog: decode: %w", err)
	}
	if len(c.Ops) == 0 {
		return nil, fmt.Errorf("catalog: decode: no operations")
	}
	c.link()
	return &c, nil
}

// Encode writes the catalog as the indented JSON of catalog.json.
func (c *Catalog) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("catalog: encode: %w", err)
	}
	return b.Bytes(), nil
}

func (c *Catalog) link() {
	for _, op := range c.Ops {
		op.cat = c
	}
}

// Operations returns every operation, sorted by path then method.
func (c *Catalog) Operations() []*Operation { return slices.Clone(c.Ops) }

// Lookup returns the operation with the given name ("face-swap"), GoName
// ("FaceSwap") or spec ID, or nil.
func (c *Catalog) Lookup(name string) *Operation {
	for _, op := range c.Ops {
		if op.Name == name || op.GoName == name || op.ID == name {
			return op
		}
	}
	return nil
}

// Route returns the operation served at method and a concrete path (with
// "{id}" segments matching any value), or nil.
func (c *Catalog) Route(method, path string) *Operation {
	for _, op := range c.Ops {
		if op.Method == method && matchPath(op.Path, path) {
			return op
		}
	}
	return nil
}

// Creates returns the operations that start a project (video, image and
// audio tools), sorted by name.
func (c *Catalog) Creates() []*Operation {
	var out []*Operation
	for _, op := range c.Ops {
		if op.IsTool() {
			out = append(out, op)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Project returns the get or delete operation for projects of kind k.
func (c *Catalog) Project(k Kind, role Role) *Operation {
	for _, op := range c.Ops {
		if op.Kind == k && op.Role == role {
			return op
		}
	}
	return nil
}

// MedianP50 is the median of the observed durations of the kind's tools:
// what a tool the processing-times table does not list yet is given.
func (c *Catalog) MedianP50(k Kind) time.Duration { return medianP50(c.Times, k) }

func medianP50(times []Timing, k Kind) time.Duration {
	var ds []time.Duration
	for _, t := range times {
		if t.Kind == k {
			ds = append(ds, t.P50)
		}
	}
	if len(ds) == 0 {
		return 30 * time.Second
	}
	slices.Sort(ds)
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
}

// DateString is the catalog's date as YYYY-MM-DD ("undated" when unknown).
func (c *Catalog) DateString() string {
	if c == nil || c.Date.IsZero() {
		return "undated"
	}
	return c.Date.UTC().Format("2006-01-02")
}

// Catalog returns the catalog op belongs to (Default for an operation built
// by hand).
func (op *Operation) Catalog() *Catalog {
	if op.cat == nil {
		return Default()
	}
	return op.cat
}

// IsTool reports whether op starts a video, image or audio project.
func (op *Operation) IsTool() bool {
	return op.Role == RoleCreate && (op.Kind == KindVideo || op.Kind == KindImage || op.Kind == KindAudio)
}
