// Package catalog describes every Magic Hour API operation: path, method,
// project kind, request and response schemas, input-file fields, validation
// rules and the observed median duration.
//
// The data in zz_generated.go is written by ./gen from
// ../shared/magichour/openapi.json and processing-times.tsv; the SDK, the
// emulator, the CLI and the gateway all read it from here so that the spec is
// interpreted exactly once.
package catalog

//go:generate go run ./gen -spec ../../../shared/magichour/openapi.json -times ../../../shared/magichour/processing-times.tsv -out zz_generated.go

import (
	"sort"
	"strings"
	"time"
)

// Kind is the family an operation belongs to. Create operations of kind
// video, image and audio make projects read back from the matching
// /v1/<kind>-projects/{id} route.
type Kind string

// The kinds of operation.
const (
	KindVideo         Kind = "video"
	KindImage         Kind = "image"
	KindAudio         Kind = "audio"
	KindFaceDetection Kind = "face-detection"
	KindFiles         Kind = "files"
)

// Role says what an operation does, independent of its kind.
type Role string

// The roles of operation.
const (
	RoleCreate     Role = "create"      // POST /v1/<tool>: starts a job
	RoleGet        Role = "get"         // GET /v1/<kind>-projects/{id}
	RoleDelete     Role = "delete"      // DELETE /v1/<kind>-projects/{id}
	RoleUploadURLs Role = "upload-urls" // POST /v1/files/upload-urls
)

// Type is a JSON schema type.
type Type string

// JSON schema types used by the spec.
const (
	TypeString  Type = "string"
	TypeNumber  Type = "number"
	TypeInteger Type = "integer"
	TypeBoolean Type = "boolean"
	TypeObject  Type = "object"
	TypeArray   Type = "array"
)

// Schema is the subset of a JSON schema the API uses, flattened for Go.
// Numbers that may be absent are pointers; Enum holds the allowed values as
// their JSON text without quotes ("all-faces", "4").
type Schema struct {
	Type        Type
	Format      string
	Description string
	Nullable    bool
	Enum        []string
	Default     string // JSON text, empty when none
	Example     string // JSON text, empty when none

	Minimum    *float64
	Maximum    *float64
	MultipleOf *float64
	MinLength  *int
	MaxLength  *int
	Pattern    string
	MinItems   *int
	MaxItems   *int

	Properties []Property // in spec order
	Required   []string
	Items      *Schema

	// File is set on string fields that reference an input file: a URL,
	// or a file_path from the upload-urls operation.
	File *FileField
}

// Property is one named member of an object schema.
type Property struct {
	Name   string
	Schema *Schema
}

// FileField describes an input-file field.
type FileField struct {
	// Media lists the media types the field accepts: image, video, audio.
	Media []string
}

// Prop returns the named property's schema, or nil.
func (s *Schema) Prop(name string) *Schema {
	if s == nil {
		return nil
	}
	for _, p := range s.Properties {
		if p.Name == name {
			return p.Schema
		}
	}
	return nil
}

// IsRequired reports whether name is required in the object s.
func (s *Schema) IsRequired(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

// Operation is one API operation.
type Operation struct {
	ID          string // operationId in the spec, e.g. "faceSwap.createVideo"
	Name        string // tool name, e.g. "face-swap"; for project routes "video-projects.get"
	GoName      string // exported Go name, e.g. "FaceSwap"
	Method      string
	Path        string // e.g. "/v1/face-swap" or "/v1/video-projects/{id}"
	Kind        Kind
	Role        Role
	Summary     string
	Description string
	Tags        []string

	// P50 is the observed median processing time of a create operation,
	// zero for operations that do not start a job.
	P50 time.Duration

	Request  *Schema // nil when the operation has no body
	Response *Schema // the success response body, nil for 204
	// SuccessStatus is 200 or 204.
	SuccessStatus int
	// Statuses lists every status code the spec documents.
	Statuses []int

	// Files lists the paths of the request's input-file fields, e.g.
	// "assets.image_file_path", "assets.face_mappings[].new_face".
	Files []FilePath
}

// FilePath locates an input-file field in a request body: Path is a dotted
// path where "[]" steps into every element of an array.
type FilePath struct {
	Path  string
	Media []string
}

// Segments splits p.Path into its steps, e.g. ["assets", "face_mappings[]", "new_face"].
func (p FilePath) Segments() []string { return strings.Split(p.Path, ".") }

// Lookup returns the operation with the given name ("face-swap"), GoName
// ("FaceSwap") or spec ID, or nil.
func Lookup(name string) *Operation {
	for _, op := range Operations {
		if op.Name == name || op.GoName == name || op.ID == name {
			return op
		}
	}
	return nil
}

// Route returns the operation served at method and a concrete path (with
// "{id}" segments matching any value), or nil.
func Route(method, path string) *Operation {
	for _, op := range Operations {
		if op.Method == method && matchPath(op.Path, path) {
			return op
		}
	}
	return nil
}

func matchPath(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// Creates returns the operations that start a project (video, image and
// audio tools), sorted by name.
func Creates() []*Operation {
	var out []*Operation
	for _, op := range Operations {
		if op.Role == RoleCreate && (op.Kind == KindVideo || op.Kind == KindImage || op.Kind == KindAudio) {
			out = append(out, op)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Project returns the get or delete operation for projects of kind k.
func Project(k Kind, role Role) *Operation {
	for _, op := range Operations {
		if op.Kind == k && op.Role == role {
			return op
		}
	}
	return nil
}

// Terminal reports whether a project status is final.
func Terminal(status string) bool {
	return status == "complete" || status == "error" || status == "canceled"
}
